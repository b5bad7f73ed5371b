"""ScheduledSendFunction: sends due messages (EventBridge every minute, and send-now)."""

from __future__ import annotations

from plumsms import coldstart

coldstart.begin()  # before the other imports: no collection until the wiring is built

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from plumsms import bootstrap
from plumsms.adapters.dispatch_trigger import is_continue
from plumsms.entrypoints.dispatch import observe_dispatch
from plumsms.observability import lambda_entry

settings, secrets, store, publisher = bootstrap.basics()
dispatcher = bootstrap.dispatcher(settings, store, secrets, publisher)
coldstart.wired()


@lambda_entry()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: one dispatcher run (the minute tick, a send-now, or a hand-over)."""
    # A hand-over's run waits for its predecessor to let go of the lease.
    report = dispatcher.run(context.get_remaining_time_in_millis, hand_over=is_continue(event))
    return observe_dispatch(report, event)
