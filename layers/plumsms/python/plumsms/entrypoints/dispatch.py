"""ScheduledSendFunction's report: a dispatcher run's metrics and log line.

The dispatcher itself is wired in ``plumsms.bootstrap``.
"""

from __future__ import annotations

from typing import Any

from plumsms.observability import logger, metrics
from plumsms.secrets import NOT_CONFIGURED_WARNING
from plumsms.usecases.dispatch import COALESCED, NOT_CONFIGURED, DispatchReport

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
