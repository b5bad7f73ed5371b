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
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Router
from pydantic import BaseModel, ConfigDict, Field, field_validator

from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.config import Settings
from plumsms.domain.errors import ConfigurationError, NotFound, ValidationFailed
from plumsms.domain.models import Message, MessageType, OptOut, Status, UtcDatetime
from plumsms.domain.paging import MAX_CURSOR_CHARS, derive_key
from plumsms.domain.phone import E164
from plumsms.domain.queries import MAX_PAGE_SIZE, SEND_AT_SORT_RULE, MessageQuery, Sort
from plumsms.entrypoints.webhooks import parse_model
from plumsms.observability import logger, metrics, tracer
from plumsms.secrets import SecretValues
from plumsms.usecases.log import (
    MAX_CHART_DAYS,
    ExportBudget,
    ExportFormat,
    LogService,
)

if TYPE_CHECKING:
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
_ASSET_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
P = TypeVar("P", bound=BaseModel)


# -- query parameters ------------------------------------------------------------------


class _Filters(BaseModel):
    """Filters shared by the listing and the export."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: E164 | None = Field(None, description="Either side of the message (E.164).")
    type: MessageType | None = Field(None, description="inbound, outbound or reply.")
    status: Status | None = Field(None, description="The message's current status.")
    start: UtcDatetime | None = Field(
        None, description="Created at or after (ISO 8601 with a zone, e.g. 2024-05-01T00:00:00Z)."
    )
    end: UtcDatetime | None = Field(None, description="Created at or before (ISO 8601).")
    order: Literal["asc", "desc"] = Field("desc", description="desc: newest first.")
    cursor: str | None = Field(
        None, max_length=MAX_CURSOR_CHARS, description="next_cursor of the previous page."
    )

    def query(self, limit: int, sort: Sort = "created_at") -> MessageQuery:
        """The store query these filters describe."""
        if self.start and self.end and self.start > self.end:
            raise ValidationFailed("end", "must not be before start")
        if sort == "send_at" and (
            self.status is not Status.SCHEDULED
            or self.number
            or self.type
            or self.start
            or self.end
        ):
            raise ValidationFailed("sort", SEND_AT_SORT_RULE)
        return MessageQuery(
            number=self.number,
            type=self.type,
            status=self.status.value if self.status else None,
            start=self.start,
            end=self.end,
            order=self.order,
            sort=sort,
            limit=limit,
        )


class ListParams(_Filters):
    """``GET /messages``."""

    limit: int = Field(50, ge=1, le=MAX_PAGE_SIZE, description="Page size, up to 1000.")
    sort: Sort = Field(
        "created_at",
        description=(
            "created_at (default), or send_at: pending sends by due time, soonest first "
            "with order=asc (only with status=scheduled and no other filter)."
        ),
    )


class ExportParams(_Filters):
    """``GET /messages/export``."""

    format: ExportFormat = Field(ExportFormat.CSV, description="csv or jsonl.")
    limit: int = Field(
        DEFAULT_EXPORT_ROWS,
        ge=1,
        le=MAX_EXPORT_ROWS,
        description="Most rows in this answer (fewer if 4.5 MB or 20 s come first).",
    )


class OptOutParams(BaseModel):
    """``GET /opt-outs``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order: Literal["asc", "desc"] = Field("desc", description="desc: latest opt-out first.")
    limit: int = Field(100, ge=1, le=MAX_PAGE_SIZE, description="Page size, up to 1000.")
    cursor: str | None = Field(None, max_length=MAX_CURSOR_CHARS)


class StatsParams(BaseModel):
    """``GET /messages/stats``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int = Field(14, ge=1, le=MAX_CHART_DAYS, description="Days, today included.")
    tz: str = Field("UTC", max_length=64, description="IANA time zone of the days.")

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
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


def query_params(router: Router, model: type[P]) -> P:
    """The request's query string as ``model``; unknown or repeated names are a 400."""
    event = router.current_event
    raw = event.query_string_parameters or {}
    multi = event.multi_value_query_string_parameters or {}
    for name, values in multi.items():
        if len(values) > 1:
            raise ValidationFailed(name, "is given more than once")
    for name in raw:
        if name not in model.model_fields:
            known = ", ".join(model.model_fields)
            raise ValidationFailed(name, f"is not a parameter here (known: {known})")
    present = {k: v for k, v in raw.items() if v != ""}
    return parse_model(model, present)


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


