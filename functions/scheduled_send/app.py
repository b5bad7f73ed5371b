"""ScheduledSendFunction: sends due messages (EventBridge every minute, and send-now)."""

from __future__ import annotations

import gc

# A cold start builds objects that live as long as the execution environment; the
# collector would scan them again and again while the imports run (a quarter of the
# import time). Collect nothing until the wiring is done, then freeze it all.
gc.disable()

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from plumsms import bootstrap
from plumsms.adapters.dispatch_trigger import is_continue
from plumsms.entrypoints.dispatch import observe_dispatch
from plumsms.observability import lambda_entry

settings, secrets, store, publisher = bootstrap.basics()
dispatcher = bootstrap.dispatcher(settings, store, secrets, publisher)


gc.freeze()
gc.enable()


@lambda_entry()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: one dispatcher run (the minute tick, a send-now, or a hand-over)."""
    # A hand-over's run waits for its predecessor to let go of the lease.
    report = dispatcher.run(context.get_remaining_time_in_millis, hand_over=is_continue(event))
    return observe_dispatch(report, event)
