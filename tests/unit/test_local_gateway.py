"""The local gateway's routing and event building (no sockets: dispatch is called directly)."""

from __future__ import annotations

import base64

from plumsms_local import template
from plumsms_local.gateway import proxy_event


def test_routes_come_from_the_template_with_their_auth() -> None:
    routes = {(r.method, r.path): r for r in template.routes()}
    assert routes[("POST", "/plum/inbound")].function == "InboundSmsFunction"
    assert routes[("POST", "/plum/inbound")].authorized is False
    assert routes[("GET", "/messages")].authorized is True
    assert routes[("GET", "/messages/{id}")].handler_file.name == "app.py"


def test_literal_paths_win_over_parameters() -> None:
    ordered = [r.path for r in template.routes() if r.method == "GET"]
    assert ordered.index("/messages/export") < ordered.index("/messages/{id}")


def test_path_parameters_match_one_segment() -> None:
    route = next(r for r in template.routes() if r.path == "/messages/{id}" and r.method == "GET")
    assert route.match("GET", "/messages/abc123") == {"id": "abc123"}
    assert route.match("GET", "/messages/a/b") is None
    assert route.match("POST", "/messages/abc123") is None


def test_proxy_event_has_api_gateway_rest_shape() -> None:
    event = proxy_event(
        "POST",
        "/plum/inbound?key=k&x=1&x=2",
        {"content-type": "application/x-www-form-urlencoded", "host": "127.0.0.1:3000"},
        b"a=1",
        resource="/plum/inbound",
        path_parameters=None,
    )
    assert event["path"] == "/plum/inbound" and event["resource"] == "/plum/inbound"
    assert event["queryStringParameters"] == {"key": "k", "x": "2"}
    assert event["multiValueQueryStringParameters"]["x"] == ["1", "2"]
    assert event["body"] == "a=1" and event["isBase64Encoded"] is False
    assert event["requestContext"]["httpMethod"] == "POST"


def test_binary_bodies_are_base64_encoded() -> None:
    event = proxy_event(
        "POST", "/x", {"content-type": "application/octet-stream"}, b"\xff\x00",
        resource="/x", path_parameters=None,
    )  # fmt: skip
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00"
