"""HTTP glue shared by the API functions: the resolver, key check, form parsing, error answers."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar
from urllib.parse import parse_qsl, quote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging.correlation_paths import API_GATEWAY_REST
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel, ValidationError

from plumsms.config import Settings
from plumsms.domain.errors import (
    ConfigurationError,
    Conflict,
    Forbidden,
    NotFound,
    StoreUnavailable,
    ValidationFailed,
)
from plumsms.observability import LambdaHandler, lambda_entry, logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.compat import ModelField
    from aws_lambda_powertools.event_handler.openapi.exceptions import ValidationException
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
    from aws_lambda_powertools.utilities.typing import LambdaContext

FORM = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 16 * 1024
MAX_JSON_DEPTH = 16
"""Deepest nesting of a JSON body: every document of the API is two or three levels deep."""
_MAX_FIELDS = 32
M = TypeVar("M", bound=BaseModel)


def require_key(event: APIGatewayProxyEvent, expected: str) -> None:
    """Raise ``Forbidden`` unless the ``key`` query parameter equals ``expected``.

    Compared in constant time, so response timing does not leak the key.
    """
    presented = event.get_query_string_value("key") or ""
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Forbidden("wrong or missing webhook key")


def raw_body(event: APIGatewayProxyEvent, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The request body as bytes, undoing API Gateway's base64 encoding."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed("body", "is not valid base64") from exc
    else:
        data = body.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise ValidationFailed("body", f"is larger than {max_bytes} bytes")
    return data


def form_fields(
    event: APIGatewayProxyEvent, *, max_bytes: int = MAX_BODY_BYTES, lenient: bool = False
) -> dict[str, str]:
    """Decode a form-encoded body into single-valued fields (UTF-8).

    ``lenient`` (the Application URL) replaces bytes that are not UTF-8 with U+FFFD
    instead of refusing the request: a real SMS is never lost to its content.
    """
    errors = "replace" if lenient else "strict"
    content_type = event.headers.get("content-type") or event.headers.get("Content-Type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type and media_type != FORM:
        raise ValidationFailed("content-type", f"must be {FORM}")
    data = raw_body(event, max_bytes)
    try:
        text = data.decode("ascii") if data.isascii() else data.decode("utf-8", errors)
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors=errors,
            max_num_fields=_MAX_FIELDS,
        )
    except UnicodeDecodeError as exc:
        raise ValidationFailed("body", "is not valid UTF-8") from exc
    except ValueError as exc:
        raise ValidationFailed("body", "has too many fields") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise ValidationFailed(name, "is given more than once")
        fields[name] = value
    return fields


def json_document(data: bytes) -> Any:
    """Parse a JSON body: ``ValidationFailed`` for malformed, too deep or non-Unicode text.

    Nesting is bounded (``MAX_JSON_DEPTH``; deeper than the interpreter's recursion limit
    is caught too), and a string with a lone surrogate (``"\\ud800"``, which no UTF-8 can
    carry) is refused naming its field, before any of it reaches a model or the store.
    """
    try:
        document = json.loads(data or b"null")
    except RecursionError as exc:
        raise ValidationFailed("body", f"is nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed("body", "is not valid JSON") from exc
    _check_json(document)
    return document


def _check_json(document: Any) -> None:
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValidationFailed("body", f"is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, str):
            _check_text(node, path or "body")
        elif isinstance(node, dict):
            for key, value in node.items():
                name = f"{path}.{key}" if path else str(key)
                _check_text(key, name)
                stack.append((value, name, depth + 1))
        elif isinstance(node, list):
            stack.extend(
                (value, f"{path}.{i}" if path else str(i), depth + 1)
                for i, value in enumerate(node)
            )


def _check_text(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationFailed(
            field, "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"
        ) from exc


def parse_model(model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data`` as ``model``; the first problem becomes ``ValidationFailed``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "body"
        rule = "is required" if error["type"] == "missing" else error["msg"]
        raise ValidationFailed(field, rule.removeprefix("Value error, ")) from exc


def status_url(base_url: str | None, key: str, ref: str) -> str | None:
    """The Result URL for message ``ref``: ``<base>plum/status?key=...&ref=...``."""
    if base_url is None:
        return None
    return f"{base_url}plum/status?key={quote(key, safe='')}&ref={quote(ref, safe='')}"


def _error(status: int, message: str, **extra: str) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"message": message, **extra}),
    )


class ErrorBody(BaseModel):
    """Every error answer of the API: what went wrong, and for a refused input the field
    (as the caller sent it) and the rule it broke."""

    message: str
    field: str | None = None
    rule: str | None = None


_ERROR_DESCRIPTIONS = {
    400: "Bad input: `field` names it, `rule` says what it broke",
    401: "No or wrong credentials (locally: the bearer token; `rule` says where it comes from)",
    404: "No such message (or route)",
    409: "The message already went to Plum",
}


def error_responses(*codes: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI entries of the error answers ``codes`` (all shaped as ``ErrorBody``)."""
    return {
        code: {
            "description": _ERROR_DESCRIPTIONS[code],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
        }
        for code in codes
    }


