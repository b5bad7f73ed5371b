"""MessagesApiFunction: the authenticated management API (send, schedule, log, export, web page)."""

from __future__ import annotations

import gc

# A cold start builds objects that live as long as the execution environment; the
# collector would scan them again and again while the imports run (a quarter of the
# import time). Collect nothing until the wiring is done, then freeze it all.
gc.disable()

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from plumsms import bootstrap
from plumsms.config import Settings
from plumsms.entrypoints import log_api, sending_api
from plumsms.entrypoints.webhooks import register_error_handlers
from plumsms.observability import logger, metrics, tracer
from plumsms.secrets import SecretValues

settings = Settings.from_env()
secrets = SecretValues(settings)
store = bootstrap.message_store(settings)
app = APIGatewayRestResolver()
register_error_handlers(app)
app.include_router(sending_api.routes_from_settings(settings, store, secrets))
app.include_router(log_api.routes_from_settings(settings, store, secrets))


gc.freeze()
gc.enable()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: route the API Gateway event."""
    return app.resolve(event, context)
