"""ResultUrlFunction: Plum's Result URL (POST /plum/status?key=...&ref=...)."""

from __future__ import annotations

import gc

# A cold start builds objects that live as long as the execution environment; the
# collector would scan them again and again while the imports run (a quarter of the
# import time). Collect nothing until the wiring is done, then freeze it all.
gc.disable()

from aws_lambda_powertools.event_handler import Response

from plumsms import bootstrap
from plumsms.entrypoints.status_webhook import answer_status_callback
from plumsms.entrypoints.webhooks import api_handler, api_resolver
from plumsms.observability import tracer

settings, secrets, store, publisher = bootstrap.basics()
service = bootstrap.status_service(store, publisher)
app = api_resolver(settings)


gc.freeze()
gc.enable()


@app.post("/plum/status")
@tracer.capture_method(capture_response=False, capture_error=False)
def status_callback() -> Response[str]:
    """Apply Plum's status report to the message's status and history."""
    return answer_status_callback(app.current_event, service, secrets.webhook_key())


lambda_handler = api_handler(app)
