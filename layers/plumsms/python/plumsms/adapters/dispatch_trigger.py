"""Waking the dispatcher for a message due now (send-now), or for the next run of a
campaign (a run that ran out of time with messages still due), without waiting for it.

On AWS: an asynchronous Lambda invoke (``InvocationType=Event``) of the function named by
``SCHEDULED_SEND_FUNCTION``; Lambda queues the event, retries it and, when it keeps
failing, hands it to the function's dead-letter queue. boto3 honours
``AWS_ENDPOINT_URL_LAMBDA``, so a Lambda-compatible endpoint can stand in.

Locally: the local stack runs every function in one process, so it registers an
in-process hook under the same function name (``register_in_process``) and the invoke
never leaves the process. The hook must return at once (start a thread): the API
request that triggered it is still waiting for its answer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

SEND_NOW_SOURCE = "plumsms.api"
SEND_NOW_DETAIL_TYPE = "Send Now"
CONTINUE_SOURCE = "plumsms.dispatcher"
CONTINUE_DETAIL_TYPE = "Continue"

Hook = Callable[[dict[str, Any]], None]

_hooks: dict[str, Hook] = {}
_hooks_lock = threading.Lock()


def register_in_process(function_name: str, hook: Hook) -> None:
    """Route send-now invokes of ``function_name`` to ``hook`` (the local stack's runner)."""
    with _hooks_lock:
        _hooks[function_name] = hook


def send_now_event() -> dict[str, Any]:
    """The event a send-now invoke carries (the dispatcher reads nothing from it)."""
    return {"source": SEND_NOW_SOURCE, "detail-type": SEND_NOW_DETAIL_TYPE, "detail": {}}


def continue_event() -> dict[str, Any]:
    """The event a run's hand-over to the next one carries (logged as its trigger)."""
    return {"source": CONTINUE_SOURCE, "detail-type": CONTINUE_DETAIL_TYPE, "detail": {}}


def is_continue(event: dict[str, Any]) -> bool:
    """True for the event of a hand-over (a run started by the run before it)."""
    return (
        event.get("source") == CONTINUE_SOURCE and event.get("detail-type") == CONTINUE_DETAIL_TYPE
    )


class LambdaDispatchTrigger:
    """Invokes the dispatcher function asynchronously (or its in-process hook)."""

    def __init__(
        self, function_name: str, client: Any = None, event: dict[str, Any] | None = None
    ) -> None:
        self.function_name = function_name
        self.event = event or send_now_event()
        self._client = client
        self._client_lock = threading.Lock()

    def _lambda(self) -> Any:
        # Built on first use: most API calls never need it, and it costs a cold start.
        with self._client_lock:
            if self._client is None:
                config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2)
                self._client = boto3.client("lambda", config=config)
            return self._client

    def __call__(self) -> None:
        """Ask for a dispatcher run now; raises on failure (the caller decides)."""
        with _hooks_lock:
            hook = _hooks.get(self.function_name)
        if hook is not None:
            hook(self.event)
            return
        self._lambda().invoke(
            FunctionName=self.function_name,
            InvocationType="Event",
            Payload=json.dumps(self.event).encode(),
        )


def dispatch_trigger(
    function_name: str | None, event: dict[str, Any] | None = None
) -> LambdaDispatchTrigger | None:
    """The trigger for ``function_name`` (sending ``event``, by default a send-now's);
    None when no dispatcher function is configured."""
    return LambdaDispatchTrigger(function_name, event=event) if function_name else None
