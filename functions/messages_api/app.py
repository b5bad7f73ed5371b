"""MessagesApiFunction: the authenticated management API (send, schedule, log, export, web page)."""

from __future__ import annotations

import gc

# A cold start builds objects that live as long as the execution environment; the
# collector would scan them again and again while the imports run (a quarter of the
# import time). Collect nothing until the wiring is done, then freeze it all.
gc.disable()

from plumsms import bootstrap
from plumsms.entrypoints import log_api, sending_api
from plumsms.entrypoints.webhooks import api_handler, api_resolver

settings, secrets, store, publisher = bootstrap.basics()
app = api_resolver(settings, validation=True)
app.include_router(sending_api.routes_from_settings(settings, store, publisher))
app.include_router(log_api.routes_from_settings(settings, store, secrets))
log_api.enable_api_document(app)


gc.freeze()
gc.enable()


lambda_handler = api_handler(app)
