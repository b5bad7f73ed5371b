"""Status writes over DynamoDB: one conditional UpdateItem per report, and orphan rows.

Applying a status is optimistic: the message is read (GetItem, or the index row that
found it), the domain plans the write, and one UpdateItem sets the status, its index
attribute and ``updated_at``, appends the new history entries with ``list_append`` and
drops the ``Due`` index attributes, on condition that the status and the history length
are still what was read. If another writer got there first the message is read again
(consistently) and the plan redone, a bounded number of times.

A callback for a message we do not have (yet) becomes an orphan row keyed by Plum's id,
with a TTL: ``attach_orphans`` folds it into the message once the message appears.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from plumsms.adapters.dynamodb import codec, keys
from plumsms.adapters.dynamodb.errors import condition_failed, store_errors
from plumsms.adapters.dynamodb.store import (
    DynamoMessageStore,
    default_client,
    message_by_plum_id,
)
from plumsms.domain import status
from plumsms.domain.errors import NotFound, StoreUnavailable
from plumsms.domain.models import HistoryEntry, Message, utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ORPHAN_SK = "ORPHAN"
ORPHAN_KIND = "ORPHAN"
"""``type_pk`` of orphan rows: an operator lists them through the ``ByType`` index."""
ORPHAN_TTL = timedelta(days=7)
MAX_ATTEMPTS = 5

Decide = Callable[[Message], status.Plan]
_APPEND = "#h = list_append(if_not_exists(#h, :empty), :entries)"


def orphan_pk(sms_message_id: str) -> str:
    """Partition key of the orphan row of a Plum id."""
    return f"ORPHAN#{sms_message_id}"


def _orphan_key(sms_message_id: str) -> dict[str, Any]:
    return codec.serialize({keys.PK: orphan_pk(sms_message_id), keys.SK: ORPHAN_SK})


@dataclass(frozen=True, slots=True)
class Applied:
    """A planned write and the message it was planned on (the last one read)."""

    before: Message
    plan: status.Plan
    attempts: int

    @property
    def change(self) -> status.StatusChange | None:
        """The status change it made, if any."""
        return status.change_of(self.before, self.plan)


@dataclass(frozen=True, slots=True)
class Advanced:
    """The outcome of ``advance``: the move it wrote, or the message as it is."""

    applied: Applied | None = None
    current: Message | None = None
    """The message when the report did not move it (None: no such message)."""


class DynamoStatusLog:
    """Reads messages for status updates and writes them, one UpdateItem each."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        *,
        orphan_ttl: timedelta = ORPHAN_TTL,
        max_attempts: int = MAX_ATTEMPTS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.table_name = table_name
        self.client = client or default_client()
        self.orphan_ttl = orphan_ttl
        self.max_attempts = max_attempts
        self._clock = clock

    @classmethod
    def from_store(cls, store: DynamoMessageStore) -> DynamoStatusLog:
        """A status log on the same table and client as ``store``."""
        return cls(store.table_name, store.client)

    # -- reads ----------------------------------------------------------------------------

    def find(self, message_id: str) -> Message | None:
        """The message with our id ``message_id`` (strongly consistent GetItem)."""
        with store_errors("get message"):
            response = self.client.get_item(
                TableName=self.table_name, Key=codec.message_key(message_id), ConsistentRead=True
            )
        item = response.get("Item")
        return codec.message_from_item(codec.deserialize(item)) if item else None

    def find_by_plum_id(self, sms_message_id: str) -> Message | None:
        """The message Plum knows as ``sms_message_id`` (Query on ``ByPlumId``)."""
        return message_by_plum_id(self.client, self.table_name, sms_message_id)

    # -- the status write -----------------------------------------------------------------

    def apply(self, message: Message, decide: Decide) -> Applied:
        """Plan on ``message`` and write the plan (if it says anything new), retrying on races.

        Raises ``NotFound`` if the message disappeared, ``StoreUnavailable`` if other
        writers kept winning for ``max_attempts`` tries.
        """
        current = message
        for attempt in range(1, self.max_attempts + 1):
            planned = decide(current)
            if not planned.needs_write or self._write(current, planned):
                return Applied(current, planned, attempt)
            fresh = self.find(current.id)
            if fresh is None:
                raise NotFound(f"message {current.id}")
            current = fresh
        raise StoreUnavailable(f"status of {message.id}: still contended after retries")

    def advance(self, message_id: str, entry: HistoryEntry, plum_id: str | None) -> Advanced:
        """Move message ``message_id`` to ``entry``'s status in one request, without a read.

        One UpdateItem conditioned on the status being one the report moves out of
        (``status.predecessors``); it returns the old item, so the change is known. When
        the condition fails the item comes back with the failure (no extra read) and the
        caller plans on it: a duplicate, a late report, or an unknown status.
        """
        reported = status.normalize(entry.status)
        allowed = sorted(status.predecessors(reported))
        if not allowed:
            return Advanced(current=self.find(message_id))
        names = {"#st": "status", "#spk": keys.STATUS_PK, "#upd": "updated_at", "#h": "history"}
        names |= {"#duepk": keys.DUE_PK, "#duesk": keys.DUE_SK}
        values: dict[str, Any] = {
            ":new": {"S": reported},
            ":spk": {"S": codec.status_key(reported, message_id)},
            ":upd": {"S": keys.timestamp(max(self._clock(), entry.at))},
            ":entries": _entries([entry.model_copy(update={"status": reported})]),
            ":empty": {"L": []},
        }
        values |= {f":from{i}": {"S": s} for i, s in enumerate(allowed)}
        sets = ["#st = :new", "#spk = :spk", "#upd = :upd", _APPEND]
        if plum_id is not None:
            names |= {"#sid": "sms_message_id", "#pid": keys.PLUM_ID_ATTR}
            values[":pid"] = {"S": plum_id}
            sets += ["#sid = if_not_exists(#sid, :pid)", "#pid = if_not_exists(#pid, :pid)"]
        with store_errors("advance status"):
            try:
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key=codec.message_key(message_id),
                    UpdateExpression="SET " + ", ".join(sets) + " REMOVE #duepk, #duesk",
                    ConditionExpression=(
                        f"#st IN ({', '.join(f':from{i}' for i in range(len(allowed)))})"
                    ),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_OLD",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if not condition_failed(exc):
                    raise
                item: Any = exc.response.get("Item")  # the item as it is, with the failure
                return Advanced(
                    current=codec.message_from_item(codec.deserialize(item)) if item else None
                )
        before = codec.message_from_item(codec.deserialize(response["Attributes"]))
        moved = status.Plan(
            previous=before.status,
            status=reported,
            append=(entry.model_copy(update={"status": reported}),),
            known=True,
            record_plum_id=plum_id if before.sms_message_id is None else None,
        )
        return Advanced(applied=Applied(before, moved, 1))

    def _write(self, before: Message, planned: status.Plan) -> bool:
        """One conditional UpdateItem; False when the message changed since it was read."""
        now = self._clock()
        names = {"#st": "status", "#spk": keys.STATUS_PK, "#upd": "updated_at", "#h": "history"}
        values: dict[str, Any] = {
            ":expected": {"S": before.status},
            ":count": {"N": str(len(before.history))},
            ":new": {"S": planned.status},
            ":spk": {"S": codec.status_key(planned.status, before.id)},
            ":upd": {"S": keys.timestamp(max([now, *(e.at for e in planned.append)]))},
        }
        sets = ["#st = :new", "#spk = :spk", "#upd = :upd"]
        if planned.append:
            sets.append(_APPEND)
            values |= {":entries": _entries(planned.append), ":empty": {"L": []}}
        if planned.record_plum_id is not None:
            names |= {"#sid": "sms_message_id", "#pid": keys.PLUM_ID_ATTR}
            values[":pid"] = {"S": planned.record_plum_id}
            sets += ["#sid = if_not_exists(#sid, :pid)", "#pid = if_not_exists(#pid, :pid)"]
        expression = "SET " + ", ".join(sets)
        history_unchanged = "size(#h) = :count"
        if not before.history:
            history_unchanged = f"(attribute_not_exists(#h) OR {history_unchanged})"
        if planned.changed:
            # Off the Due index the moment a message leaves ``scheduled``.
            names |= {"#duepk": keys.DUE_PK, "#duesk": keys.DUE_SK}
            expression += " REMOVE #duepk, #duesk"
        return self._conditional(
            "write status",
            self.client.update_item,
            TableName=self.table_name,
            Key=codec.message_key(before.id),
            UpdateExpression=expression,
            ConditionExpression=(
                f"attribute_exists({keys.PK}) AND #st = :expected AND {history_unchanged}"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    @staticmethod
    def _conditional(operation: str, call: Callable[..., object], **request: Any) -> bool:
        """Run a conditional write; False when its condition failed."""
        with store_errors(operation):
            try:
                call(**request)
            except ClientError as exc:
                if condition_failed(exc):
                    return False
                raise
        return True

    # -- orphans --------------------------------------------------------------------------

    def keep_orphan(self, sms_message_id: str, entry: HistoryEntry, ref: str | None) -> bool:
        """Keep a report for a message we do not have; False if that status was kept before.

        One UpdateItem: the status joins a string set and the history list unless the set
        holds it already; the TTL is pushed back on every new report.
        """
        now = self._clock()
        reported = status.normalize(entry.status)
        names = {"#h": "history", "#seen": "statuses", "#ttl": keys.TTL_ATTR}
        values: dict[str, Any] = {
            ":entry": _entries([entry]),
            ":empty": {"L": []},
            ":status": {"S": reported},
            ":statuses": {"SS": [reported]},
            ":id": {"S": sms_message_id},
            ":ttl": {"N": str(int((now + self.orphan_ttl).timestamp()))},
            ":kind": {"S": keys.sharded(ORPHAN_KIND, sms_message_id)},
            ":tsk": {"S": f"{keys.timestamp(entry.at)}#{sms_message_id}"},
            ":max": {"N": str(status.MAX_HISTORY)},
        }
        sets = [
            "#h = list_append(if_not_exists(#h, :empty), :entry)",
            "sms_message_id = :id",
            "#ttl = :ttl",
            f"{keys.TYPE_PK} = :kind",
            f"{keys.TIME_SK} = if_not_exists({keys.TIME_SK}, :tsk)",
        ]
        if ref is not None:
            names["#ref"] = "ref"
            values[":ref"] = {"S": ref}
            sets.append("#ref = :ref")
        return self._conditional(
            "keep orphan",
            self.client.update_item,
            TableName=self.table_name,
            Key=_orphan_key(sms_message_id),
            UpdateExpression="SET " + ", ".join(sets) + " ADD #seen :statuses",
            ConditionExpression=(
                "attribute_not_exists(#seen) OR (NOT contains(#seen, :status) AND size(#h) < :max)"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def orphan_reports(self, sms_message_id: str) -> list[HistoryEntry]:
        """The reports kept for ``sms_message_id`` (empty if none)."""
        with store_errors("get orphan"):
            response = self.client.get_item(
                TableName=self.table_name, Key=_orphan_key(sms_message_id), ConsistentRead=True
            )
        item = codec.deserialize(response.get("Item", {}))
        return [HistoryEntry.model_validate(entry) for entry in item.get("history", [])]

    def attach_orphans(self, message_id: str, sms_message_id: str) -> Applied | None:
        """Fold the reports kept for ``sms_message_id`` into message ``message_id``.

        None when there were none (one GetItem). Otherwise one conditional UpdateItem on
        the message, then the orphan row is deleted unless more reports arrived meanwhile
        (those stay for the next call; the ones applied now count as duplicates then).
        """
        reports = self.orphan_reports(sms_message_id)
        if not reports:
            return None
        message = self.find(message_id)
        if message is None:
            raise NotFound(f"message {message_id}")
        applied = self.apply(message, lambda m: status.plan(m, reports, sms_message_id))
        self._conditional(
            "drop orphan",
            self.client.delete_item,
            TableName=self.table_name,
            Key=_orphan_key(sms_message_id),
            ConditionExpression="size(#h) = :count",
            ExpressionAttributeNames={"#h": "history"},
            ExpressionAttributeValues={":count": {"N": str(len(reports))}},
        )
        return applied


def _entries(entries: Iterable[HistoryEntry]) -> dict[str, Any]:
    serialized: dict[str, Any] = codec.serialize(
        {"v": [e.model_dump(mode="json") for e in entries]}
    )
    return dict(serialized["v"])
