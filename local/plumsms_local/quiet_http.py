"""The local HTTP servers' base: a client that goes away is not an error worth a traceback.

``socketserver`` prints a traceback for every exception a request raises, including the
``BrokenPipeError`` / ``ConnectionResetError`` of a browser or ``curl`` that closed its
connection early. Those are logged at DEBUG; every other error keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from http.server import ThreadingHTTPServer
from typing import Any

log = logging.getLogger("plumsms.local.http")


class QuietHTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` without tracebacks for dropped connections."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log dropped connections at DEBUG; anything else as ``socketserver`` does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)
