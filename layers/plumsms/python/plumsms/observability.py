"""The Powertools logger, tracer and metrics, created once for every function.

Logs carry ids, never phone numbers or bodies (those are personal data); anything that
must show content does so at DEBUG only. Traces never record a handler's response (an
answer holds numbers, bodies and reply XML): Powertools would by default, so the tracer
here turns it off for every decorated function, whatever the environment says.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

LambdaHandler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]


class PrivateTracer(Tracer):
    """A Powertools ``Tracer`` whose subsegments never carry the traced call's response."""

    def capture_method(
        self,
        method: Any = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Any:
        del capture_response  # responses hold personal data: never recorded
        return super().capture_method(method, capture_response=False, capture_error=capture_error)

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[..., Any]:
        del capture_response
        return super().capture_lambda_handler(
            lambda_handler, capture_response=False, capture_error=capture_error
        )


logger = Logger()
tracer = PrivateTracer()
metrics = Metrics(namespace="PlumSms")


def lambda_entry(
    correlation_id_path: str | None = None,
) -> Callable[[LambdaHandler], LambdaHandler]:
    """What every function's ``lambda_handler`` is wrapped in: log lines that carry the
    invocation's context and a correlation id (the event's at ``correlation_id_path``,
    else the invocation's own request id: a scheduled run's id), state cleared between
    invocations; a trace that keeps neither the response nor the error (both can hold the
    webhook key, numbers and bodies); the metrics flushed."""

    def entry(handler: LambdaHandler) -> LambdaHandler:
        if correlation_id_path is None:
            handler = _run_id_logged(handler)
        traced = tracer.capture_lambda_handler(
            metrics.log_metrics(handler), capture_response=False, capture_error=False
        )
        wrapped: LambdaHandler = logger.inject_lambda_context(
            traced, correlation_id_path=correlation_id_path, clear_state=True
        )
        return wrapped

    return entry


def _run_id_logged(handler: LambdaHandler) -> LambdaHandler:
    @functools.wraps(handler)
    def run(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        logger.set_correlation_id(context.aws_request_id)
        return handler(event, context)

    return run
