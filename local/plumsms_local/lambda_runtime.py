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
    """One function, run the way Lambda runs it: in execution environments.

    Each environment imports the handler module once (a cold start) and handles one event
    at a time: the handlers keep per-request state in module-level objects (Powertools'
    resolver does). Up to ``environments`` invocations run at once, each in its own
    environment (a new one is started when all are busy), as Lambda runs concurrent
    invocations; with the default of one, invocations are serialised.
    """

    def __init__(
        self,
        name: str,
        handler_file: Path,
        timeout_seconds: float = 10.0,
        environments: int = 1,
    ) -> None:
        if environments < 1:
            raise ValueError("environments must be at least 1")
        self.name = name
        self.handler_file = handler_file
        self.timeout_seconds = timeout_seconds
        self.environments = environments
        self._module: ModuleType | None = None
        self._idle: list[ModuleType] = []
        self._started = 0
        self._changed = threading.Condition()

    def _load(self, index: int) -> ModuleType:
        suffix = f"_{index}" if index else ""
        spec = importlib.util.spec_from_file_location(
            f"plumsms_function_{self.name}{suffix}", self.handler_file
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {self.handler_file}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def module(self) -> ModuleType:
        """The first environment's module, imported on first use (under a unique name)."""
        with self._changed:
            if self._module is None:
                self._module = self._load(0)
                self._started = 1
                self._idle.append(self._module)
            return self._module

    def _take(self) -> ModuleType:
        self.module()
        with self._changed:
            while not self._idle and self._started >= self.environments:
                self._changed.wait()
            if self._idle:
                return self._idle.pop()
            self._started += 1
            index = self._started - 1
        try:
            return self._load(index)  # a cold start, outside the lock
        except BaseException:
            with self._changed:
                self._started -= 1
                self._changed.notify()
            raise

    def invoke(self, event: dict[str, Any]) -> Any:
        """Call ``lambda_handler(event, context)`` in a free environment; its result."""
        environment = self._take()
        try:
            handler: Handler = environment.lambda_handler
            return handler(event, LocalContext(self.name, self.timeout_seconds))
        finally:
            drop_unpublished_metrics()
            with self._changed:
                self._idle.append(environment)
                self._changed.notify()


def drop_unpublished_metrics() -> None:
    """Forget the metrics an invocation recorded when metrics are disabled (the local stack).

    Powertools publishes and clears its buffer only when metrics are enabled; disabled,
    the buffer is shared by every ``Metrics`` object and grows across invocations until
    100 values of one metric force a print: a 10 KB line in the terminal. A real Lambda
    environment has the same buffer but flushes it.
    """
    if is_metrics_disabled():
        Metrics().clear_metrics()