def load_web_file(name: str, content_type: str) -> StaticFile:
    """Read ``plumsms/web/<name>`` (package data)."""
    text = resources.files("plumsms").joinpath("web", name).read_text(encoding="utf-8")
    etag = '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + '"'
    return StaticFile(text, content_type, etag)


def _static(router: Router, file: StaticFile, extra: dict[str, str] | None = None) -> Response[str]:
    headers = {"ETag": file.etag, "Cache-Control": "no-cache", **_PAGE_SECURITY_HEADERS}
    headers.update(extra or {})
    request_headers = router.current_event.headers
    presented = request_headers.get("if-none-match") or request_headers.get("If-None-Match")
    if presented == file.etag:
        return Response(status_code=304, body="", headers=headers)
    return Response(200, file.content_type, file.body, headers)


def _param_docs(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI query parameters from a params model (with its ``$defs`` inlined)."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    params = []
    for name, declared in schema.get("properties", {}).items():
        prop = inline(declared)
        # An absent query parameter is the null case: document the value's own type.
        options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            del prop["anyOf"]
            prop = {**options[0], **prop}
        if prop.get("default", "") is None:
            del prop["default"]
        description = prop.pop("description", None)
        entry: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": prop}
        if description:
            entry["description"] = description
        params.append(entry)
    return params


def _json_response(description: str, model: type[BaseModel]) -> "dict[int, OpenAPIResponse]":
    return {200: {"description": description, "content": {"application/json": {"model": model}}}}


_EXPORT_CONTENT: dict[str, Any] = {
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}},
}

_QUERY_DOCS: dict[tuple[str, str], type[BaseModel]] = {
    ("/messages", "get"): ListParams,
    ("/messages/export", "get"): ExportParams,
    ("/messages/stats", "get"): StatsParams,
    ("/opt-outs", "get"): OptOutParams,
}


