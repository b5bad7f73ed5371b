"""The outbox: scheduled sends over the message table, with conditional writes only.

A message waiting to be sent is ``scheduled`` and sits in the sparse ``Due`` index
(``due_sk = <due time>#<id>``). The dispatcher moves it with conditional UpdateItems:

    scheduled --claim--> sending --record--> queued
                           |--retry_later--> scheduled (due again after a backoff)
                           |--fail---------> failed
                           `--suppress-----> suppressed

A claim removes the ``Due`` attributes and sets ``claim_token``, ``claimed_at`` and
``check_after``; every later step is conditional on the same token, so two dispatchers
never act on one message. A claim still held after ``check_after`` belongs to a
dispatcher that died (or lost Plum's answer): it is found through the ``ByStatus``
index and reconciled with Plum before anything is sent again.

The outbox's own attributes on a message row: ``schedule`` (JSON, see
``plumsms.domain.sending.Schedule``), ``claim_token``, ``claimed_at``, ``check_after``,
``attempts``, ``plum_ids``. Idempotency records are rows ``IDEM#<sha256(key)>``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from plumsms.adapters.dynamodb import codec, keys, sharding
from plumsms.adapters.dynamodb.errors import condition_failed, store_errors
from plumsms.adapters.dynamodb.store import plum_id_known
from plumsms.domain.errors import Conflict, NotFound
from plumsms.domain.models import HistoryEntry, Message, MessageType, OptOut, Status
from plumsms.domain.sending import (
    Claim,
    DueCursor,
    DuePage,
    DueRef,
    EditPlan,
    IdempotencyRecord,
    Schedule,
)

OPTED_OUT = "recipient opted out"

if TYPE_CHECKING:
    from plumsms.adapters.dynamodb.store import DynamoMessageStore

IDEMPOTENCY_SK = "IDEM"
SCHEDULE_ATTR = codec.SCHEDULE_ATTR
CLAIM_TOKEN = "claim_token"  # noqa: S105 - an attribute name
CLAIMED_AT = "claimed_at"
CHECK_AFTER = "check_after"
ATTEMPTS = "attempts"
PLUM_IDS = "plum_ids"

NAMES = {
    "#id": "id",
    "#to": "to",
    "#from": "from",
    "#body": "body",
    "#status": "status",
    "#status_pk": keys.STATUS_PK,
    "#type": "type",
    "#customer_pk": keys.CUSTOMER_PK,
    "#updated": "updated_at",
    "#send_at": "send_at",
    "#history": "history",
    "#error": "error",
    "#segments": "segments",
    "#encoding": "encoding",
    "#result_url": "result_url",
    "#sms_id": "sms_message_id",
    "#plum_id": keys.PLUM_ID_ATTR,
    "#plum_ids": PLUM_IDS,
    "#due_pk": keys.DUE_PK,
    "#due_sk": keys.DUE_SK,
    "#token": CLAIM_TOKEN,
    "#claimed_at": CLAIMED_AT,
    "#check_after": CHECK_AFTER,
    "#attempts": ATTEMPTS,
    "#ttl": keys.TTL_ATTR,
}
"""Every attribute an expression here names, by placeholder (several are reserved words)."""

_PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")
_RELEASE_CLAIM = "REMOVE #token, #claimed_at, #check_after"
_SET_STATUS = (
    "#status = :status, #status_pk = :status_pk, #updated = :now, "
    "#history = list_append(if_not_exists(#history, :empty), :entry)"
)


def expression(values: dict[str, Any] | None = None, **parts: str) -> dict[str, Any]:
    """Request arguments for expression ``parts`` (``UpdateExpression=...`` etc.).

    Only the placeholders the expressions use are passed: DynamoDB refuses unused ones.
    """
    used = {token for text in parts.values() for token in _PLACEHOLDER.findall(text)}
    request: dict[str, Any] = dict(parts)
    names = {k: v for k, v in NAMES.items() if k in used}
    if names:
        request["ExpressionAttributeNames"] = names
    bound = {k: v for k, v in (values or {}).items() if k in used}
    if bound:
        request["ExpressionAttributeValues"] = bound
    return request


def _entry(status: str, at: datetime, source: str) -> dict[str, Any]:
    entry = HistoryEntry(status=status, at=at, source=source)
    serialized: dict[str, Any] = codec.serialize({"e": [entry.model_dump(mode="json")]})["e"]
    return serialized


def _status_values(status: str, now: datetime, source: str, message_id: str) -> dict[str, Any]:
    return {
        ":status": {"S": status},
        ":status_pk": {"S": codec.status_key(status, message_id)},
        ":now": {"S": keys.timestamp(now)},
        ":entry": _entry(status, now, source),
        ":empty": {"L": []},
    }


def _old_row(exc: ClientError) -> dict[str, Any]:
    old: Any = exc.response.get("Item")
    return codec.deserialize(old) if old else {}


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class DynamoOutbox:
    """Scheduled sends in the message table; shares the message store's client."""

    def __init__(self, store: DynamoMessageStore) -> None:
        self.store = store
        self.table_name = store.table_name
        self.client = store.client

    def _key(self, message_id: str) -> dict[str, Any]:
        return {"TableName": self.table_name, "Key": codec.message_key(message_id)}

    # -- creating ---------------------------------------------------------------------

    def _row(self, message: Message, schedule: Schedule) -> dict[str, Any]:
        row = codec.message_item(message, self.store.retention)
        row[SCHEDULE_ATTR] = schedule.to_json()
        return codec.serialize(row)

    def create(
        self, message: Message, schedule: Schedule, idempotency: IdempotencyRecord | None = None
    ) -> IdempotencyRecord | None:
        """Store a new scheduled message, and its idempotency record in the same transaction.

        Returns None when stored; when the key was taken meanwhile by a record still live
        at ``idempotency.taken_at``, that record (and nothing is written).
        """
        put: dict[str, Any] = {"TableName": self.table_name, "Item": self._row(message, schedule)}
        put |= expression(ConditionExpression="attribute_not_exists(#id)")
        with store_errors("create message"):
            if idempotency is None:
                self.client.put_item(**put)
                return None
            record: dict[str, Any] = {
                "TableName": self.table_name,
                "Item": codec.serialize(
                    {
                        keys.PK: f"IDEM#{_key_hash(idempotency.key)}",
                        keys.SK: IDEMPOTENCY_SK,
                        "fingerprint": idempotency.fingerprint,
                        "message_id": idempotency.message_id,
                        "response": idempotency.response,
                        keys.TTL_ATTR: idempotency.expires_at,
                        "taken_at": idempotency.taken_at,
                    }
                ),
            }
            # A record past its TTL may linger until DynamoDB deletes it: it is free.
            record |= expression(
                {":now": {"N": str(idempotency.taken_at)}},
                ConditionExpression="attribute_not_exists(#ttl) OR #ttl < :now",
            )
            try:
                self.client.transact_write_items(TransactItems=[{"Put": put}, {"Put": record}])  # type: ignore[typeddict-item]
            except ClientError as exc:
                if condition_failed(exc, in_transaction=slice(1, 2)):
                    existing = self.get_idempotency(idempotency.key, idempotency.taken_at)
                    if existing is not None:
                        return existing
                raise
        return None

    def get_idempotency(self, key: str, now_epoch: int) -> IdempotencyRecord | None:
        """The live record of ``key``, if any (one that expired before ``now_epoch`` is not)."""
        with store_errors("read idempotency key"):
            response = self.client.get_item(
                TableName=self.table_name,
                Key=codec.serialize({keys.PK: f"IDEM#{_key_hash(key)}", keys.SK: IDEMPOTENCY_SK}),
                ConsistentRead=True,
            )
        if "Item" not in response:
            return None
        row = codec.deserialize(response["Item"])
        expires_at = int(row.get(keys.TTL_ATTR, 0))
        if expires_at < now_epoch:
            return None
        return IdempotencyRecord(
            key=key,
            fingerprint=str(row["fingerprint"]),
            message_id=str(row["message_id"]),
            response=str(row["response"]),
            expires_at=expires_at,
            taken_at=int(row.get("taken_at", 0)),  # 0: stored before it was kept
        )

    def put_occurrence(self, message: Message, schedule: Schedule) -> bool:
        """Store a series' next message unless it exists already (its id is derived)."""
        with store_errors("create next occurrence"):
            try:
                self.client.put_item(
                    TableName=self.table_name,
                    Item=self._row(message, schedule),
                    **expression(ConditionExpression="attribute_not_exists(#id)"),
                )
            except ClientError as exc:
                if condition_failed(exc):
                    return False
                raise
        return True

    # -- reading ----------------------------------------------------------------------

    def get(self, message_id: str) -> tuple[Message, Schedule]:
        """A message and its schedule; ``NotFound`` otherwise."""
        with store_errors("get message"):
            response = self.client.get_item(**self._key(message_id), ConsistentRead=True)
        if "Item" not in response:
            raise NotFound(f"message {message_id}")
        row = codec.deserialize(response["Item"])
        return codec.message_from_item(row), Schedule.from_json(row.get(SCHEDULE_ATTR))

    def opted_out(self, numbers: Iterable[str]) -> set[str]:
        """Which of ``numbers`` have opted out."""
        return self.store.opted_out(numbers)

    def known_plum_id(self, sms_message_id: str) -> bool:
        """True when one of our messages already carries ``sms_message_id``."""
        return plum_id_known(self.client, self.table_name, sms_message_id)

    # -- changes while pending (API, opt-out) ----------------------------------------

    def _update_if(
        self,
        operation: str,
        message_id: str,
        values: dict[str, Any],
        update: str,
        condition: str,
        *,
        new: bool = True,
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """One conditional UpdateItem of a message: ``(row as written, None)`` (with
        ``new``; else ``({}, None)``), or ``(None, row as it was)`` when ``condition``
        failed (``{}``: no such message)."""
        returns = {"ReturnValues": "ALL_NEW"} if new else {}
        with store_errors(operation):
            try:
                response = self.client.update_item(
                    **self._key(message_id),
                    **expression(values, UpdateExpression=update, ConditionExpression=condition),
                    **returns,  # type: ignore[arg-type]
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if not condition_failed(exc):
                    raise
                return None, _old_row(exc)
        return codec.deserialize(response["Attributes"]) if new else {}, None

    def _update_pending(self, message_id: str, update: str, values: dict[str, Any]) -> Message:
        values = values | {":scheduled": {"S": Status.SCHEDULED}}
        row, old = self._update_if(
            "update message", message_id, values, update, "#status = :scheduled"
        )
        if row is None:
            if not old:
                raise NotFound(f"message {message_id}")
            raise Conflict(
                f"message is {old.get('status')}; only scheduled messages can be changed"
            )
        return codec.message_from_item(row)

    def _close_pending(
        self, message_id: str, status: str, now: datetime, source: str, error: str | None
    ) -> Message:
        values = _status_values(status, now, source, message_id)
        update = f"SET {_SET_STATUS}"
        if error is not None:
            update += ", #error = :error"
            values[":error"] = {"S": error}
        return self._update_pending(message_id, f"{update} REMOVE #due_pk, #due_sk", values)

    def cancel(self, message_id: str, now: datetime, source: str = "api") -> Message:
        """``scheduled -> cancelled``, the message as written; ``Conflict`` unless scheduled."""
        return self._close_pending(message_id, Status.CANCELLED, now, source, None)

    def suppress(self, message_id: str, now: datetime, source: str) -> Message | None:
        """``scheduled -> suppressed`` (the recipient opted out), the message as written;
        None if no longer pending."""
        try:
            return self._close_pending(message_id, Status.SUPPRESSED, now, source, OPTED_OUT)
        except (Conflict, NotFound):
            return None

    def edit(self, message_id: str, now: datetime, plan: EditPlan) -> Message:
        """One UpdateItem conditional on the message being scheduled: the due time with its
        ``Due`` index keys, and/or the body with its segments; ``Conflict`` once claimed."""
        sets = ["#updated = :now"]
        values: dict[str, Any] = {":now": {"S": keys.timestamp(now)}}
        if plan.due is not None:
            sets += ["#send_at = :send_at", "#due_pk = :due_pk", "#due_sk = :due_sk"]
            due_keys = codec.due_keys(message_id, plan.due)
            values |= {
                ":send_at": {"S": keys.timestamp(plan.due)},
                ":due_pk": {"S": due_keys[keys.DUE_PK]},
                ":due_sk": {"S": due_keys[keys.DUE_SK]},
            }
        if plan.body is not None and plan.segments is not None:
            sets += ["#body = :body", "#segments = :segments", "#encoding = :encoding"]
            values |= {
                ":body": {"S": plan.body},
                ":segments": {"N": str(plan.segments.segments)},
                ":encoding": {"S": plan.segments.encoding},
            }
        return self._update_pending(message_id, "SET " + ", ".join(sets), values)

    def pending_for(self, number: str) -> list[str]:
        """Ids of the scheduled outbound messages to ``number`` (ByCustomer index).

        The index projects ``type`` but not ``status`` (a status change would rewrite it):
        the number's outbound messages are read with BatchGetItem and checked.
        """
        request: dict[str, Any] = {"TableName": self.table_name, "IndexName": keys.BY_CUSTOMER}
        request |= expression(
            {":pk": {"S": number}, ":inbound": {"S": MessageType.INBOUND}},
            KeyConditionExpression="#customer_pk = :pk",
            FilterExpression="#type <> :inbound",
        )
        rows = sharding.query_stream(self.client, request, "query pending messages")
        found = sharding.hydrate(
            self.client,
            self.table_name,
            rows,
            keep=lambda item: item.get("status") == Status.SCHEDULED,
            projection="#id, #status",
            names={"#id": "id", "#status": "status"},
        )
        return [str(item["id"]) for _, item in found]

    def record_opt_out(self, number: str, message_id: str, keyword: str, now: datetime) -> None:
        """Remember an opt-out learned from Plum (an existing opt-out record is kept)."""
        opt_out = OptOut(number=number, keyword=keyword, at=now, message_id=message_id)
        with store_errors("record opt-out"):
            try:
                self.client.put_item(
                    TableName=self.table_name,
                    Item=codec.serialize(codec.opt_out_item(opt_out)),
                    ConditionExpression=f"attribute_not_exists({keys.PK})",
                )
            except ClientError as exc:
                if not condition_failed(exc):
                    raise

    # -- the dispatcher's moves --------------------------------------------------------

    def due(self, now: datetime, limit: int, after: DueCursor | None = None) -> DuePage:
        """Messages due at ``now``, oldest due first across the ``Due`` index's shards.

        One Query per shard (in parallel), merged by due time; ``after`` is the
        ``next_position`` of the previous page.
        """
        low = keys.time_sort_key(after.due_at, after.message_id) if after else None
        condition = "#due_pk = :pk AND #due_sk < :bound"
        # "~" sorts after "#", so every "<now>#<id>" is below the bound.
        values: dict[str, Any] = {":bound": {"S": keys.timestamp(now) + "~"}}
        if low is not None:
            condition = "#due_pk = :pk AND #due_sk BETWEEN :low AND :bound"
            values[":low"] = {"S": low + "\x00"}
        requests = []
        for shard in keys.shard_values(keys.DUE_KIND):
            request: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": keys.DUE,
                "ScanIndexForward": True,
                "Limit": sharding.per_shard_limit(limit),
            }
            # The index projects what a DueRef needs and nothing more.
            request |= expression(values | {":pk": {"S": shard}}, KeyConditionExpression=condition)
            requests.append(request)
        rows = sharding.merged_query(
            self.client, requests, keys.DUE_SK, descending=False, operation="query due messages"
        )
        items = [
            DueRef(str(row["id"]), str(row["to"]), str(row["from"]), _due_at(row))
            for _, row in zip(range(limit), rows, strict=False)
        ]
        last = items[-1] if len(items) == limit else None
        return DuePage(items, DueCursor(last.due_at, last.message_id) if last else None)

    def claim(
        self,
        ref: DueRef,
        token: str,
        now: datetime,
        check_after: datetime,
        result_url: str | None,
    ) -> Claim | None:
        """``scheduled -> sending`` if still due as listed; None when someone was first."""
        values = _status_values(Status.SENDING, now, "dispatcher", ref.message_id) | {
            ":scheduled": {"S": Status.SCHEDULED},
            ":due_sk": {"S": keys.time_sort_key(ref.due_at, ref.message_id)},
            ":token": {"S": token},
            ":check": {"S": keys.timestamp(check_after)},
        }
        sets = [_SET_STATUS, "#token = :token", "#claimed_at = :now", "#check_after = :check"]
        if result_url is not None:
            sets.append("#result_url = :url")
            values[":url"] = {"S": result_url}
        row, _ = self._update_if(
            "claim message",
            ref.message_id,
            values,
            f"SET {', '.join(sets)} REMOVE #due_pk, #due_sk",
            "#status = :scheduled AND #due_sk = :due_sk",
        )
        return _claim_from(row) if row is not None else None

    def _update_claimed(
        self, claim: Claim, update: str, values: dict[str, Any], require_sending: bool = True
    ) -> dict[str, Any] | None:
        """One conditional update of a claimed message; the current row if it failed."""
        condition = "#token = :token"
        values = values | {":token": {"S": claim.token}, ":sending": {"S": Status.SENDING}}
        if require_sending:
            condition += " AND #status = :sending"
        _, old = self._update_if(
            "update claimed message", claim.message.id, values, update, condition, new=False
        )
        return old

    def record_sent(self, claim: Claim, plum_ids: Sequence[str], now: datetime) -> bool:
        """``sending -> queued`` with Plum's ids; False when the claim was lost.

        When a status callback overtook us (the message is ``sent`` already), Plum's ids
        are still recorded and the newer status is kept.
        """
        values = _status_values(Status.QUEUED, now, "dispatcher", claim.message.id) | {
            ":plum_id": {"S": plum_ids[0]},
            ":plum_ids": {"L": [{"S": i} for i in plum_ids]},
        }
        ids = "#sms_id = :plum_id, #plum_id = :plum_id, #plum_ids = :plum_ids"
        old = self._update_claimed(claim, f"SET {_SET_STATUS}, {ids} {_RELEASE_CLAIM}", values)
        if old is None:
            return True
        if old.get(CLAIM_TOKEN) != claim.token:
            return False
        history = "#history = list_append(if_not_exists(#history, :empty), :entry)"
        update = f"SET {ids}, #updated = :now, {history} {_RELEASE_CLAIM}"
        return self._update_claimed(claim, update, values, require_sending=False) is None

    def retry_later(
        self, claim: Claim, due: datetime, attempts: int, error: str | None, now: datetime
    ) -> bool:
        """``sending -> scheduled``, due again at ``due``; False when the claim was lost."""
        due_keys = codec.due_keys(claim.message.id, due)
        values = _status_values(Status.SCHEDULED, now, "dispatcher-retry", claim.message.id) | {
            ":due_pk": {"S": due_keys[keys.DUE_PK]},
            ":due_sk": {"S": due_keys[keys.DUE_SK]},
            ":attempts": {"N": str(attempts)},
        }
        update = f"SET {_SET_STATUS}, #due_pk = :due_pk, #due_sk = :due_sk, #attempts = :attempts"
        if error is not None:
            update += ", #error = :error"
            values[":error"] = {"S": error}
        return self._update_claimed(claim, f"{update} {_RELEASE_CLAIM}", values) is None

    def check_later(
        self, claim: Claim, check_after: datetime, attempts: int, error: str, now: datetime
    ) -> bool:
        """Keep the claim (Plum may have the message) until Plum is asked about it."""
        values = {
            ":check": {"S": keys.timestamp(check_after)},
            ":attempts": {"N": str(attempts)},
            ":error": {"S": error},
            ":now": {"S": keys.timestamp(now)},
        }
        update = (
            "SET #check_after = :check, #attempts = :attempts, #error = :error, #updated = :now"
        )
        return self._update_claimed(claim, update, values) is None

    def finish(self, claim: Claim, status: str, error: str, now: datetime) -> Message | None:
        """``sending -> failed | suppressed`` with a reason, the message as written; None
        when the claim was lost."""
        values = _status_values(status, now, "dispatcher", claim.message.id) | {
            ":error": {"S": error},
            ":token": {"S": claim.token},
            ":sending": {"S": Status.SENDING},
        }
        row, _ = self._update_if(
            "finish claimed message",
            claim.message.id,
            values,
            f"SET {_SET_STATUS}, #error = :error {_RELEASE_CLAIM}",
            "#token = :token AND #status = :sending",
        )
        return codec.message_from_item(row) if row is not None else None

    def stale(self, now: datetime, limit: int) -> list[Claim]:
        """Claims whose ``check_after`` has passed (ByStatus shards of ``sending``).

        The index projects ``check_after``, so the filter runs there; the claims found
        are read with BatchGetItem.
        """
        requests = []
        for shard in keys.shard_values(Status.SENDING):
            request: dict[str, Any] = {"TableName": self.table_name, "IndexName": keys.BY_STATUS}
            request |= expression(
                {":sending": {"S": shard}, ":now": {"S": keys.timestamp(now)}},
                KeyConditionExpression="#status_pk = :sending",
                FilterExpression="#check_after <= :now",
            )
            requests.append(request)
        rows = sharding.merged_query(
            self.client, requests, keys.TIME_SK, descending=False, operation="query stale claims"
        )
        wanted = [row for _, row in zip(range(limit), rows, strict=False)]
        items = sharding.hydrate(self.client, self.table_name, wanted)
        return [_claim_from(item) for _, item in items]

    def take_over(self, claim: Claim, token: str, check_after: datetime) -> Claim | None:
        """Move a stale claim to a new token; None when another dispatcher was first.

        ``claimed_at`` stays: it is when the message may first have gone to Plum.
        """
        values = {":new": {"S": token}, ":check": {"S": keys.timestamp(check_after)}}
        old = self._update_claimed(claim, "SET #token = :new, #check_after = :check", values)
        if old is not None:
            return None
        return Claim(claim.message, claim.schedule, token, claim.claimed_at, claim.attempts)


def _due_at(row: dict[str, Any]) -> datetime:
    # The sort key is "<due time>#<id>", the time fixed-width (keys.timestamp).
    return datetime.fromisoformat(str(row[keys.DUE_SK]).split("#", 1)[0])


def _claim_from(row: dict[str, Any]) -> Claim:
    claimed_at = row.get(CLAIMED_AT)
    return Claim(
        message=codec.message_from_item(row),
        schedule=Schedule.from_json(row.get(SCHEDULE_ATTR)),
        token=str(row.get(CLAIM_TOKEN, "")),
        claimed_at=datetime.fromisoformat(str(claimed_at)) if claimed_at else None,
        attempts=int(row.get(ATTEMPTS, 0)),
    )
