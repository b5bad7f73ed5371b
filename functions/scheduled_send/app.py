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
from plumsms.config import Settings
from plumsms.entrypoints.dispatch import observe_dispatch
from plumsms.observability import logger, metrics, tracer
from plumsms.secrets import SecretValues

settings = Settings.from_env()
secrets = SecretValues(settings)
store = bootstrap.message_store(settings)
publisher = bootstrap.change_publisher(settings)
dispatcher = bootstrap.dispatcher(settings, store, secrets, publisher)


gc.freeze()
gc.enable()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: one dispatcher run (the minute tick, a send-now, or a hand-over)."""
    logger.set_correlation_id(context.aws_request_id)  # the run's id, on every line of it
    # A hand-over's run waits for its predecessor to let go of the lease.
    report = dispatcher.run(context.get_remaining_time_in_millis, hand_over=is_continue(event))
    return observe_dispatch(report, event)
