"""ResultUrlFunction: Plum's Result URL (POST /plum/status?key=...&ref=...)."""

from __future__ import annotations

import gc

# A cold start builds objects that live as long as the execution environment; the
# collector would scan them again and again while the imports run (a quarter of the
# import time). Collect nothing until the wiring is done, then freeze it all.
gc.disable()

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging.correlation_paths import API_GATEWAY_REST
from aws_lambda_powertools.utilities.typing import LambdaContext

from plumsms import bootstrap
from plumsms.config import Settings
from plumsms.entrypoints.status_webhook import answer_status_callback
from plumsms.entrypoints.webhooks import api_resolver
from plumsms.observability import logger, metrics, tracer
from plumsms.secrets import SecretValues

settings = Settings.from_env()
secrets = SecretValues(settings)
store = bootstrap.message_store(settings)
publisher = bootstrap.change_publisher(settings)
service = bootstrap.status_service(store, publisher)
app = api_resolver(settings)


gc.freeze()
gc.enable()


@app.post("/plum/status")
@tracer.capture_method(capture_response=False, capture_error=False)
def status_callback() -> Response[str]:
    """Apply Plum's status report to the message's status and history."""
    return answer_status_callback(app.current_event, service, secrets.webhook_key())


# Every log line carries API Gateway's request id. Traces keep no response or error: both
# can hold the webhook key, numbers and bodies.
@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: route the API Gateway event."""
    return app.resolve(event, context)
