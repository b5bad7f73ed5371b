"""The Result URL route, and the wiring and metrics the delivery-status functions share.

``POST /plum/status?key=<webhook key>&ref=<our message id>``: the key is checked as on
the Application URL; the body is a form (as Plum sends it) or JSON. Any accepted
callback, even a duplicate or one for an unknown message, is answered 200, so Plum has
nothing to retry; a wrong key is 403 and a malformed body 400, with nothing stored.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from plumsms.domain.callbacks import StatusCallback, callback_fields, parse_ref
from plumsms.domain.models import Status
from plumsms.domain.status import StatusChange
from plumsms.entrypoints.webhooks import (
    form_fields,
    json_document,
    parse_model,
    raw_body,
    require_key,
)
from plumsms.observability import LambdaHandler, lambda_entry, logger, metrics, tracer
from plumsms.secrets import NOT_CONFIGURED_WARNING
from plumsms.usecases.status import Outcome, StatusResult, StatusService

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from plumsms.usecases.reconcile import Reconciler, ReconcileReport

OUTCOME_METRICS: dict[str, str] = {
    Status.DELIVERED: "MessagesDelivered",
    Status.UNDELIVERED: "MessagesUndelivered",
    Status.FAILED: "MessagesFailed",
}
"""Delivery outcome -> the count metric emitted when a message reaches it."""
QUEUE_TO_FINAL_METRIC = "QueueToFinalSeconds"


# -- the route ----------------------------------------------------------------------------


@tracer.capture_method(capture_response=False, capture_error=False)
def answer_status_callback(
    service: StatusService, event: APIGatewayProxyEvent, webhook_key: str
) -> Response[str]:
    """Check the key, parse the callback, apply it, answer 200 with what it did."""
    require_key(event, webhook_key)
    ref = parse_ref(event.get_query_string_value("ref"))
    callback = parse_model(StatusCallback, callback_body(event))
    result = service.handle_callback(callback, ref)
    observe_callback(result, callback.sms_message_id)
    return Response(
        200, content_types.APPLICATION_JSON, json.dumps({"result": result.outcome.value})
    )


def callback_body(event: APIGatewayProxyEvent) -> dict[str, object]:
    """The callback's fields: JSON when the content type says so, a form otherwise."""
    content_type = event.headers.get("content-type") or event.headers.get("Content-Type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == content_types.APPLICATION_JSON or media_type.endswith("+json"):
        return callback_fields(json_document(raw_body(event)))
    return dict(form_fields(event))


# -- observability ------------------------------------------------------------------------


def observe_callback(result: StatusResult, sms_message_id: str) -> None:
    """Metrics and one log line for a callback (ids and statuses only)."""
    metrics.add_metric(name="StatusCallbacks", unit="Count", value=1)
    if result.outcome is Outcome.DUPLICATE:
        metrics.add_metric(name="DuplicateCallbacks", unit="Count", value=1)
    if result.outcome is Outcome.ORPHANED:
        metrics.add_metric(name="OrphanCallbacks", unit="Count", value=1)
    if not result.known:
        metrics.add_metric(name="UnknownStatuses", unit="Count", value=1)
    observe_changes([result.change] if result.change else [])
    logger.info(
        "status callback",
        extra={
            "outcome": result.outcome.value,
            "message_id": result.message_id,
            "sms_message_id": sms_message_id,
            "reported": result.reported,
            "status": result.change.status if result.change else None,
        },
    )


def observe_changes(changes: list[StatusChange]) -> None:
    """Delivery outcome counts and queue-to-final time for each change (events that could
    not be published are counted by the publisher)."""
    for change in changes:
        name = OUTCOME_METRICS.get(change.status)
        if name is None:
            continue
        metrics.add_metric(name=name, unit="Count", value=1)
        if change.queue_to_final_seconds is not None:
            metrics.add_metric(
                name=QUEUE_TO_FINAL_METRIC, unit="Seconds", value=change.queue_to_final_seconds
            )


def reconcile_handler(reconciler: Reconciler) -> LambdaHandler:
    """ReconcilerFunction's ``lambda_handler``: one pass (the scheduled event carries
    nothing it needs), stopping while the invocation still has time to report."""

    @lambda_entry()
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
        time_left = context.get_remaining_time_in_millis
        return observe_reconcile(reconciler.run(time_left=lambda: time_left() / 1000))

    return lambda_handler


def observe_reconcile(report: ReconcileReport) -> dict[str, object]:
    """Metrics and one log line for a reconciler run; the handler's JSON result."""
    metrics.add_metric(name="ReconciledMessages", unit="Count", value=report.examined)
    metrics.add_metric(name="ReconcileChanges", unit="Count", value=len(report.changes))
    metrics.add_metric(name="ReconcileErrors", unit="Count", value=report.errors)
    observe_changes(report.changes)
    if report.not_configured:
        logger.warning(NOT_CONFIGURED_WARNING)
    summary: dict[str, object] = {
        "outcome": "not_configured" if report.not_configured else "done",
        "examined": report.examined,
        "changed": len(report.changes),
        "without_plum_id": report.without_plum_id,
        "errors": report.errors,
        "stopped_early": report.stopped_early,
    }
    logger.info("reconciled", extra=summary)
    return summary
