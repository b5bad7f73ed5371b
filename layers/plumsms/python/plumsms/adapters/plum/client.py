"""``PlumClient``: Plum DEV's SMS REST API over HTTP (urllib3), implementing ``PlumGateway``.

Retry policy (urllib3 ``Retry``: exponential backoff with jitter, ``Retry-After``
honoured up to ``retry_after_max``; urllib3 makes the first retry at once):

- GET services (status, messages, conversation) are safe to repeat: retried on
  connection errors, read timeouts, broken connections, 429, 500, 502, 503 and 504.
- POST ``sms/queue`` is not idempotent. It is retried only where Plum cannot have
  queued the SMS: connection errors (nothing was sent) and 429/503 answers (turned
  away). A read timeout or a connection lost after the request went out is NOT
  retried: Plum may have queued the SMS, so the client raises
  ``PlumUnavailable(maybe_sent=True)`` and the dispatcher reconciles with
  ``sms/messages`` before sending again. 500/502/504 on a queue call are not retried
  either, for the same reason, and carry ``maybe_sent=True``.

Logs carry the service, HTTP status, attempts and timing; never numbers or bodies,
never the query string (it can hold a phone number).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util import Retry, Timeout

from plumsms import __version__
from plumsms.adapters.plum.envelope import MAX_ANSWER_BYTES, Format, read_answer
from plumsms.domain.errors import ConfigurationError, ValidationFailed
from plumsms.domain.models import parse_sms_message_id
from plumsms.domain.phone import normalize, plum_from_digits, plum_to_digits
from plumsms.domain.plum import (
    PlumError,
    PlumGateway,
    PlumMessageQuery,
    PlumPageQuery,
    PlumSmsResource,
    PlumUnavailable,
    UnexpectedResponse,
)

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger as PowertoolsLogger

Service = Literal["queue", "status", "messages", "conversation"]

QUERY_PARAMETERS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "sms_message_id": "sms_message_id",
        "offset": "offset",
        "limit": "limit",
        "sort": "sort",
        "start": "start",
        "end": "end",
        "type": "type",
        "number": "phone_number",
        "number_side": "phone_number_type",
        "account_number": "account_phone_number",
        "customer_number": "customer_phone_number",
    }
)
"""Our filter name -> Plum's query parameter name, for the GET services.

INFERRED: Plum documents what each filter means and their order, not their names.
Change a name here and nowhere else once Plum's real name is known.
"""

DEFAULT_TIMEOUT: Final = Timeout(connect=3.05, read=10.0)
"""Connect quickly or give up; Plum's queue call can take a few seconds to answer."""

_FORM = "application/x-www-form-urlencoded"
_ACCEPT: Final[Mapping[str, str]] = MappingProxyType(
    {"json": "application/json", "xml": "application/xml"}
)
_GET_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_POST_RETRY_STATUSES = frozenset({429, 503})
"""Answers meaning Plum turned the request away without processing it."""

_logger = logging.getLogger(__name__)


