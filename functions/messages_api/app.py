"""MessagesApiFunction: the authenticated management API (send, schedule, log, export, web page)."""

from __future__ import annotations

import gc

# A cold start builds objects that live as long as the execution environment; the
# collector would scan them again and again while the imports run (a quarter of the
# import time). Collect nothing until the wiring is done, then freeze it all.
gc.disable()

from typing import Any

from aws_lambda_powertools.logging.correlation_paths import API_GATEWAY_REST
from aws_lambda_powertools.utilities.typing import LambdaContext

from plumsms import bootstrap
from plumsms.config import Settings
from plumsms.entrypoints import log_api, sending_api
from plumsms.entrypoints.webhooks import api_resolver
from plumsms.observability import logger, metrics, tracer
from plumsms.secrets import SecretValues

settings = Settings.from_env()
secrets = SecretValues(settings)
store = bootstrap.message_store(settings)
publisher = bootstrap.change_publisher(settings)
app = api_resolver(settings, validation=True)
app.include_router(sending_api.routes_from_settings(settings, store, publisher))
app.include_router(log_api.routes_from_settings(settings, store, secrets))
log_api.enable_api_document(app)


gc.freeze()
gc.enable()


# Every log line carries API Gateway's request id. Traces keep no response or error: both
# can hold the webhook key, numbers and bodies.
@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: route the API Gateway event."""
    return app.resolve(event, context)
