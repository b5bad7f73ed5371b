"""ResultUrlFunction: Plum's Result URL (POST /plum/status?key=...&ref=...)."""

from __future__ import annotations

from plumsms import coldstart

coldstart.begin()  # before the other imports: no collection until the wiring is built

from aws_lambda_powertools.event_handler import Response

from plumsms import bootstrap
from plumsms.entrypoints.status_webhook import answer_status_callback
from plumsms.entrypoints.webhooks import api_handler, api_resolver
from plumsms.observability import tracer

settings, secrets, store, publisher = bootstrap.basics()
service = bootstrap.status_service(store, publisher)
app = api_resolver(settings)
coldstart.wired()


@app.post("/plum/status")
@tracer.capture_method(capture_response=False, capture_error=False)
def status_callback() -> Response[str]:
    """Apply Plum's status report to the message's status and history."""
    return answer_status_callback(app.current_event, service, secrets.webhook_key())


lambda_handler = api_handler(app)
