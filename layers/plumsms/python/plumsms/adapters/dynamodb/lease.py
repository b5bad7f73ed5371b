"""The dispatcher's run lease: one small item that at most one run holds at a time.

Item ``LEASE#dispatch`` / ``LEASE`` holds ``lease_holder`` (the run's id),
``lease_until`` (when the lease lapses by itself: the holder's Lambda is gone by then)
and, while a run holds it, ``pass_wanted`` when another invocation found it held.
Every change is one conditional UpdateItem, so DynamoDB decides every race:

- ``acquire``: ``SET holder, until REMOVE pass_wanted`` if nobody holds it or it lapsed;
- ``request``: ``SET pass_wanted`` if somebody holds it and it has not lapsed;
- ``release``: ``REMOVE holder, until`` if this run holds it and nothing was requested;
  if something was, ``REMOVE pass_wanted`` instead and say so: the holder owes a pass;
- ``give_up``: ``REMOVE holder, until, pass_wanted`` if this run holds it.

The item is in no index (it has none of their key attributes): each write is 1 WCU.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from plumsms.adapters.dynamodb import codec, keys
from plumsms.adapters.dynamodb.errors import condition_failed, store_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

LEASE_SK = "LEASE"
HOLDER = "lease_holder"
UNTIL = "lease_until"
WANTED = "pass_wanted"
_NAMES = {"#holder": HOLDER, "#until": UNTIL, "#wanted": WANTED}


class DynamoRunLease:
    """A lease named ``name`` in the message table (see the module's docstring)."""

    def __init__(self, table_name: str, client: DynamoDBClient, name: str = "dispatch") -> None:
        self.table_name = table_name
        self.client = client
        self.key = codec.serialize({keys.PK: f"LEASE#{name}", keys.SK: LEASE_SK})

    def acquire(self, holder: str, now: datetime, until: datetime) -> bool:
        """Hold the lease until ``until`` if it is free or has lapsed."""
        return self._update(
            "SET #holder = :me, #until = :until REMOVE #wanted",
            "attribute_not_exists(#holder) OR #until < :now",
            {":me": holder, ":until": keys.timestamp(until), ":now": keys.timestamp(now)},
            "acquire run lease",
        )

    def request(self, now: datetime) -> bool:
        """Ask the holder for one more pass; False when nobody holds the lease."""
        return self._update(
            "SET #wanted = :yes",
            "attribute_exists(#holder) AND #until >= :now",
            {":yes": True, ":now": keys.timestamp(now)},
            "request a dispatch pass",
        )

    def release(self, holder: str) -> bool:
        """Give the lease up unless a pass was requested; False (the request now taken)
        when one was and ``holder`` still holds the lease."""
        released = self._update(
            "REMOVE #holder, #until",
            "#holder = :me AND attribute_not_exists(#wanted)",
            {":me": holder},
            "release run lease",
        )
        if released:
            return True
        # Either a pass was requested or the lease lapsed to another run; taking the
        # request tells which (without relying on the item the refusal may hand back).
        taken = self._update(
            "REMOVE #wanted", "#holder = :me", {":me": holder}, "take a dispatch pass request"
        )
        return not taken  # not ours any more: nothing to serve

    def give_up(self, holder: str) -> None:
        """Give the lease up whatever was requested (the run cannot do another pass)."""
        self._update(
            "REMOVE #holder, #until, #wanted", "#holder = :me", {":me": holder}, "give up lease"
        )

    def _update(self, update: str, condition: str, values: dict[str, Any], operation: str) -> bool:
        """True when written; False when the condition refused it."""
        names = {name: attr for name, attr in _NAMES.items() if name in update + condition}
        with store_errors(operation):
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=self.key,
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=codec.serialize(values),
                )
            except ClientError as exc:
                if condition_failed(exc):
                    return False
                raise
        return True
