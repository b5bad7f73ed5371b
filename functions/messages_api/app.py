"""MessagesApiFunction: the authenticated management API (send, schedule, log, export, web page)."""

from __future__ import annotations

from plumsms import coldstart

coldstart.begin()  # before the other imports: no collection until the wiring is built

from plumsms import bootstrap
from plumsms.entrypoints import log_api, sending_api
from plumsms.entrypoints.webhooks import api_handler, api_resolver

settings, secrets, store, publisher = bootstrap.basics()
app = api_resolver(settings, validation=True)
app.include_router(sending_api.routes_from_settings(settings, store, publisher))
app.include_router(log_api.routes_from_settings(settings, store, secrets))
log_api.enable_api_document(app)
coldstart.wired()


lambda_handler = api_handler(app)
