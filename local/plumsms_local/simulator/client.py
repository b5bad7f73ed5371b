"""A small client of the simulator's ``/sim/`` routes, for the CLI and end-to-end tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import urllib3


class SimulatorError(Exception):
    """The simulator answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class SimulatorClient:
    """Drive a running simulator: simulated phones, Application URLs, faults, inspection."""

    def __init__(
        self, base_url: str, timeout: float = 10.0, pool: urllib3.PoolManager | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._pool = pool or urllib3.PoolManager(retries=False)

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        response = self._pool.request(
            method,
            f"{self.base_url}/sim/{path}",
            body=None if payload is None else json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"} if payload is not None else None,
            timeout=urllib3.Timeout(total=self._timeout),
        )
        try:
            data = json.loads(response.data or b"null")
        except json.JSONDecodeError:
            data = None
        if response.status >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise SimulatorError(response.status, str(message or response.data[:200]))
        return data

    @staticmethod
    def _segment(number: str) -> str:
        return quote(number, safe="")

    def health(self) -> dict[str, Any]:
        """``GET /sim/health``."""
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def reset(self) -> None:
        """Forget messages, inboxes, callbacks, opt-outs and fault changes (URLs stay)."""
        self._call("POST", "reset")

    def set_application_url(self, number: str, url: str | None) -> dict[str, Any]:
        """Set (or clear with None) the Application URL of one of the SMS numbers."""
        result: dict[str, Any] = self._call(
            "PUT", f"numbers/{self._segment(number)}", {"application_url": url}
        )
        return result

    def numbers(self) -> list[dict[str, Any]]:
        """The SMS numbers and their Application URLs."""
        result: list[dict[str, Any]] = self._call("GET", "numbers")["numbers"]
        return result

    def send_text(self, phone: str, to: str, body: str) -> dict[str, Any]:
        """Simulate ``phone`` texting ``body`` to the SMS number ``to``; returns the report."""
        result: dict[str, Any] = self._call(
            "POST", f"phones/{self._segment(phone)}/send", {"to": to, "body": body}
        )
        return result

    def inbox(self, phone: str) -> list[dict[str, Any]]:
        """What ``phone`` received, oldest first."""
        result: list[dict[str, Any]] = self._call("GET", f"phones/{self._segment(phone)}/inbox")[
            "messages"
        ]
        return result

    def messages(self) -> list[dict[str, Any]]:
        """Every message the simulator holds, with status history."""
        result: list[dict[str, Any]] = self._call("GET", "messages")["messages"]
        return result

    def callbacks(self) -> list[dict[str, Any]]:
        """Every result-URL callback sent, dropped or failed, in order."""
        result: list[dict[str, Any]] = self._call("GET", "callbacks")["callbacks"]
        return result

    def unsubscribed(self) -> list[str]:
        """Numbers that opted out."""
        result: list[str] = self._call("GET", "unsubscribed")["unsubscribed"]
        return result

    def faults(self) -> dict[str, float]:
        """The fault settings in force."""
        result: dict[str, float] = self._call("GET", "faults")
        return result

    def set_faults(self, **changes: float) -> dict[str, float]:
        """Change fault settings, e.g. ``set_faults(callback_drop_rate=0.5)``."""
        result: dict[str, float] = self._call("PUT", "faults", dict(changes))
        return result

    def wait_for_inbox(
        self,
        phone: str,
        count: int = 1,
        timeout: float = 10.0,
        interval: float = 0.02,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Poll until ``phone`` holds ``count`` messages (matching ``predicate``, if given).

        Returns those messages; raises ``TimeoutError`` naming how many arrived.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.inbox(phone) if predicate is None or predicate(m)]
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(found)} of {count} message(s) reached the inbox")
            time.sleep(interval)

    def wait_for_status(
        self, sms_message_id: str, statuses: set[str] | frozenset[str], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll until a message's status is one of ``statuses``; returns the message."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages():
                if message["sms_message_id"] == sms_message_id and message["status"] in statuses:
                    return message
            if time.monotonic() >= deadline:
                raise TimeoutError(f"message {sms_message_id} did not reach {sorted(statuses)}")
            time.sleep(0.02)

    def close(self) -> None:
        """Close pooled connections."""
        self._pool.clear()
