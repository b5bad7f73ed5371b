"""The dispatcher's run lease: one small item that at most one run holds at a time.

Item ``LEASE#dispatch`` / ``LEASE`` holds ``lease_holder`` (the run's id),
``lease_until`` (when the lease lapses by itself: the holder's Lambda is gone by then)
``lease_senders`` (the senders the last holder found messages for: the next run's feed
reads on until it finds each of them) and, while a run holds it, ``pass_wanted`` when
another invocation found it held. Every change is one conditional UpdateItem, so
DynamoDB decides every race:

- ``acquire``: ``SET holder, until REMOVE pass_wanted`` if nobody holds it or it lapsed,
  handing back the item as it was (the senders left in it);
- ``request``: ``SET pass_wanted`` if somebody holds it and it has not lapsed;
- ``release``: ``SET senders REMOVE holder, until`` if this run holds it and nothing was
  requested; if something was, ``REMOVE pass_wanted`` instead and say so: the holder owes
  a pass;
- ``give_up``: ``SET senders REMOVE holder, until, pass_wanted`` if this run holds it.

The item is in no index (it has none of their key attributes): each write is 1 WCU per
started KB, so 1 WCU with up to about 60 senders in it (at most ``SENDERS_KEPT``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from plumsms.adapters.dynamodb import codec, keys
from plumsms.adapters.dynamodb.errors import condition_failed, store_errors
from plumsms.domain.sending import HeldLease

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

LEASE_SK = "LEASE"
HOLDER = "lease_holder"
UNTIL = "lease_until"
WANTED = "pass_wanted"
SENDERS = "lease_senders"
_NAMES = {"#holder": HOLDER, "#until": UNTIL, "#wanted": WANTED, "#senders": SENDERS}
SENDERS_KEPT = 1000
"""Senders left in the item at most (about 15 KB): a hint to the next run, not a record."""


class DynamoRunLease:
    """A lease named ``name`` in the message table (see the module's docstring)."""

    def __init__(self, table_name: str, client: DynamoDBClient, name: str = "dispatch") -> None:
        self.table_name = table_name
        self.client = client
        self.key = codec.serialize({keys.PK: f"LEASE#{name}", keys.SK: LEASE_SK})

    def acquire(self, holder: str, now: datetime, until: datetime) -> HeldLease | None:
        """Hold the lease until ``until`` if it is free or has lapsed (None if not), with
        the senders the last holder left in it."""
        before = self._update(
            "SET #holder = :me, #until = :until REMOVE #wanted",
            "attribute_not_exists(#holder) OR #until < :now",
            {":me": holder, ":until": keys.timestamp(until), ":now": keys.timestamp(now)},
            "acquire run lease",
            returning=True,
        )
        if before is None:
            return None
        senders = codec.deserialize(before).get(SENDERS) or set()
        return HeldLease(frozenset(str(sender) for sender in senders))

    def request(self, now: datetime) -> bool:
        """Ask the holder for one more pass; False when nobody holds the lease."""
        written = self._update(
            "SET #wanted = :yes",
            "attribute_exists(#holder) AND #until >= :now",
            {":yes": True, ":now": keys.timestamp(now)},
            "request a dispatch pass",
        )
        return written is not None

    def release(self, holder: str, senders: frozenset[str]) -> bool:
        """Give the lease up, leaving ``senders``, unless a pass was requested; False (the
        request now taken) when one was and ``holder`` still holds the lease."""
        update, values = _leaving(senders, "#holder, #until")
        released = self._update(
            update,
            "#holder = :me AND attribute_not_exists(#wanted)",
            values | {":me": holder},
            "release run lease",
        )
        if released is not None:
            return True
        # Either a pass was requested or the lease lapsed to another run; taking the
        # request tells which (without relying on the item the refusal may hand back).
        taken = self._update(
            "REMOVE #wanted", "#holder = :me", {":me": holder}, "take a dispatch pass request"
        )
        return taken is None  # not ours any more: nothing to serve

    def give_up(self, holder: str, senders: frozenset[str]) -> None:
        """Give the lease up, leaving ``senders``, whatever was requested (the run cannot
        do another pass)."""
        update, values = _leaving(senders, "#holder, #until, #wanted")
        self._update(update, "#holder = :me", values | {":me": holder}, "give up lease")

    def _update(
        self,
        update: str,
        condition: str,
        values: dict[str, Any],
        operation: str,
        *,
        returning: bool = False,
    ) -> dict[str, Any] | None:
        """The item as it was (if ``returning``, else empty) when written; None when the
        condition refused it."""
        names = {name: attr for name, attr in _NAMES.items() if name in update + condition}
        with store_errors(operation):
            try:
                answer = self.client.update_item(
                    TableName=self.table_name,
                    Key=self.key,
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=codec.serialize(values),
                    ReturnValues="ALL_OLD" if returning else "NONE",
                )
            except ClientError as exc:
                if condition_failed(exc):
                    return None
                raise
        return dict(answer.get("Attributes") or {})


def _leaving(senders: frozenset[str], removed: str) -> tuple[str, dict[str, Any]]:
    """The update letting go of the lease (removing ``removed``) with ``senders`` left in it
    (a string set cannot be empty: no senders removes the attribute)."""
    if not senders:
        return f"REMOVE {removed}, #senders", {}
    kept = set(sorted(senders)[:SENDERS_KEPT])
    return f"SET #senders = :senders REMOVE {removed}", {":senders": kept}
