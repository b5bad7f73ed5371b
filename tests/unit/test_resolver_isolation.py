"""Two functions' resolvers serving requests at once in one process (as the local stack
runs them) each read their own request, as they would in their own Lambda processes."""

from __future__ import annotations

import json
import threading
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from plumsms.entrypoints.webhooks import EnvironmentResolver


def event(path: str, body: str | None) -> dict[str, Any]:
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "POST",
        "headers": {"content-type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"requestId": path, "stage": "test"},
        "body": body,
        "isBase64Encoded": False,
    }


def read_while_another_request_arrives(resolver_type: type[APIGatewayRestResolver]) -> str:
    """What the first function's route read from its request body ("to"), when a second
    function's request (no body) arrives while the route is running."""
    first, second = resolver_type(), resolver_type()
    inside, arrived = threading.Event(), threading.Event()

    @first.post("/messages")
    def send() -> dict[str, Any]:
        inside.set()
        assert arrived.wait(timeout=5)
        body = first.current_event.json_body
        return {"read": body["to"] if body else "another request's body"}

    @second.post("/status")
    def status() -> dict[str, Any]:
        arrived.set()
        return {}

    answer: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: answer.update(first.resolve(event("/messages", '{"to": "+1"}'), None))
    )
    thread.start()
    assert inside.wait(timeout=5)
    second.resolve(event("/status", None), None)
    thread.join(timeout=5)
    assert answer["statusCode"] == 200
    return str(json.loads(answer["body"])["read"])


def test_each_resolver_reads_its_own_request_while_another_is_resolved() -> None:
    assert read_while_another_request_arrives(EnvironmentResolver) == "+1"


def test_powertools_own_resolver_would_read_the_other_request() -> None:
    # The control: Powertools keeps the request on its router class, shared by the
    # process, so the first route read the second request (the local stack's POST
    # /messages answered 500 on the empty body).
    assert read_while_another_request_arrives(APIGatewayRestResolver) == "another request's body"
