"""Shared fixtures: the embedded DynamoDB server over HTTP, tables from the template,
API Gateway events from ``events/``, and handlers loaded as Lambda would load them."""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from plumsms_local import dynamodb
from plumsms_local.lambda_runtime import LocalFunction
from plumsms_local.template import PROJECT_ROOT

EVENTS = PROJECT_ROOT / "events"
WEBHOOK_KEY = "test-webhook-key-0123456789"
CURSOR_KEY = "test-cursor-key-9876543210"
SMS_NUMBER = "+12435678910"


@pytest.fixture(scope="session")
def dynamo_server() -> Iterator[dynamodb.EmbeddedDynamoDB]:
    """One embedded DynamoDB-compatible server for the whole session (real HTTP)."""
    server = dynamodb.EmbeddedDynamoDB().start()
    yield server
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, dynamo_server: dynamodb.EmbeddedDynamoDB) -> None:
    """Point boto3 at the embedded server with throwaway credentials; no real AWS."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", dynamodb.REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "plumsms-test")


@pytest.fixture
def table_name(aws_env: None, dynamo_server: dynamodb.EmbeddedDynamoDB) -> str:
    """A fresh table, created from template.yaml's definition, for this test alone."""
    name = f"messages-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(dynamo_server.client(), name)
    return name


@pytest.fixture
def ddb(dynamo_server: dynamodb.EmbeddedDynamoDB, aws_env: None) -> Any:
    """A raw boto3 client on the embedded server, to inspect what was stored."""
    return dynamo_server.client()


@pytest.fixture
def function_env(
    monkeypatch: pytest.MonkeyPatch, table_name: str, tmp_path: Path
) -> dict[str, str]:
    """The environment a deployed function would get, pointing at the test table.

    The rules file is empty (no automatic replies) unless a test writes its own.
    """
    no_rules = tmp_path / "no-rules.yaml"
    no_rules.write_text("{}\n")
    env = {
        "RULES_FILE": str(no_rules),
        "TABLE_NAME": table_name,
        "WEBHOOK_KEY": WEBHOOK_KEY,
        "CURSOR_KEY": CURSOR_KEY,
        "PUBLIC_BASE_URL": "https://sms.example.test/",
        "SMS_NUMBERS": SMS_NUMBER,
        "PLUM_USERNAME": "user",
        "PLUM_PASSWORD": "pass",
        # Retries of the Plum client happen at once: no test waits on real backoff.
        "PLUM_RETRY_BACKOFF_SECONDS": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def load_function(function_env: dict[str, str]) -> Callable[[str], LocalFunction]:
    """Load ``functions/<name>/app.py`` fresh (a cold start) with the test environment."""

    def load(name: str) -> LocalFunction:
        function = LocalFunction(name, PROJECT_ROOT / "functions" / name / "app.py")
        function.module()
        return function

    return load


def api_event(
    name: str,
    *,
    form: dict[str, str] | None = None,
    body: str | bytes | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """The event fixture ``events/<name>.json`` with the given body, query and headers."""
    event: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))
    if form is not None:
        body = urlencode(form)
    if body is not None:
        raw = body.encode() if isinstance(body, str) else body
        event["isBase64Encoded"] = base64_body
        event["body"] = base64.b64encode(raw).decode() if base64_body else raw.decode()
    if query is not None:
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    if headers is not None:
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    return event


@pytest.fixture
def event() -> Callable[..., dict[str, Any]]:
    """Build an API Gateway event from a fixture in ``events/``."""
    return api_event


def project_path(*parts: str) -> Path:
    """A path inside the project."""
    return PROJECT_ROOT.joinpath(*parts)


class LogLines:
    """The JSON lines the bundle's Powertools logger wrote while the fixture was active."""

    def __init__(self, buffer: io.StringIO) -> None:
        self._buffer = buffer

    def take(self) -> list[dict[str, Any]]:
        """The lines written since the last ``take`` (parsed), and forget them."""
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    """Capture the bundle's log output (its handler's stream, whatever pytest did to stdout)."""
    from plumsms.observability import logger  # noqa: PLC0415

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield LogLines(buffer)
    handler.setStream(previous)
