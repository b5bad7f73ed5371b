"""Status change events: published to an EventBridge bus on AWS, recorded in memory locally.

Every event has ``source`` ``plumsms`` and ``detail-type`` ``SMS Status Changed``; its
``detail`` is ``event_detail`` below (schema in ``docs/status.md``). Publishing is best
effort: a failure is logged and counted (metric ``StatusEventsFailed``, here for every
function that publishes), never raised, because the status itself is already stored
when the event goes out.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from plumsms.adapters.dynamodb import keys
from plumsms.domain.status import ChangePublisher, StatusChange
from plumsms.observability import logger, metrics

SOURCE: Final = "plumsms"
DETAIL_TYPE: Final = "SMS Status Changed"
DETAIL_VERSION: Final = "1"
_BATCH: Final = 10
"""PutEvents takes at most ten entries per call."""
FAILED_METRIC: Final = "StatusEventsFailed"
_metrics_lock = threading.Lock()
"""The dispatcher publishes from its worker threads; Powertools' metric set is not locked."""


def event_detail(change: StatusChange) -> dict[str, Any]:
    """The ``detail`` object of a status change event (the documented schema, version 1)."""
    return {
        "version": DETAIL_VERSION,
        "message_id": change.message_id,
        "sms_message_id": change.sms_message_id,
        "type": change.type,
        "to": change.to,
        "from": change.from_,
        "previous_status": change.previous,
        "status": change.status,
        "final": change.final,
        "at": keys.timestamp(change.at),
        "source": change.source,
        "queue_to_final_seconds": change.queue_to_final_seconds,
    }


def events_client(endpoint_url: str | None = None) -> Any:
    """An EventBridge client; ``endpoint_url`` (``AWS_ENDPOINT_URL_EVENTS``) points it elsewhere."""
    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5
    )
    return boto3.client("events", endpoint_url=endpoint_url or None, config=config)


class EventBridgePublisher:
    """Puts one event per status change on ``bus_name``; failed entries are retried once.

    The client is built on the first event (most invocations publish none, and building
    it costs every cold start); boto3 clients are thread-safe once built.
    """

    def __init__(
        self,
        bus_name: str,
        client: Any = None,
        source: str = SOURCE,
        endpoint_url: str | None = None,
    ) -> None:
        self.bus_name = bus_name
        self.source = source
        self._client = client
        self._endpoint_url = endpoint_url
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The EventBridge client (built on first use)."""
        with self._client_lock:
            if self._client is None:
                self._client = events_client(self._endpoint_url)
            return self._client

    def publish(self, changes: Sequence[StatusChange]) -> int:
        """Publish ``changes``; returns how many events could not be put (also counted)."""
        failed = 0
        for start in range(0, len(changes), _BATCH):
            failed += self._put([self._entry(c) for c in changes[start : start + _BATCH]])
        if failed:
            with _metrics_lock:
                metrics.add_metric(name=FAILED_METRIC, unit="Count", value=failed)
        return failed

    def _entry(self, change: StatusChange) -> dict[str, Any]:
        return {
            "Source": self.source,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(event_detail(change)),
            "EventBusName": self.bus_name,
            "Time": change.at,
            "Resources": [],
        }

    def _put(self, entries: list[dict[str, Any]]) -> int:
        for attempt in (1, 2):
            try:
                response = self.client.put_events(Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                logger.warning(
                    "status events not published",
                    extra={"count": len(entries), "error": type(exc).__name__},
                )
                return len(entries)
            if not response.get("FailedEntryCount"):
                return 0
            results = response.get("Entries", [])
            entries = [e for e, r in zip(entries, results, strict=False) if r.get("ErrorCode")]
            if attempt == 2 or not entries:
                break
        logger.warning(
            "status events rejected by EventBridge",
            extra={"count": len(entries), "codes": sorted({r.get("ErrorCode") for r in results})},
        )
        return len(entries)


class RecordingPublisher:
    """Keeps the latest events in memory (local runs and tests, when no bus is configured)."""

    def __init__(self, capacity: int = 1000) -> None:
        self.events: deque[dict[str, Any]] = deque(maxlen=capacity)

    def publish(self, changes: Sequence[StatusChange]) -> int:
        """Record ``changes`` as the events EventBridge would carry; never fails."""
        for change in changes:
            self.events.append(
                {"source": SOURCE, "detail-type": DETAIL_TYPE, "detail": event_detail(change)}
            )
            logger.info(
                "status change",
                extra={
                    "message_id": change.message_id,
                    "previous_status": change.previous,
                    "status": change.status,
                },
            )
        return 0


def publisher_for(
    bus_name: str | None, endpoint_url: str | None = None, client: Any = None
) -> ChangePublisher:
    """EventBridge when a bus is named, otherwise the in-memory recorder."""
    if not bus_name:
        return RecordingPublisher()
    return EventBridgePublisher(bus_name, client, endpoint_url=endpoint_url)
