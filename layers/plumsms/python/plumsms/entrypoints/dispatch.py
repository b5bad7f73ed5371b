"""ScheduledSendFunction's handler: one dispatcher run, its metrics and log line.

The dispatcher itself is wired in ``plumsms.bootstrap``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plumsms.adapters.dispatch_trigger import is_continue
from plumsms.observability import LambdaHandler, lambda_entry, logger, metrics
from plumsms.secrets import NOT_CONFIGURED_WARNING
from plumsms.usecases.dispatch import COALESCED, NOT_CONFIGURED, DispatchReport

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from plumsms.usecases.dispatch import Dispatcher

_METRICS = {
    "sent": "MessagesSent",
    "reconciled": "SendsReconciled",
    "resent": "SendsResent",
    "retried": "SendRetries",
    "to_check": "SendsToCheck",
    "failed": "SendFailures",
    "suppressed": "SendsSuppressed",
    "lost_race": "ClaimsLost",
    "requested_passes": "PassesRequested",
    "continued": "RunsContinued",
    "slots_missed": "SendSlotsMissed",
    "errors": "DispatchErrors",
}


def dispatch_handler(dispatcher: Dispatcher) -> LambdaHandler:
    """The ``lambda_handler``: one run, for the minute tick, a send-now or a hand-over."""

    @lambda_entry()
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # A hand-over's run waits for its predecessor to let go of the lease.
        report = dispatcher.run(context.get_remaining_time_in_millis, hand_over=is_continue(event))
        return observe_dispatch(report, event)

    return lambda_handler


def observe_dispatch(report: DispatchReport, event: dict[str, Any]) -> dict[str, Any]:
    """Metrics and one log line for a run; the handler's JSON result."""
    summary = report.as_dict()
    for name, metric in _METRICS.items():
        if report[name]:
            metrics.add_metric(name=metric, unit="Count", value=report[name])
    if report.stopped == COALESCED:
        metrics.add_metric(name="RunsCoalesced", unit="Count", value=1)
    if report.stopped == NOT_CONFIGURED:
        logger.warning(NOT_CONFIGURED_WARNING)
    logger.info(
        "dispatch run finished",
        extra={
            "trigger": event.get("detail-type") or event.get("source") or "direct",
            **summary,
        },
    )
    return summary
