"""The Application URL route: from API Gateway event to Reply-Schema XML answer."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from plumsms.domain.guards import Unanswered
from plumsms.domain.keywords import KeywordKind
from plumsms.domain.models import InboundSms
from plumsms.domain.replyxml import CONTENT_TYPE
from plumsms.entrypoints.webhooks import form_fields, parse_model, require_key
from plumsms.observability import logger, metrics, tracer
from plumsms.usecases.inbound import InboundResult, InboundService

MAX_INBOUND_REQUEST_BYTES = 512 * 1024
"""The longest SMS (255 parts), every character percent-encoded as 4 UTF-8 bytes, fits."""


@tracer.capture_method(capture_response=False, capture_error=False)
def answer_inbound(
    service: InboundService, event: APIGatewayProxyEvent, webhook_key: str
) -> Response[str]:
    """Check the key, parse the form, run the use case, answer ``text/xml``."""
    require_key(event, webhook_key)
    fields = form_fields(event, max_bytes=MAX_INBOUND_REQUEST_BYTES, lenient=True)
    sms = parse_model(InboundSms, fields)
    result = service.handle(sms)
    _observe(sms, result)
    return Response(200, CONTENT_TYPE, result.xml.decode("utf-8"))


def _observe(sms: InboundSms, result: InboundResult) -> None:
    # Ids and counts only: numbers and bodies are personal data.
    if result.duplicate:
        metrics.add_metric(name="DuplicateWebhooks", unit="Count", value=1)
        logger.info("duplicate inbound answered", extra={"sms_message_id": sms.sms_message_id})
        return
    decision = result.decision
    replies = result.sent
    metrics.add_metric(name="MessagesReceived", unit="Count", value=1)
    metrics.add_metric(name="Replies", unit="Count", value=replies)
    if result.unanswered is not None:
        # Withheld answers (loops, pumping, caps, opt-out review): alarmed on.
        metrics.add_metric(name="UnansweredInbound", unit="Count", value=1)
    if result.unanswered is Unanswered.OPT_OUT_REVIEW:
        metrics.add_metric(name="OptOutReviews", unit="Count", value=1)
    if decision and decision.keyword is KeywordKind.OPT_OUT:
        metrics.add_metric(name="OptOuts", unit="Count", value=1)
    if decision and decision.keyword is KeywordKind.OPT_IN:
        metrics.add_metric(name="OptIns", unit="Count", value=1)
    logger.info(
        "inbound answered",
        extra={
            "sms_message_id": sms.sms_message_id,
            "rule": decision.rule if decision else "none",
            "replies": replies,
            "suppressed": result.suppressed,
            "unanswered": result.unanswered,
        },
    )
    logger.debug("inbound content", extra={"from": sms.from_, "body": sms.body})
