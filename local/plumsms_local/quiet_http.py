"""The local HTTP servers' base: served from a daemon thread and stopped in one call; a
client that goes away is not an error worth a traceback.

``socketserver`` prints a traceback for every exception a request raises, including the
``BrokenPipeError`` / ``ConnectionResetError`` of a browser or ``curl`` that closed its
connection early. Those are logged at DEBUG; every other error keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
import threading
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

    def serve_in_background(
        self, name: str | None = None, poll_interval: float = 0.5
    ) -> threading.Thread:
        """Serve from a daemon thread (``shutdown()`` waits up to ``poll_interval``)."""
        thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": poll_interval},
            name=name,
            daemon=True,
        )
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
