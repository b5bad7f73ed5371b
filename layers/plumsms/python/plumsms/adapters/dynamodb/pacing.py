"""Send slots shared by every dispatcher: one small pacing item per sender number.

Item ``PACE#<number>`` / ``PACE`` holds ``next_at``: the wall-clock time (Unix seconds,
microsecond precision) of the sender's next free slot. Booking a slot is one UpdateItem:

- busy sender (``now <= next_at <= deadline``): ``SET next_at = next_at + :interval``,
  returning the old value, which is the slot. The arithmetic happens inside DynamoDB,
  so any number of dispatchers book without conflicting and never get the same slot;
- idle sender (no item, or ``next_at < now``): ``SET next_at = :start + :interval`` on
  that condition; the slot is ``start``: now, or the caller's ``earliest`` when later
  (a caller books a little ahead of its send, so that the answer is back before the
  slot begins). If another dispatcher got there first, the busy path is tried;

A busy sender's next slot is taken even when it starts before ``earliest``: its caller
sends a little late (never more than half an interval: the dispatcher leaves a slot
unused that passed by more), but the book keeps its pace (were the book to move on to
``earliest`` each time a caller woke late, it would fall behind by every such delay).
- a slot past the caller's deadline is not booked at all (the failed condition hands
  back ``next_at``, so the caller learns how far the backlog reaches).

The item is in no index (it has none of their key attributes): a booking costs 1 WCU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from plumsms.adapters.dynamodb import codec, keys
from plumsms.adapters.dynamodb.errors import condition_failed, store_errors
from plumsms.domain.errors import StoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PACE_SK = "PACE"
NEXT_AT = "next_at"
MAX_ROUNDS = 8
_QUANTUM = Decimal("0.000001")


def pace_key(number: str) -> dict[str, Any]:
    """The key of ``number``'s pacing item."""
    return codec.serialize({keys.PK: f"PACE#{number}", keys.SK: PACE_SK})


def _number(value: float) -> dict[str, str]:
    return {"N": str(Decimal(value).quantize(_QUANTUM))}


class DynamoSlotBook:
    """Books each sender's next send slot in the message table (wall-clock seconds)."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.table_name = table_name
        self.client = client
        self.interval = interval
        self._clock = clock
        self._seen: dict[str, float] = {}
        """The last ``next_at`` seen per sender: a hint for which path to try first."""

    def book(
        self, number: str, deadline: float, earliest: float | None = None
    ) -> tuple[float | None, float]:
        """Book ``number``'s next slot, not before ``earliest``, if it starts by ``deadline``.

        Returns ``(slot, next_at)``: the booked slot (None when the next free one is past
        ``deadline``) and where the sender's book stands afterwards. The path tried first
        follows the last ``next_at`` seen for the sender, so a booking is usually one
        request: idle senders take the idle path, busy ones the busy path.
        """
        seen = self._seen.get(number)
        for _ in range(MAX_ROUNDS):
            now = self._clock()
            start = max(now, earliest) if earliest is not None else now
            if now > deadline:
                # No slot can start in time; and DynamoDB refuses a BETWEEN whose bounds
                # are reversed (ValidationException), so nothing is asked.
                return None, max(seen if seen is not None else now, now)
            slot: float | None = None
            if seen is None or seen < now:
                if start > deadline:
                    return None, start  # idle, but the caller's earliest is too late
                slot, seen = self._book_idle(number, now, start)
            if slot is None and (seen is None or seen <= deadline):
                slot, seen = self._book_busy(number, now, deadline)
            if slot is not None:
                self._seen[number] = slot + self.interval
                return slot, slot + self.interval
            if seen is not None and seen > deadline:
                self._seen[number] = seen
                return None, seen
        raise StoreUnavailable(f"pacing of {number}: no slot after {MAX_ROUNDS} rounds")

    def _book_idle(
        self, number: str, now: float, start: float
    ) -> tuple[float | None, float | None]:
        """Take ``start`` if the sender is idle: ``(start, None)``, else ``(None, next_at)``."""
        idle = self._update(
            number,
            "SET #n = :next",
            "attribute_not_exists(#n) OR #n < :now",
            {":now": _number(now), ":next": _number(start + self.interval)},
            returned="NONE",
        )
        if isinstance(idle, float) or idle[0]:
            return start, None
        return None, idle[1]

    def _book_busy(
        self, number: str, now: float, deadline: float
    ) -> tuple[float | None, float | None]:
        """Take the busy sender's next slot if it starts by ``deadline``: ``(slot, None)``,
        else ``(None, next_at)``."""
        busy = self._update(
            number,
            "SET #n = #n + :i",
            "#n BETWEEN :now AND :deadline",
            {
                ":now": _number(now),
                ":deadline": _number(deadline),
                ":i": _number(self.interval),
            },
            returned="UPDATED_OLD",
        )
        if isinstance(busy, float):
            return busy, None
        return None, busy[1]

    def _update(
        self, number: str, update: str, condition: str, values: dict[str, Any], returned: str
    ) -> float | tuple[bool, float | None]:
        """The old ``next_at`` when written with ``UPDATED_OLD``; else ``(written, current)``."""
        with store_errors("book send slot"):
            try:
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key=pace_key(number),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#n": NEXT_AT},
                    ExpressionAttributeValues=values,
                    ReturnValues=returned,  # type: ignore[arg-type]
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if not condition_failed(exc):
                    raise
                old: Any = exc.response.get("Item")
                if old is None:
                    return False, self._current(number)
                value = old.get(NEXT_AT, {}).get("N")
                return False, float(value) if value is not None else None
        if returned == "UPDATED_OLD":
            return float(response["Attributes"][NEXT_AT]["N"])
        return True, None

    def _current(self, number: str) -> float | None:
        """``next_at`` as it stands, when a refusal handed back no item: the sender has no
        book yet, or the server lacks ``ReturnValuesOnConditionCheckFailure`` (dynalite).
        Read with a no-op UpdateItem, the one action the dispatcher already has here."""
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=pace_key(number),
                UpdateExpression="SET #n = #n",
                ConditionExpression="attribute_exists(#n)",
                ExpressionAttributeNames={"#n": NEXT_AT},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if condition_failed(exc):
                return None
            raise
        return float(response["Attributes"][NEXT_AT]["N"])
