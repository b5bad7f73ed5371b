"""The three API functions as API Gateway calls them: unknown routes, and a custom domain
whose base-path mapping leaves the base path in the event's ``path``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from plumsms_local.lambda_runtime import LocalFunction

Event = Callable[..., dict[str, Any]]
INBOUND_FORM = {"sms_message_id": "c" * 32, "to": "2435678910", "from": "19998881234", "body": "Hi"}
STATUS_FORM = {"sms_message_id": "d" * 32, "status": "delivered"}
FUNCTIONS = [
    ("inbound_sms", "inbound_sms", "POST"),
    ("result_url", "result_url", "POST"),
    ("messages_api", "messages_api_list", "GET"),
]


def at_path(event: dict[str, Any], path: str, method: str | None = None) -> dict[str, Any]:
    """``event`` as API Gateway sends it for ``path`` (the stage stays in requestContext)."""
    event["path"] = path
    event["requestContext"]["path"] = f"/{event['requestContext'].get('stage', 'Prod')}{path}"
    if method is not None:
        event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    return event


@pytest.mark.parametrize(("function", "fixture", "method"), FUNCTIONS)
@pytest.mark.parametrize("path", ["/nothing-here", "/plum/inbound/extra", "/messages/x/y/z"])
def test_unknown_routes_answer_404_json_not_500(
    load_function: Callable[[str], LocalFunction],
    event: Event,
    function: str,
    fixture: str,
    method: str,
    path: str,
) -> None:
    # GIVEN an API function WHEN a request names a route it does not serve
    response = load_function(function).invoke(at_path(event(fixture), path, method))
    # THEN it answers 404 with the API's error shape
    assert response["statusCode"] == 404, response["body"]
    body = json.loads(response["body"])
    assert body["message"] == "not found"
    assert body["field"] == "path"


def test_a_known_path_with_another_method_is_404_not_500(
    load_function: Callable[[str], LocalFunction], event: Event
) -> None:
    response = load_function("inbound_sms").invoke(
        at_path(event("inbound_sms"), "/plum/inbound", "GET")
    )
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["message"] == "not found"


@pytest.mark.parametrize("base_path", ["sms", "/sms/v2"])
def test_every_api_function_serves_under_a_custom_domains_base_path(
    load_function: Callable[[str], LocalFunction],
    event: Event,
    monkeypatch: pytest.MonkeyPatch,
    base_path: str,
) -> None:
    # GIVEN API_BASE_PATH set as the custom domain's base-path mapping
    monkeypatch.setenv("API_BASE_PATH", base_path)
    prefix = "/" + base_path.strip("/")
    # WHEN each route is called with the base path in the event's path, as API Gateway does
    inbound = load_function("inbound_sms").invoke(
        at_path(event("inbound_sms", form=INBOUND_FORM), f"{prefix}/plum/inbound")
    )
    status = load_function("result_url").invoke(
        at_path(event("result_url", form=STATUS_FORM), f"{prefix}/plum/status")
    )
    api = load_function("messages_api")
    listed = api.invoke(at_path(event("messages_api_list"), f"{prefix}/messages"))
    # THEN each is routed as without the base path
    assert inbound["statusCode"] == 200, inbound["body"]
    assert inbound["body"].startswith("<?xml")
    assert status["statusCode"] == 200, status["body"]
    assert listed["statusCode"] == 200, listed["body"]
    assert [m["from"] for m in json.loads(listed["body"])["items"]] == ["+19998881234"]
    # AND the same path without the base path is still served (the stage URL keeps working)
    assert api.invoke(event("messages_api_list"))["statusCode"] == 200
    # AND a path under another base is unknown
    other = api.invoke(at_path(event("messages_api_list"), "/other/messages"))
    assert other["statusCode"] == 404