class PlumClient:
    """Plum DEV's SMS REST API: HTTP Basic auth on every call, pooled connections.

    Thread-safe: one instance per cold start, shared by concurrent sends.
    ``pool`` lets tests (or a caller with its own proxy/TLS settings) inject a
    ``urllib3.PoolManager``; timeouts and retries are passed per request either way.
    ``backoff_factor`` (and by default the jitter) 0 retries at once.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff_factor: float = 0.5,
        backoff_max: float = 8.0,
        backoff_jitter: float | None = None,
        retry_after_max: int = 10,
        pool: urllib3.PoolManager | None = None,
        fmt: Format = "json",
        logger: logging.Logger | PowertoolsLogger | None = None,
    ) -> None:
        scheme = urlsplit(base_url).scheme
        if scheme not in ("http", "https") or not urlsplit(base_url).netloc:
            raise ConfigurationError("Plum API URL must be an http(s) URL")
        if not username or ":" in username or not password:
            raise ConfigurationError("Plum username (without ':') and password are required")
        if fmt not in _ACCEPT:
            raise ConfigurationError("Plum answer format must be 'json' or 'xml'")
        if retries < 0:
            raise ConfigurationError("retries must not be negative")
        # Jitter as large as the first real wait unless given: backoff_factor=0 (tests)
        # then retries at once instead of sleeping up to the jitter.
        jitter = backoff_factor if backoff_jitter is None else backoff_jitter
        # Without the trailing slash, joining "sms/queue.json" would drop the last segment.
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._fmt: Format = fmt
        self._timeout = (
            timeout if isinstance(timeout, Timeout) else Timeout(connect=timeout, read=timeout)
        )
        self._pool = pool if pool is not None else urllib3.PoolManager(maxsize=10)
        self._log = logger if logger is not None else _logger
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._headers: Mapping[str, str] = MappingProxyType(
            {
                "Authorization": f"Basic {credentials}",
                "Accept": _ACCEPT[fmt],
                "User-Agent": f"plumsms/{__version__}",
            }
        )

        def retry(method: str, statuses: frozenset[int], read: int | bool) -> Retry:
            return Retry(
                total=retries,
                connect=retries,
                read=read,
                status=retries,
                other=0,
                redirect=False,
                allowed_methods=frozenset({method}),
                status_forcelist=statuses,
                raise_on_status=False,  # hand the last answer to the envelope parser
                backoff_factor=backoff_factor,
                backoff_max=backoff_max,
                backoff_jitter=jitter,
                retry_after_max=retry_after_max,
            )

        self._get_retry = retry("GET", _GET_RETRY_STATUSES, read=retries)
        # read=False re-raises a read timeout at once: the SMS may be queued already.
        # allowed_methods then only gates the 429/503 retries.
        self._post_retry = retry("POST", _POST_RETRY_STATUSES, read=False)

    def queue(
        self, to: str, from_: str, body: str, result_url: str | None = None
    ) -> list[PlumSmsResource]:
        """POST ``sms/queue``: queue one SMS from an account number (E.164) to ``to``."""
        if not body:
            raise ValidationFailed("body", "must not be empty")
        fields = {
            "to": plum_to_digits(normalize(to, "to")),
            "from": plum_from_digits(normalize(from_, "from")),
            "body": body,
        }
        if result_url:
            fields["result_url"] = result_url
        resources = self._call("queue", fields)
        if not resources:
            raise UnexpectedResponse("queue answer holds no SMS message", maybe_sent=True)
        return resources

    def status(self, sms_message_id: str) -> PlumSmsResource:
        """GET ``sms/status``: the current resource of one message."""
        wanted = parse_sms_message_id(sms_message_id)
        resources = self._call("status", {QUERY_PARAMETERS["sms_message_id"]: wanted})
        for resource in resources:
            if resource.sms_message_id == wanted:
                return resource
        raise UnexpectedResponse("status answer does not hold the requested message")

    def messages(self, query: PlumMessageQuery | None = None) -> list[PlumSmsResource]:
        """GET ``sms/messages``: one page of messages matching ``query``."""
        query = query if query is not None else PlumMessageQuery()
        params = _page_params(query)
        params[QUERY_PARAMETERS["type"]] = query.type
        if query.number is not None:
            # Plum writes account numbers with 10 digits and customers with 11 (inferred).
            digits = plum_from_digits if query.number_side == "account" else plum_to_digits
            params[QUERY_PARAMETERS["number"]] = digits(query.number)
        if query.number_side is not None:
            params[QUERY_PARAMETERS["number_side"]] = query.number_side
        return self._call("messages", params)

    def conversation(
        self, account_number: str, customer_number: str, query: PlumPageQuery | None = None
    ) -> list[PlumSmsResource]:
        """GET ``sms/conversation``: one page of messages between two numbers (E.164)."""
        params = _page_params(query if query is not None else PlumPageQuery())
        params[QUERY_PARAMETERS["account_number"]] = plum_from_digits(
            normalize(account_number, "account_number")
        )
        params[QUERY_PARAMETERS["customer_number"]] = plum_to_digits(
            normalize(customer_number, "customer_number")
        )
        return self._call("conversation", params)

    def _call(self, service: Service, params: Mapping[str, str]) -> list[PlumSmsResource]:
        is_queue = service == "queue"
        url = f"{self._base_url}sms/{service}.{self._fmt}"
        headers = dict(self._headers)
        body: bytes | None = None
        if is_queue:
            body = urlencode(params).encode("ascii")
            headers["Content-Type"] = _FORM
        else:
            url = f"{url}?{urlencode(params)}"
        started = time.monotonic()
        try:
            http_status, answer, attempts = self._exchange(
                "POST" if is_queue else "GET", url, body, headers
            )
            resources = read_answer(
                answer, fmt=self._fmt, http_status=http_status, request_may_have_run=is_queue
            )
        except PlumError as exc:
            self._log.warning(
                "Plum %s failed: %s",
                service,
                type(exc).__name__,
                extra={
                    "plum_service": service,
                    "http_status": exc.http_status,
                    "transient": exc.transient,
                    "maybe_sent": exc.maybe_sent,
                    "elapsed_ms": _elapsed_ms(started),
                },
            )
            if isinstance(exc, UnexpectedResponse) and exc.excerpt:
                self._log.debug("Plum %s answer began %r", service, exc.excerpt)
            raise
        self._log.info(
            "Plum %s answered",
            service,
            extra={
                "plum_service": service,
                "http_status": http_status,
                "attempts": attempts,
                "count": len(resources),
                "sms_message_ids": [resource.sms_message_id for resource in resources[:10]],
                "elapsed_ms": _elapsed_ms(started),
            },
        )
        return resources

    def _exchange(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, bytes, int]:
        """One logical request (urllib3 retries inside): status, answer bytes, attempts."""
        is_post = method == "POST"
        # Errors are re-raised `from None`: urllib3's messages quote the URL, whose query
        # string may hold a phone number, and chained tracebacks end up in logs.
        try:
            response = self._pool.request(
                method,
                url,
                body=body,
                headers=headers,
                retries=self._post_retry if is_post else self._get_retry,
                timeout=self._timeout,
                redirect=False,
                preload_content=False,
            )
        except (ReadTimeoutError, ProtocolError) as exc:
            # Only POST gets here (read=False): the request went out, the answer did not
            # come back.
            raise PlumUnavailable(f"no answer ({type(exc).__name__})", maybe_sent=is_post) from None
        except MaxRetryError as exc:
            after_send = isinstance(exc.reason, (ReadTimeoutError, ProtocolError))
            raise PlumUnavailable(
                f"unreachable after retries ({type(exc.reason).__name__})",
                maybe_sent=is_post and after_send,
            ) from None
        except (HTTPError, OSError) as exc:
            raise PlumUnavailable(f"request failed ({type(exc).__name__})") from None
        too_large = False
        try:
            answer = response.read(MAX_ANSWER_BYTES + 1)
            too_large = len(answer) > MAX_ANSWER_BYTES
        except (HTTPError, OSError) as exc:
            # Plum answered (status line and headers), so a queue request was processed.
            raise PlumUnavailable(
                f"answer cut off ({type(exc).__name__})",
                http_status=response.status,
                maybe_sent=is_post,
            ) from None
        finally:
            if too_large:
                response.close()  # unread bytes left: never return this connection
            response.release_conn()
        if too_large:
            raise UnexpectedResponse(
                "answer too large",
                http_status=response.status,
                maybe_sent=is_post and 200 <= response.status < 300,
            )
        history = response.retries.history if response.retries is not None else ()
        return response.status, answer, len(history) + 1


def _page_params(query: PlumPageQuery) -> dict[str, str]:
    params = {
        QUERY_PARAMETERS["offset"]: str(query.offset),
        QUERY_PARAMETERS["limit"]: str(query.limit),
        QUERY_PARAMETERS["sort"]: query.sort,
    }
    # Plum takes Unix seconds for the window.
    if query.start is not None:
        params[QUERY_PARAMETERS["start"]] = str(int(query.start.timestamp()))
    if query.end is not None:
        params[QUERY_PARAMETERS["end"]] = str(int(query.end.timestamp()))
    return params


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


if TYPE_CHECKING:

    def _implements_port(client: PlumClient) -> PlumGateway:
        return client