def openapi_document(resolver: ApiGatewayResolver) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route the resolver serves.

    Powertools generates it from the routes; the log routes read their query strings
    themselves (so errors keep this API's 400 shape), so their parameters are added here
    from the same models that parse them. The server URL is relative: the document
    works on the stage URL, a custom domain, the local stack and ``smsctl ui``.
    """
    # Imported here, not at module level: only this route needs them, and they cost
    # every cold start of the function tens of milliseconds.
    from aws_lambda_powertools.event_handler.openapi.compat import model_json  # noqa: PLC0415
    from aws_lambda_powertools.event_handler.openapi.models import (  # noqa: PLC0415
        HTTPBearer,
        Server,
    )

    spec = resolver.get_openapi_schema(
        title=API_TITLE,
        version="1",
        description=(
            "Send, schedule and search SMS sent through Plum DEV. On AWS every call is "
            "signed with SigV4 (IAM); locally, and through `smsctl ui`, a bearer token."
        ),
        servers=[Server(url=".")],
        security_schemes={
            "apiToken": HTTPBearer(
                description="The local stack's API_TOKEN, or the session token `smsctl ui` prints."
            )
        },
        security=[{"apiToken": []}],
    )
    document: dict[str, Any] = json.loads(model_json(spec, by_alias=True, exclude_none=True))
    for (path, method), model in _QUERY_DOCS.items():
        operation = document.get("paths", {}).get(path, {}).get(method)
        if operation is not None:
            operation["parameters"] = [*operation.get("parameters", []), *_param_docs(model)]
    return document


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
    page = load_web_file("index.html", "text/html; charset=utf-8")
    assets = {name: load_web_file(name, kind) for name, kind in _ASSET_TYPES.items()}

    @router.get(
        "/messages",
        summary="Search the message log",
        description="Filters are ANDed; every combination is served by a Query on an index.",
        tags=["log"],
        responses=_json_response("One page", MessagePageDoc),
    )
    @tracer.capture_method(capture_response=False, capture_error=False)
    def list_messages() -> Response[str]:
        params = query_params(router, ListParams)
        found = service.page(params.query(params.limit, params.sort), params.cursor)
        metrics.add_metric(name="LogItemsRead", unit="Count", value=found.items_read)
        logger.info("log page", extra={"items": len(found.items), "read": found.items_read})
        items = [m.to_json() for m in found.items]
        return _json({"items": items, "next_cursor": found.next_cursor})

    @router.get(
        "/messages/export",
        summary="Export messages as CSV or JSON Lines, page by page",
        description=(
            f"Each answer holds up to `limit` rows; when more remain, the `{NEXT_CURSOR_HEADER}` "
            "header carries the cursor of the next answer. CSV has its header row only in the "
            "first answer, so the answers concatenate into one file."
        ),
        tags=["log"],
        responses={200: {"description": "CSV or JSON Lines", "content": _EXPORT_CONTENT}},
    )
    @tracer.capture_method(capture_response=False, capture_error=False)
    def export_messages() -> Response[str]:
        params = query_params(router, ExportParams)
        remaining = router.lambda_context.get_remaining_time_in_millis() / 1000
        budget = ExportBudget(
            max_rows=params.limit,
            max_seconds=max(1.0, min(_EXPORT_MAX_SECONDS, remaining - _EXPORT_TIME_MARGIN_SECONDS)),
        )
        result = service.export(params.query(MAX_PAGE_SIZE), params.format, params.cursor, budget)
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

    @router.get(
        "/messages/stats",
        summary="Messages per day by status (the web page's chart)",
        tags=["log"],
    )
    @tracer.capture_method(capture_response=False, capture_error=False)
    def message_stats() -> Response[str]:
        params = query_params(router, StatsParams)
        return _json(service.daily_counts(params.days, ZoneInfo(params.tz)).to_json())

    @router.get(
        "/messages/<message_id>",
        summary="One message with body, result URL and status history",
        tags=["log"],
        responses=_json_response("The message", Message),
    )
    @tracer.capture_method(capture_response=False, capture_error=False)
    def get_message(message_id: str) -> Response[str]:
        if not _MESSAGE_ID.fullmatch(message_id):
            raise NotFound(f"message {message_id!r}")
        return _json(service.message(message_id).to_json())

    @router.get(
        "/opt-outs",
        summary="Numbers that texted an opt-out keyword",
        tags=["log"],
        responses=_json_response("One page", OptOutPageDoc),
    )
    @tracer.capture_method(capture_response=False, capture_error=False)
    def list_opt_outs() -> Response[str]:
        params = query_params(router, OptOutParams)
        found = service.opt_outs(params.limit, params.order, params.cursor)
        items = [o.model_dump(mode="json") for o in found.items]
        return _json({"items": items, "next_cursor": found.next_cursor})

    @router.get("/openapi.json", include_in_schema=False)
    def openapi_json() -> Response[str]:
        return _json(openapi_document(_resolver(router)), headers={"Cache-Control": "no-cache"})

    @router.get("/api-docs", include_in_schema=False)
    def api_explorer() -> Response[str]:
        # Swagger UI as Powertools ships it (inlined, no CDN), over the same document.
        query = router.current_event.query_string_parameters or {}
        document = json.dumps(openapi_document(_resolver(router))).replace("</", "<\\/")
        if query.get("format") == "json":
            return _json(json.loads(document))
        from aws_lambda_powertools.event_handler.openapi.swagger_ui import (  # noqa: PLC0415
            generate_swagger_html,
        )

        ui_dir = resources.files("aws_lambda_powertools.event_handler.openapi.swagger_ui")
        html = generate_swagger_html(
            document,
            ui_dir.joinpath("swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
            ui_dir.joinpath("swagger-ui.min.css").read_text(encoding="utf-8"),
            "",
            None,
            False,
        )
        headers = {"Content-Security-Policy": _EXPLORER_CSP, **_PAGE_SECURITY_HEADERS}
        return Response(200, "text/html; charset=utf-8", html, headers)

    @router.get("/ui", include_in_schema=False)
    def web_page() -> Response[str]:
        if router.current_event.path.endswith("/"):
            # Relative links resolve against ".../ui", so send ".../ui/" there.
            return Response(status_code=308, body="", headers={"Location": "../ui"})
        return _static(router, page, {"Content-Security-Policy": _PAGE_CSP})

    @router.get("/ui/<asset>", include_in_schema=False)
    def web_asset(asset: str) -> Response[str]:
        file = assets.get(asset)
        if file is None:
            raise NotFound(f"asset {asset!r}")
        return _static(router, file)

    return router


def _resolver(router: Router) -> ApiGatewayResolver:
    resolver = router.api_resolver
    if not isinstance(resolver, ApiGatewayResolver):
        raise ConfigurationError("the log routes must be included in an API Gateway resolver")
    return resolver
