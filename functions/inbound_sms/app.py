"""InboundSmsFunction: Plum's Application URL (POST /plum/inbound?key=...)."""

from __future__ import annotations

from plumsms import coldstart

coldstart.begin()  # before the other imports: no collection until the wiring is built

from pathlib import Path

from aws_lambda_powertools.event_handler import Response

from plumsms import bootstrap
from plumsms.entrypoints.inbound import answer_inbound
from plumsms.entrypoints.webhooks import api_handler, api_resolver
from plumsms.observability import tracer

settings, secrets, store, publisher = bootstrap.basics()
service = bootstrap.inbound_service(settings, store, secrets, publisher, Path(__file__).parent)
app = api_resolver(settings)
coldstart.wired()


@app.post("/plum/inbound")
@tracer.capture_method(capture_response=False, capture_error=False)
def inbound() -> Response[str]:
    """Log the SMS, decide the replies and answer Plum with Reply-Schema XML."""
    return answer_inbound(app.current_event, service, secrets.webhook_key())


lambda_handler = api_handler(app)