class CheckedProxyEvent(APIGatewayProxyEvent):
    """An API Gateway event whose body and query string are read under this API's rules.

    Powertools' validation reads the request through these properties, so a body over
    ``MAX_BODY_BYTES``, bad base64, non-UTF-8 bytes, JSON nested deeper than
    ``MAX_JSON_DEPTH`` or holding a lone surrogate, or a repeated query parameter is a
    ``ValidationFailed`` before any model sees it.
    """

    @cached_property
    def decoded_body(self) -> str | None:
        """The body as text (``surrogatepass``: the JSON check names a lone surrogate)."""
        data = raw_body(self)
        try:
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise ValidationFailed("body", "is not valid UTF-8") from exc

    @cached_property
    def json_body(self) -> Any:
        """The body as checked JSON; ``None`` when there is none."""
        return json_document(raw_body(self)) if self.body else None

    @property
    def resolved_query_string_parameters(self) -> dict[str, list[str]]:
        """Query parameters; an empty one (a form field left blank) counts as absent."""
        values = super().resolved_query_string_parameters
        for name, given in (self.multi_value_query_string_parameters or {}).items():
            if len(given) > 1:
                raise ValidationFailed(name, "is given more than once")
        return {name: given for name, given in values.items() if any(given)}


class EnvironmentResolver(APIGatewayRestResolver):
    """Powertools' REST resolver, holding the request it is resolving itself.

    Powertools keeps the current event and Lambda context on its router *class*, shared
    by every resolver in the process. On Lambda a process is one execution environment,
    serving one request at a time; the local stack runs every function's environments as
    threads of one process, where two requests would read each other's event (a POST
    answered from a GET's empty body). Kept on the resolver, one per environment, each
    request reads its own wherever it runs."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.current_event = self._to_proxy_event(dict(event))  # type: ignore[assignment]
        self.lambda_context = context
        return super().resolve(event, context)


class ApiResolver(EnvironmentResolver):
    """The management API's resolver: requests read as ``CheckedProxyEvent``s, and an
    OpenAPI document whose error answers are the ones this API sends."""

    def _to_proxy_event(self, event: dict[str, Any]) -> BaseProxyEvent:
        return CheckedProxyEvent(event, self._json_body_deserializer)

    def get_openapi_schema(self, **kwargs: Any) -> OpenAPI:
        """Powertools' document without its 422 entries: ``RequestValidationError`` is
        answered 400 with ``ErrorBody`` (see ``register_error_handlers``), and every
        route documents that answer itself."""
        spec = super().get_openapi_schema(**kwargs)
        for item in (spec.paths or {}).values():
            for operation in (item.get, item.put, item.post, item.delete, item.patch):
                if operation is not None and operation.responses:
                    operation.responses.pop(422, None)
        if spec.components is not None and spec.components.schemas:
            for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
                spec.components.schemas.pop(name, None)
        self._describe_query_models(spec)
        return spec

    def _describe_query_models(self, spec: OpenAPI) -> None:
        """The full schema of each parameter of a query model: Powertools documents a
        model's fields by their bare type (an enum as a plain string, a time without its
        format), where it documents a lone parameter by its whole schema."""
        from aws_lambda_powertools.event_handler.openapi.models import (  # noqa: PLC0415
            Components,
            Parameter,
            Schema,
        )

        for route in self._static_routes + self._dynamic_routes:
            item = (spec.paths or {}).get(route.openapi_path)
            operation = getattr(item, route.method.lower(), None) if item else None
            if operation is None:
                continue
            for param in route.dependant.query_params:
                model = param.field_info.annotation
                if not _is_model(model):
                    continue
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                spec.components = spec.components or Components()
                shared = spec.components.schemas = spec.components.schemas or {}
                for name, definition in schema.get("$defs", {}).items():
                    shared.setdefault(name, Schema.model_validate(definition))
                for parameter in operation.parameters or []:
                    field = schema["properties"].get(getattr(parameter, "name", None))
                    if isinstance(parameter, Parameter) and field is not None:
                        parameter.schema_ = Schema.model_validate(field)


def _is_model(annotation: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def query_names(param: ModelField) -> list[str]:
    """The query parameters a route parameter stands for: its own name, or a query
    model's field names."""
    model = param.field_info.annotation
    if _is_model(model):
        return [field.alias or name for name, field in model.model_fields.items()]
    return [param.alias]


def api_resolver(settings: Settings, *, validation: bool = False) -> APIGatewayRestResolver:
    """The REST resolver of an API function: ``API_BASE_PATH`` (a custom domain's
    base-path mapping, which API Gateway leaves in ``path``) stripped before routing,
    and every error mapped to its answer.

    ``validation`` (the management API) turns on Powertools' request validation from the
    routes' ``Query()``, ``Body()`` and ``Header()`` annotations; the webhooks parse their
    own form bodies and keep the cheaper cold start.
    """
    prefixes: list[str | re.Pattern[str]] = (
        [settings.api_base_path] if settings.api_base_path else []
    )
    app: APIGatewayRestResolver
    if validation:
        app = ApiResolver(strip_prefixes=prefixes or None, enable_validation=True)
    else:
        app = EnvironmentResolver(strip_prefixes=prefixes or None)
    register_error_handlers(app, validation=validation)
    return app


