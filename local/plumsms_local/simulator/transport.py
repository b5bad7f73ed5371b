"""The simulator's own outgoing HTTP: form POSTs to Application URLs and result URLs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

import urllib3

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What a POST got back."""

    status: int
    content_type: str
    body: bytes


class PostFailed(Exception):
    """The POST got no HTTP answer (refused, reset, timed out)."""


class Poster(Protocol):
    """Sends one form-encoded POST; injectable so tests need no sockets."""

    def post_form(
        self, url: str, fields: Sequence[tuple[str, str]], timeout: float
    ) -> HttpAnswer: ...


class Urllib3Poster:
    """A :class:`Poster` over a urllib3 pool: no retries, no redirects, as Plum (inferred)."""

    def __init__(self, pool: urllib3.PoolManager | None = None) -> None:
        self._pool = pool or urllib3.PoolManager(retries=False)

    def post_form(self, url: str, fields: Sequence[tuple[str, str]], timeout: float) -> HttpAnswer:
        """POST ``fields`` form-encoded to ``url``; raises ``PostFailed`` without an answer."""
        try:
            response = self._pool.request(
                "POST",
                url,
                body=urlencode(fields),
                headers={"Content-Type": FORM_CONTENT_TYPE},
                timeout=urllib3.Timeout(total=timeout),
                redirect=False,
            )
        except (urllib3.exceptions.HTTPError, ValueError) as exc:
            raise PostFailed(f"{type(exc).__name__}: {exc}") from exc
        return HttpAnswer(
            status=response.status,
            content_type=response.headers.get("Content-Type", ""),
            body=response.data,
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._pool.clear()
