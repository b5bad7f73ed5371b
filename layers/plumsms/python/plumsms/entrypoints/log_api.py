"""The message log's HTTP side: search, one message, export, opt-outs, chart data, the
OpenAPI document, an interactive API page and the web page.

``routes_from_settings`` returns a Powertools ``Router``; MessagesApiFunction includes it
in its resolver next to the sending routes. Data routes are IAM-authorised on AWS (a
bearer token locally, see template.yaml); the page, its assets and the API description
hold no data and are public, so a browser can load them and then authenticate its calls.
"""

# No ``from __future__ import annotations`` here: Powertools reads the route functions'
# annotations at run time to build the OpenAPI document, and cannot resolve strings.

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import AfterValidator, BaseModel, Field

from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.config import Settings
from plumsms.domain.errors import NotFound, ValidationFailed
from plumsms.domain.models import Message, MessageType, OptOut, Status, UtcDatetime
from plumsms.domain.paging import MAX_CURSOR_CHARS, derive_key
from plumsms.domain.phone import E164
from plumsms.domain.queries import MAX_PAGE_SIZE, SEND_AT_SORT_RULE, MessageQuery, Sort
from plumsms.entrypoints.webhooks import error_responses, query_names
from plumsms.observability import logger, metrics, tracer
from plumsms.secrets import SecretValues
from plumsms.usecases.log import (
    MAX_CHART_DAYS,
    ExportBudget,
    ExportFormat,
    LogService,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

API_TITLE = "plumsms management API"
NEXT_CURSOR_HEADER = "X-Next-Cursor"
EXPORT_ROWS_HEADER = "X-Export-Rows"
MAX_EXPORT_ROWS = 50_000
DEFAULT_EXPORT_ROWS = 10_000
_EXPORT_TIME_MARGIN_SECONDS = 6.0
_EXPORT_MAX_SECONDS = 20.0
"""API Gateway gives up after 29 s; an export answer stops well before."""
_MESSAGE_ID = re.compile(r"^[0-9a-f]{32}$")
_NO_STORE = "no-store"
_PAGE_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_EXPLORER_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
)
RouteFunction = TypeVar("RouteFunction", bound=Callable[..., Response[str]])
_ASSET_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


# -- query parameters ------------------------------------------------------------------
# Powertools validates the query string with these annotations and documents them in
# /openapi.json. The listing and the export share their filters as one model.


class LogFilters(BaseModel):
    """The filters of the listing and the export (query parameters, ANDed)."""

    number: E164 | None = Field(None, description="Either side of the message (E.164).")
    kind: MessageType | None = Field(None, alias="type", description="inbound, outbound or reply.")
    status: Status | None = Field(None, description="The message's current status.")
    start: UtcDatetime | None = Field(
        None, description="Created at or after (ISO 8601 with a zone, e.g. 2024-05-01T00:00:00Z)."
    )
    end: UtcDatetime | None = Field(None, description="Created at or before (ISO 8601).")
    order: Literal["asc", "desc"] = Field("desc", description="desc: newest first.")
    cursor: str | None = Field(
        None,
        max_length=MAX_CURSOR_CHARS,
        description="next_cursor of the previous page (or the export's X-Next-Cursor).",
    )

    def query(self, limit: int, sort: Sort = "created_at") -> MessageQuery:
        """The store query these filters describe."""
        if self.start and self.end and self.start > self.end:
            raise ValidationFailed("end", "must not be before start")
        if sort == "send_at" and (
            self.status is not Status.SCHEDULED
            or self.number
            or self.kind
            or self.start
            or self.end
        ):
            raise ValidationFailed("sort", SEND_AT_SORT_RULE)
        return MessageQuery(
            number=self.number,
            type=self.kind,
            status=self.status.value if self.status else None,
            start=self.start,
            end=self.end,
            order=self.order,
            sort=sort,
            limit=limit,
        )