def api_handler(app: APIGatewayRestResolver) -> LambdaHandler:
    """The ``lambda_handler`` of an API function: every event routed through ``app``, API
    Gateway's request id on every log line."""

    @lambda_entry(correlation_id_path=API_GATEWAY_REST)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return lambda_handler


def webhook_handler(
    settings: Settings,
    path: str,
    answer: Callable[[APIGatewayProxyEvent, str], Response[str]],
    webhook_key: Callable[[], str],
) -> LambdaHandler:
    """The ``lambda_handler`` of one of Plum's webhooks: ``POST path`` answered by
    ``answer(event, key)``, every other route 404. The key is read per request, so a
    rotated key applies without a redeploy."""
    app = api_resolver(settings)

    @app.post(path)
    def webhook() -> Response[str]:
        return answer(app.current_event, webhook_key())

    return api_handler(app)


def _failure(exc: ValidationException) -> ValidationFailed:
    """Powertools' first validation error as this API's ``ValidationFailed``, naming the
    field as the caller sent it (``send_at``, ``recurrence.count``, ``limit``)."""
    errors = exc.errors()
    if not errors:
        return ValidationFailed("body", "is not valid")
    error = errors[0]
    if error.get("type") == "unsupported_content_type":
        return ValidationFailed("content-type", "must be application/json")
    where, *names = error.get("loc") or ("body",)
    if where == "query":
        # Query parameters are flat: a model's own name (``filters``) is not one of them.
        names = names[-1:]
    field = ".".join(str(name) for name in names) or str(where)
    if where == "header":
        # Powertools lowers header names; name it as documented (Idempotency-Key).
        field = "-".join(part.capitalize() for part in field.split("-"))
    rule = (
        "is required" if error.get("type") == "missing" else str(error.get("msg", "is not valid"))
    )
    return ValidationFailed(field, rule.removeprefix("Value error, "))


def _rejected(exc: ValidationFailed) -> Response[str]:
    metrics.add_metric(name="RejectedRequests", unit="Count", value=1)
    logger.info("request rejected", extra={"field": exc.field, "rule": exc.rule})
    return _error(400, str(exc), field=exc.field, rule=exc.rule)


def register_error_handlers(app: APIGatewayRestResolver, *, validation: bool = False) -> None:
    """Map every domain error to one HTTP answer; nothing internal reaches the caller."""

    # Registered explicitly: Powertools looks the no-route case up as its NotFoundError,
    # which the catch-all below would otherwise turn into a 500.
    @app.not_found
    def _no_route(exc: NotFoundError) -> Response[str]:
        return _error(404, "not found", field="path", rule="no route for this method and path")

    @app.exception_handler(ValidationFailed)
    def _bad_request(exc: ValidationFailed) -> Response[str]:
        return _rejected(exc)

    if validation:
        # Imported only where validation is on: the webhooks' cold start skips it.
        from aws_lambda_powertools.event_handler.openapi.exceptions import (  # noqa: PLC0415
            RequestUnsupportedContentType,
            RequestValidationError,
        )

        # One answer for every refused input: Powertools' errors become ValidationFailed.
        @app.exception_handler([RequestValidationError, RequestUnsupportedContentType])
        def _invalid_request(exc: RequestValidationError) -> Response[str]:
            return _rejected(_failure(exc))

    @app.exception_handler(Forbidden)
    def _forbidden(exc: Forbidden) -> Response[str]:
        metrics.add_metric(name="RejectedRequests", unit="Count", value=1)
        logger.warning("forbidden request", extra={"reason": str(exc)})
        return _error(403, "forbidden")

    @app.exception_handler(NotFound)
    def _not_found(exc: NotFound) -> Response[str]:
        return _error(404, "not found")

    @app.exception_handler(Conflict)
    def _conflict(exc: Conflict) -> Response[str]:
        return _error(409, str(exc))

    @app.exception_handler(StoreUnavailable)
    def _unavailable(exc: StoreUnavailable) -> Response[str]:
        logger.exception("message store unavailable")
        return _error(503, "temporarily unavailable, retry later")

    @app.exception_handler(ConfigurationError)
    def _misconfigured(exc: ConfigurationError) -> Response[str]:
        logger.error("configuration error", extra={"reason": str(exc), "variable": exc.variable})
        if exc.variable is None:
            return _error(500, "the bundle is misconfigured; see its logs")
        # The setting's name, never its value: the deployment's owner fixes it there.
        return _error(
            500,
            f"the bundle is misconfigured: {exc.variable} is not valid; see its logs",
            field=exc.variable,
            rule="is misconfigured",
        )

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response[str]:
        # Logged with its traceback for the operator; the caller learns nothing internal.
        logger.exception("unhandled error")
        return _error(500, "internal error")
