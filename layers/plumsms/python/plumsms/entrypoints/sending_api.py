"""The sending routes of the management API: send or schedule, cancel, move or edit.

``routes_from_settings`` returns a Powertools ``Router`` that MessagesApiFunction includes
next to the log routes (which own ``GET /messages`` and ``GET /messages/{id}``).

- ``POST /messages`` (JSON; optional ``Idempotency-Key`` header) -> 201 with the message
  (``id``, ``status`` ``scheduled``, ``send_at`` = the due time in UTC, ``segments``,
  ``encoding``) and its ``schedule``. A replay of the same key and body answers the
  first answer again with ``Idempotent-Replayed: true``.
- ``DELETE /messages/{id}`` -> 200 with the cancelled message; 409 once it went to Plum.
- ``PATCH /messages/{id}`` (``send_at``/``time_zone`` and/or ``body``) -> 200; 409 once
  it went to Plum.
"""

# No ``from __future__ import annotations``: Powertools reads the route functions'
# annotations at run time when it builds the OpenAPI document.

import json
import re
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header

from plumsms.adapters.dispatch_trigger import dispatch_trigger
from plumsms.adapters.dynamodb.outbox import DynamoOutbox
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.config import Settings
from plumsms.domain.errors import NotFound
from plumsms.domain.models import Message
from plumsms.domain.sending import EditRequest, SendRequest, request_fingerprint
from plumsms.domain.status import ChangePublisher
from plumsms.entrypoints.webhooks import error_responses
from plumsms.observability import logger, metrics, tracer
from plumsms.usecases.sending import SendingService

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_MESSAGE_ID = re.compile(r"^[0-9a-f]{32}$")
_IDEMPOTENCY_KEY = Header(
    alias=IDEMPOTENCY_HEADER,
    max_length=255,
    description=(
        "Any unique string (a UUID): a retry with the same key and body answers the first "
        f"answer again, with `{REPLAYED_HEADER}: true`, and sends nothing new."
    ),
)


def _message_response(status: int, description: str) -> dict[int, Any]:
    return {
        status: {
            "description": description,
            "content": {content_types.APPLICATION_JSON: {"model": Message}},
        }
    }


def _json(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _checked_id(message_id: str) -> str:
    if not _MESSAGE_ID.fullmatch(message_id):
        raise NotFound(f"message {message_id!r}")
    return message_id


def _report_trigger_error(exc: Exception) -> None:
    metrics.add_metric(name="DispatchTriggerErrors", unit="Count", value=1)
    logger.warning(
        "could not wake the dispatcher; the scheduled run will send the message",
        extra={"error": type(exc).__name__},
    )


def sending_service(
    settings: Settings, store: DynamoMessageStore, publisher: ChangePublisher
) -> SendingService:
    """The sending use case over the message table, waking the dispatcher for send-now and
    publishing cancellations."""
    return SendingService(
        outbox=DynamoOutbox(store),
        sms_numbers=settings.account_numbers,
        trigger=dispatch_trigger(settings.scheduled_send_function),
        on_trigger_error=_report_trigger_error,
        publisher=publisher,
    )


def routes_from_settings(
    settings: Settings, store: DynamoMessageStore, publisher: ChangePublisher
) -> Router:
    """``POST /messages``, ``DELETE /messages/{id}`` and ``PATCH /messages/{id}``.

    Sending needs no secret: the dispatcher builds the result URLs.
    """
    return build_routes(sending_service(settings, store, publisher))


def build_routes(service: SendingService) -> Router:
    """The routes over ``service`` (tests hand in their own)."""
    router = Router()  # type: ignore[no-untyped-call]

    @router.post(
        "/messages",
        summary="Send an SMS now, at a time, or on a recurring schedule",
        description=(
            "`from` is one of the account's SMS numbers; without `send_at` the message goes "
            "now. The answer is the scheduled message (`status` `scheduled`, `send_at` its "
            "due time in UTC) with its `schedule`."
        ),
        tags=["sending"],
        responses={
            **_message_response(201, "Scheduled (or, with a repeated Idempotency-Key, replayed)"),
            **error_responses(400, 401, 409),
        },
    )
    @tracer.capture_method(capture_response=False, capture_error=False)
    def send_message(
        request: Annotated[SendRequest, Body()],
        idempotency_key: Annotated[str | None, _IDEMPOTENCY_KEY] = None,
    ) -> Response[str]:
        # The fingerprint is of the body as sent, so a replay with other defaults is new.
        payload = router.current_event.json_body
        created = service.create(request, request_fingerprint(payload), idempotency_key)
        message_id = str(created.body.get("id"))
        if created.replayed:
            metrics.add_metric(name="IdempotentReplays", unit="Count", value=1)
            logger.info("send request replayed", extra={"message_id": message_id})
        else:
            metrics.add_metric(name="MessagesScheduled", unit="Count", value=1)
            logger.info(
                "message scheduled",
                extra={"message_id": message_id, "send_at": created.body.get("send_at")},
            )
        headers = {"Location": f"messages/{message_id}"}
        if created.replayed:
            headers[REPLAYED_HEADER] = "true"
        return _json(201, created.body, headers)

    @router.delete(
        "/messages/<message_id>",
        summary="Cancel a pending message (409 once it has gone to Plum)",
        tags=["sending"],
        responses={
            **_message_response(200, "The cancelled message"),
            **error_responses(401, 404, 409),
        },
    )
    @tracer.capture_method(capture_response=False, capture_error=False)
    def cancel_message(message_id: str) -> Response[str]:
        message = service.cancel(_checked_id(message_id))
        logger.info("message cancelled", extra={"message_id": message.id})
        metrics.add_metric(name="MessagesCancelled", unit="Count", value=1)
        return _json(200, message.to_json())

    @router.patch(
        "/messages/<message_id>",
        summary="Move a pending message or change its body (409 once it has gone to Plum)",
        description="`send_at` (with an optional `time_zone`) and/or `body`.",
        tags=["sending"],
        responses={
            **_message_response(200, "The changed message"),
            **error_responses(400, 401, 404, 409),
        },
    )
    @tracer.capture_method(capture_response=False, capture_error=False)
    def edit_message(message_id: str, edit: Annotated[EditRequest, Body()]) -> Response[str]:
        body = service.edit(_checked_id(message_id), edit)
        logger.info("message changed", extra={"message_id": message_id})
        return _json(200, body)

    return router