FiltersParam = Annotated[LogFilters, Query()]
CursorParam = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR_CHARS, description="next_cursor of the previous page."),
]
PageSizeParam = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size, up to 1000.")]
SortParam = Annotated[
    Sort,
    Query(
        description=(
            "created_at (default), or send_at: pending sends by due time, soonest first "
            "with order=asc (only with status=scheduled and no other filter)."
        )
    ),
]


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    # OSError: a name too long for a file name (this validator runs before max_length).
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError("is not an IANA time zone name (e.g. America/New_York)") from exc
    return value


class MessagePageDoc(BaseModel):
    """A page of the message log (documentation model)."""

    items: list[Message]
    next_cursor: str | None


class OptOutPageDoc(BaseModel):
    """A page of opted-out numbers (documentation model)."""

    items: list[OptOut]
    next_cursor: str | None


# -- helpers ---------------------------------------------------------------------------


def _json(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(payload, ensure_ascii=False),
        headers={"Cache-Control": _NO_STORE, **(headers or {})},
    )


@dataclass(frozen=True, slots=True)
class StaticFile:
    """A packaged web file with its content type and an ETag for revalidation."""

    body: str
    content_type: str
    etag: str

    @classmethod
    def load(cls, name: str, content_type: str) -> Self:
        """Read ``plumsms/web/<name>`` (package data)."""
        text = resources.files("plumsms").joinpath("web", name).read_text(encoding="utf-8")
        etag = '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + '"'
        return cls(text, content_type, etag)

    def answer(self, router: Router, extra: dict[str, str] | None = None) -> Response[str]:
        """The file, or 304 when the request already holds this version."""
        headers = {"ETag": self.etag, "Cache-Control": "no-cache", **_PAGE_SECURITY_HEADERS}
        headers.update(extra or {})
        request_headers = router.current_event.headers
        presented = request_headers.get("if-none-match") or request_headers.get("If-None-Match")
        if presented == self.etag:
            return Response(status_code=304, body="", headers=headers)
        return Response(200, self.content_type, self.body, headers)


def _json_response(description: str, model: type[BaseModel]) -> "dict[int, OpenAPIResponse]":
    return {
        200: {"description": description, "content": {"application/json": {"model": model}}},
        **error_responses(400, 401),
    }


_EXPORT_CONTENT: dict[str, Any] = {
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}},
}


