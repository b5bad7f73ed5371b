"""Traces never record responses (they carry phone numbers and bodies)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools import Tracer

from plumsms.observability import tracer


@pytest.mark.parametrize("asked", [None, True, False])
def test_responses_are_never_captured(monkeypatch: pytest.MonkeyPatch, asked: bool | None) -> None:
    seen: list[Any] = []

    def record(self: Any, method: Any = None, capture_response: Any = None, **kw: Any) -> Any:
        seen.append(capture_response)
        return method

    monkeypatch.setattr(Tracer, "capture_method", record)
    monkeypatch.setattr(Tracer, "capture_lambda_handler", record)
    tracer.capture_method(lambda: None, capture_response=asked)
    tracer.capture_lambda_handler(lambda e, c: None, capture_response=asked)
    assert seen == [False, False]
