"""Run the bundle's Lambda handlers in-process, as the Lambda service would call them."""

from __future__ import annotations

import importlib.util
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalContext:
    """The parts of the Lambda context object that Powertools and the handlers read."""

    function_name: str
    timeout_seconds: float = 10.0
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before this invocation's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunction:
    """One function: its module is imported once (a cold start), then invoked serially.

    Like one Lambda execution environment, it handles one event at a time: the handlers
    keep per-request state in module-level objects (Powertools' resolver does).
    """

    def __init__(self, name: str, handler_file: Path, timeout_seconds: float = 10.0) -> None:
        self.name = name
        self.handler_file = handler_file
        self.timeout_seconds = timeout_seconds
        self._module: ModuleType | None = None
        self._lock = threading.Lock()

    def module(self) -> ModuleType:
        """Import the handler module on first use (under a unique name)."""
        if self._module is None:
            spec = importlib.util.spec_from_file_location(
                f"plumsms_function_{self.name}", self.handler_file
            )
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {self.handler_file}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._module = module
        return self._module

    def invoke(self, event: dict[str, Any]) -> Any:
        """Call ``lambda_handler(event, context)`` and return its result."""
        with self._lock:
            handler: Handler = self.module().lambda_handler
            try:
                return handler(event, LocalContext(self.name, self.timeout_seconds))
            finally:
                drop_unpublished_metrics()


def drop_unpublished_metrics() -> None:
    """Forget the metrics an invocation recorded when metrics are disabled (the local stack).

    Powertools publishes and clears its buffer only when metrics are enabled; disabled,
    the buffer is shared by every ``Metrics`` object and grows across invocations until
    100 values of one metric force a print: a 10 KB line in the terminal. A real Lambda
    environment has the same buffer but flushes it.
    """
    if is_metrics_disabled():
        Metrics().clear_metrics()
