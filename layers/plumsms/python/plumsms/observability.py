"""The Powertools logger, tracer and metrics, created once for every function.

Logs carry ids, never phone numbers or bodies (those are personal data); anything that
must show content does so at DEBUG only. Traces never record a handler's response (an
answer holds numbers, bodies and reply XML): Powertools would by default, so the tracer
here turns it off for every decorated function, whatever the environment says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer


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
