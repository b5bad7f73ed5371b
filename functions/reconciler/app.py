"""ReconcilerFunction: on a schedule, asks Plum about messages stuck in queued or sent."""

from __future__ import annotations

from plumsms import coldstart

coldstart.begin()  # before the other imports: no collection until the wiring is built

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from plumsms import bootstrap
from plumsms.entrypoints.status_webhook import observe_reconcile
from plumsms.observability import lambda_entry

settings, secrets, store, publisher = bootstrap.basics()
reconcile = bootstrap.reconciler(settings, store, secrets, publisher)
coldstart.wired()


@lambda_entry()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: one reconciliation pass (the scheduled event carries nothing we need)."""
    report = reconcile.run(time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    return observe_reconcile(report)
