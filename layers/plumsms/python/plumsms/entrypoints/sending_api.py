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
from typing import Any, cast

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from plumsms.adapters.dispatch_trigger import dispatch_trigger
from plumsms.adapters.dynamodb.outbox import DynamoOutbox
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.config import Settings
from plumsms.domain.errors import NotFound, ValidationFailed
from plumsms.domain.sending import EditRequest, SendRequest, request_fingerprint
from plumsms.domain.status import ChangePublisher
from plumsms.entrypoints.webhooks import json_document, parse_model, raw_body
from plumsms.observability import logger, metrics, tracer
from plumsms.usecases.sending import SendingService

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_MESSAGE_ID = re.compile(r"^[0-9a-f]{32}$")
_JSON_TYPES = ("application/json", "text/json")


def json_object(event: BaseProxyEvent) -> dict[str, Any]:
    """The request body as a JSON object, or ``ValidationFailed``."""
    content_type = (event.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type and not (content_type in _JSON_TYPES or content_type.endswith("+json")):
        raise ValidationFailed("content-type", "must be application/json")
    data = json_document(raw_body(cast(APIGatewayProxyEvent, event)))
    if not isinstance(data, dict):
        raise ValidationFailed("body", "must be a JSON object")
    return data


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
            "JSON body: `to`, `from` (one of the account's SMS numbers), `body`, and "
            "optionally `send_at` (ISO 8601), `time_zone`, `recurrence` and `quiet_hours`. "
            f"An `{IDEMPOTENCY_HEADER}` header makes retries safe."
        ),
        tags=["sending"],
    )
    @tracer.capture_method(capture_response=False, capture_error=False)
    def send_message() -> Response[str]:
        event = router.current_event
        payload = json_object(event)
        request = parse_model(SendRequest, payload)
        key = event.headers.get(IDEMPOTENCY_HEADER)
        created = service.create(request, request_fingerprint(payload), key)
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
        description="JSON body: `send_at` (with an optional `time_zone`) and/or `body`.",
        tags=["sending"],
    )
    @tracer.capture_method(capture_response=False, capture_error=False)
    def edit_message(message_id: str) -> Response[str]:
        edit = parse_model(EditRequest, json_object(router.current_event))
        body = service.edit(_checked_id(message_id), edit)
        logger.info("message changed", extra={"message_id": message_id})
        return _json(200, body)

    return router