def enable_api_document(app: ApiGatewayResolver) -> None:
    """``GET /openapi.json`` and Swagger UI at ``GET /api-docs``, over every route ``app``
    serves: Powertools generates the document from the routes' own annotations, and the
    page is the Swagger UI Powertools ships (inlined, no CDN).

    Not ``app.enable_swagger()``: it imports Powertools' OpenAPI models when it is
    registered, which took the function's cold-import ratio from 0.7-0.9 to 1.36 (1.25
    at most, docs/benchmarks.md); here the first request for a document imports them.
    The server URL is relative, so the document works on the stage URL, a custom
    domain, the local stack and ``smsctl ui``, and Swagger's "Try it out" sends to the
    API the page came from.
    """

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json() -> Response[str]:
        headers = {"Cache-Control": "no-cache"}
        return Response(200, content_types.APPLICATION_JSON, _document(app), headers)

    @app.get("/api-docs", include_in_schema=False)
    def api_explorer() -> Response[str]:
        document = _document(app)
        query = app.current_event.query_string_parameters or {}
        if query.get("format") == "json":
            return Response(200, content_types.APPLICATION_JSON, document)
        from aws_lambda_powertools.event_handler.openapi.swagger_ui import (  # noqa: PLC0415
            generate_swagger_html,
        )

        ui_dir = resources.files("aws_lambda_powertools.event_handler.openapi.swagger_ui")
        html = generate_swagger_html(
            document.replace("</", "<\\/"),  # inside a <script>, "</" would end it
            ui_dir.joinpath("swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
            ui_dir.joinpath("swagger-ui.min.css").read_text(encoding="utf-8"),
            "",
            None,
            False,
        )
        headers = {"Content-Security-Policy": _EXPLORER_CSP, **_PAGE_SECURITY_HEADERS}
        return Response(200, "text/html; charset=utf-8", html, headers)


def _document(app: ApiGatewayResolver) -> str:
    """The OpenAPI 3.1 document as JSON."""
    from aws_lambda_powertools.event_handler.openapi.models import (  # noqa: PLC0415
        HTTPBearer,
        Server,
    )

    return app.get_openapi_json_schema(
        title=API_TITLE,
        version="1",
        description=(
            "Send, schedule and search SMS sent through Plum DEV. On AWS every call is "
            "signed with SigV4 (IAM), which Swagger cannot do; locally, and through "
            "`smsctl ui`, a bearer token."
        ),
        servers=[Server(url=".")],
        security_schemes={
            "apiToken": HTTPBearer(
                description="The local stack's API_TOKEN, or the session token `smsctl ui` prints."
            )
        },
        security=[{"apiToken": []}],
    )


# -- the routes ------------------------------------------------------------------------


def log_service(secrets: SecretValues, store: DynamoMessageStore) -> LogService:
    """The log use case, signing cursors with the deployment's own cursor secret."""
    return LogService(log=store, cursor_key=lambda: derive_key(secrets.cursor_key()))


def routes_from_settings(
    settings: Settings, store: DynamoMessageStore, secrets: SecretValues
) -> Router:
    """The log, export, opt-out, documentation and web page routes."""
    del settings  # everything the log needs comes through the store and the secrets
    return build_routes(log_service(secrets, store))


def build_routes(service: LogService) -> Router:
    """The routes over ``service`` (tests hand in their own)."""
    router = Router()  # type: ignore[no-untyped-call]
    page = StaticFile.load("index.html", "text/html; charset=utf-8")
    assets = {name: StaticFile.load(name, kind) for name, kind in _ASSET_TYPES.items()}

    def data_route(
        path: str,
        summary: str,
        responses: "dict[int, OpenAPIResponse]",
        description: str | None = None,
    ) -> Callable[[RouteFunction], RouteFunction]:
        """A data route: GET, tagged ``log``, an unknown query parameter refused, traced
        with neither its answer nor its error (both can hold numbers and bodies)."""

        def register(handler: RouteFunction) -> RouteFunction:
            traced = tracer.capture_method(handler, capture_response=False, capture_error=False)
            router.get(
                path,
                summary=summary,
                description=description,
                tags=["log"],
                responses=responses,
                middlewares=[_known_parameters_only],
            )(traced)
            return handler

        return register

    @data_route(
        "/messages",
        "Search the message log",
        _json_response("One page", MessagePageDoc),
        "Filters are ANDed; every combination is served by a Query on an index.",
    )
    def list_messages(
        filters: FiltersParam,
        limit: PageSizeParam = 50,
        sort: SortParam = "created_at",
    ) -> Response[str]:
        found = service.page(filters.query(limit, sort), filters.cursor)
        metrics.add_metric(name="LogItemsRead", unit="Count", value=found.items_read)
        logger.info("log page", extra={"items": len(found.items), "read": found.items_read})
        items = [m.to_json() for m in found.items]
        return _json({"items": items, "next_cursor": found.next_cursor})

    @data_route(
        "/messages/export",
        "Export messages as CSV or JSON Lines, page by page",
        {
            200: {"description": "CSV or JSON Lines", "content": _EXPORT_CONTENT},
            **error_responses(400, 401),
        },
        f"Each answer holds up to `limit` rows; when more remain, the `{NEXT_CURSOR_HEADER}` "
        "header carries the cursor of the next answer. CSV has its header row only in the "
        "first answer, so the answers concatenate into one file.",
    )
    def export_messages(
        filters: FiltersParam,
        export_format: Annotated[
            ExportFormat, Query(alias="format", description="csv or jsonl.")
        ] = ExportFormat.CSV,
        limit: Annotated[
            int,
            Query(
                ge=1,
                le=MAX_EXPORT_ROWS,
                description="Most rows in this answer (fewer if 4.5 MB or 20 s come first).",
            ),
        ] = DEFAULT_EXPORT_ROWS,
    ) -> Response[str]:
        remaining = router.lambda_context.get_remaining_time_in_millis() / 1000
        budget = ExportBudget(
            max_rows=limit,
            max_seconds=max(1.0, min(_EXPORT_MAX_SECONDS, remaining - _EXPORT_TIME_MARGIN_SECONDS)),
        )
        query = filters.query(MAX_PAGE_SIZE)
        result = service.export(query, export_format, filters.cursor, budget)
        metrics.add_metric(name="ExportedRows", unit="Count", value=result.rows)
        logger.info("export page", extra={"rows": result.rows, "more": bool(result.next_cursor)})
        headers = {
            "Cache-Control": _NO_STORE,
            EXPORT_ROWS_HEADER: str(result.rows),
            "Content-Disposition": f'attachment; filename="messages.{result.format.value}"',
        }
        if result.next_cursor:
            headers[NEXT_CURSOR_HEADER] = result.next_cursor
        return Response(200, result.format.content_type, result.body, headers)

    @data_route(
        "/messages/stats",
        "Messages per day by status (the web page's chart)",
        {
            200: {
                "description": "`days`: one `{date, total, counts}` per day, oldest first",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **error_responses(400, 401),
        },
    )
    def message_stats(
        days: Annotated[
            int, Query(ge=1, le=MAX_CHART_DAYS, description="Days, today included.")
        ] = 14,
        tz: Annotated[
            str,
            Query(max_length=64, description="IANA time zone of the days."),
            AfterValidator(_time_zone),
        ] = "UTC",
    ) -> Response[str]:
        return _json(service.daily_counts(days, ZoneInfo(tz)).to_json())

    @data_route(
        "/messages/<message_id>",
        "One message with body, result URL and status history",
        {**_json_response("The message", Message), **error_responses(404)},
    )
    def get_message(message_id: str) -> Response[str]:
        if not _MESSAGE_ID.fullmatch(message_id):
            raise NotFound(f"message {message_id!r}")
        return _json(service.message(message_id).to_json())

    @data_route(
        "/opt-outs",
        "Numbers that texted an opt-out keyword",
        _json_response("One page", OptOutPageDoc),
    )
    def list_opt_outs(
        order: Annotated[
            Literal["asc", "desc"], Query(description="desc: latest opt-out first.")
        ] = "desc",
        limit: PageSizeParam = 100,
        cursor: CursorParam = None,
    ) -> Response[str]:
        found = service.opt_outs(limit, order, cursor)
        items = [o.model_dump(mode="json") for o in found.items]
        return _json({"items": items, "next_cursor": found.next_cursor})

    @router.get("/ui", include_in_schema=False)
    def web_page() -> Response[str]:
        if router.current_event.path.endswith("/"):
            # Relative links resolve against ".../ui", so send ".../ui/" there.
            return Response(status_code=308, body="", headers={"Location": "../ui"})
        return page.answer(router, {"Content-Security-Policy": _PAGE_CSP})

    @router.get("/ui/<asset>", include_in_schema=False)
    def web_asset(asset: str) -> Response[str]:
        file = assets.get(asset)
        if file is None:
            raise NotFound(f"asset {asset!r}")
        return file.answer(router)

    return router


def _known_parameters_only(
    app: ApiGatewayResolver, next_middleware: "NextMiddleware"
) -> Response[Any]:
    """Refuse a query parameter the route does not have (a typo would otherwise be a
    silently ignored filter)."""
    route = app.context["_route"]
    known = [name for param in route.dependant.query_params for name in query_names(param)]
    for name in app.current_event.query_string_parameters or {}:
        if name not in known:
            raise ValidationFailed(name, f"is not a parameter here (known: {', '.join(known)})")
    return next_middleware(app)
