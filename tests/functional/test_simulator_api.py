"""Contract tests of the simulated Plum REST API, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import urllib3
from lxml import etree

from plumsms_local.simulator import Delays, PlumSimulator, SimulatorClient, SimulatorConfig

USER, PASSWORD = "acme", "s3cret"
ACCOUNT, ACCOUNT_DIGITS = "+12435678910", "2435678910"
OTHER_ACCOUNT = "+12435678911"
PHONE, PHONE_DIGITS = "+19998881234", "19998881234"
LANDLINE = "+12025550100"
RESOURCE_FIELDS = [
    "sms_message_id",
    "to",
    "from",
    "body",
    "request_timestamp",
    "result_url",
    "status",
]


class Clock:
    """A settable clock, so time filters are deterministic."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[PlumSimulator]:
    config = SimulatorConfig(
        username=USER,
        password=PASSWORD,
        sms_numbers=(ACCOUNT, OTHER_ACCOUNT),
        landlines=frozenset({LANDLINE}),
        delays=Delays(sent_seconds=0.005, final_seconds=0.005),
        seed=1,
    )
    with PlumSimulator(config, clock=clock) as server:
        yield server


http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=10))
AUTH = urllib3.make_headers(basic_auth=f"{USER}:{PASSWORD}")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def queue(
    sim: PlumSimulator,
    fmt: str = "json",
    headers: dict[str, str] | None = None,
    fields: dict[str, str] | None = None,
    **named: str,
) -> urllib3.BaseHTTPResponse:
    """POST sms/queue; ``fields`` (or keyword arguments) override a valid default request."""
    form = {"to": PHONE_DIGITS, "from": ACCOUNT_DIGITS, "body": "hello", **(fields or {}), **named}
    return http.request(
        "POST",
        f"{sim.api_url}sms/queue.{fmt}",
        body=urlencode(form),
        headers={**FORM, **AUTH} if headers is None else headers,
    )


def get(sim: PlumSimulator, service: str, **params: str) -> urllib3.BaseHTTPResponse:
    return http.request("GET", f"{sim.api_url}sms/{service}", fields=params, headers=AUTH)


def ok_json(response: urllib3.BaseHTTPResponse) -> Any:
    data = json.loads(response.data)
    assert response.status == 200, data
    assert (data["status"], data["error"]) == ("success", "")
    return data["result"]


def failure_json(response: urllib3.BaseHTTPResponse) -> str:
    data = json.loads(response.data)
    assert set(data) == {"status", "error"}  # no result on failure
    assert data["status"] == "failure"
    error: str = data["error"]
    return error


# queue: envelope and resource


def test_queue_json_answers_one_resource_with_exact_fields(sim: PlumSimulator) -> None:
    result = ok_json(queue(sim, result_url="http://127.0.0.1:1/cb"))
    [message] = result["sms_messages"]
    assert list(message) == RESOURCE_FIELDS
    assert re.fullmatch(r"[0-9a-f]{32}", message["sms_message_id"])
    assert message["to"] == PHONE_DIGITS
    assert message["from"] == ACCOUNT_DIGITS
    assert message["body"] == "hello"
    assert message["request_timestamp"] == 1_700_000_000
    assert message["result_url"] == "http://127.0.0.1:1/cb"
    assert message["status"] == "queued"


def test_queue_xml_envelope(sim: PlumSimulator) -> None:
    response = queue(sim, "xml", body="fish & <chips>")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    root = etree.fromstring(response.data)
    assert root.tag == "queue"
    assert [child.tag for child in root] == ["status", "error", "result"]
    assert root.findtext("status") == "success"
    assert root.findtext("error") is None or root.findtext("error") == ""
    [message] = root.findall("result/sms_messages/sms_message")
    assert [child.tag for child in message] == RESOURCE_FIELDS
    assert message.findtext("body") == "fish & <chips>"
    assert message.findtext("status") == "queued"


def test_queue_xml_failure_has_no_result(sim: PlumSimulator) -> None:
    root = etree.fromstring(queue(sim, "xml", to="12").data)
    assert root.tag == "queue"
    assert root.findtext("status") == "failure"
    assert root.findtext("error") == "Invalid 'to' phone number"
    assert root.find("result") is None


@pytest.mark.parametrize(
    ("body", "parts"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 307, 3),
        ("é" * 161, 2),  # é is in GSM-7
        ("ж" * 70, 1),
        ("ж" * 71, 2),
    ],
)
def test_long_bodies_are_split_into_parts(sim: PlumSimulator, body: str, parts: int) -> None:
    messages = ok_json(queue(sim, body=body))["sms_messages"]
    assert len(messages) == parts
    assert "".join(m["body"] for m in messages) == body
    assert len({m["sms_message_id"] for m in messages}) == parts


def test_split_parts_use_carrier_sizes(sim: PlumSimulator) -> None:
    gsm = ok_json(queue(sim, body="a" * 161))["sms_messages"]
    ucs2 = ok_json(queue(sim, body="ж" * 71))["sms_messages"]
    assert [len(m["body"]) for m in gsm] == [153, 8]
    assert [len(m["body"]) for m in ucs2] == [67, 4]


# queue: failures


@pytest.mark.parametrize(
    "headers",
    [
        {},
        urllib3.make_headers(basic_auth=f"{USER}:wrong"),
        urllib3.make_headers(basic_auth=f"nobody:{PASSWORD}"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer token"},
    ],
)
def test_bad_credentials_are_unauthorized(sim: PlumSimulator, headers: dict[str, str]) -> None:
    response = queue(sim, headers={**FORM, **headers})
    assert response.status == 401
    assert failure_json(response).startswith("Unauthorized access to ")
    assert SimulatorClient(sim.base_url).messages() == []


def test_every_service_checks_credentials(sim: PlumSimulator) -> None:
    for service in ("status.json", "messages.xml", "conversation.json"):
        response = http.request("GET", f"{sim.api_url}sms/{service}")
        assert response.status == 401, service


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"to": "12"}, "Invalid 'to' phone number"),
        ({"to": ""}, "Invalid 'to' phone number"),
        ({"to": "call me"}, "Invalid 'to' phone number"),
        ({"to": LANDLINE}, "To number: +12025550100, is not a mobile number"),
        ({"to": "2025550100"}, "To number: +12025550100, is not a mobile number"),
        ({"from": "2025550199"}, "Invalid 'from' phone number"),
        ({"from": ""}, "Invalid 'from' phone number"),
        ({"body": ""}, "Error sending sms request (missing 'body')"),
    ],
)
def test_queue_failures_use_plums_strings(
    sim: PlumSimulator, fields: dict[str, str], error: str
) -> None:
    response = queue(sim, fields=fields)
    assert response.status == 400
    assert failure_json(response) == error


@pytest.mark.parametrize("sender", ["2435678910", "12435678910", "+12435678910", "2435678911"])
def test_from_accepts_any_form_of_an_account_number(sim: PlumSimulator, sender: str) -> None:
    [message] = ok_json(queue(sim, fields={"from": sender}))["sms_messages"]
    assert message["from"] == sender[-10:]


def test_queue_accepts_only_form_encoding(sim: PlumSimulator) -> None:
    as_json = http.request(
        "POST",
        f"{sim.api_url}sms/queue.json",
        body=json.dumps({"to": PHONE_DIGITS, "from": ACCOUNT_DIGITS, "body": "x"}),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    multipart = http.request(
        "POST",
        f"{sim.api_url}sms/queue.json",
        fields={"to": PHONE_DIGITS, "from": ACCOUNT_DIGITS, "body": "x"},
        headers=AUTH,
    )
    for response in (as_json, multipart):
        assert response.status == 400
        assert "x-www-form-urlencoded" in failure_json(response)


def test_wrong_method_and_unknown_service(sim: PlumSimulator) -> None:
    response = http.request("GET", f"{sim.api_url}sms/queue.json", headers=AUTH)
    assert response.status == 405
    assert failure_json(response).startswith("Method GET not allowed")
    unknown = http.request("GET", f"{sim.api_url}sms/nothing.json", headers=AUTH)
    assert unknown.status == 404
    assert failure_json(unknown) == "Unknown service"


def test_unsubscribed_recipient_is_refused(sim: PlumSimulator) -> None:
    client = SimulatorClient(sim.base_url)
    client.send_text(PHONE, ACCOUNT, "STOP")
    response = queue(sim)
    assert failure_json(response) == "Attempt to send to unsubscribed recipient"


# status, messages, conversation


def test_status_follows_the_message(sim: PlumSimulator) -> None:
    [queued] = ok_json(queue(sim))["sms_messages"]
    SimulatorClient(sim.base_url).wait_for_status(queued["sms_message_id"], {"delivered"})
    result = ok_json(get(sim, "status.json", sms_message_id=queued["sms_message_id"]))
    assert result["sms_message"] == {**queued, "status": "delivered"}
    root = etree.fromstring(get(sim, "status.xml", sms_message_id=queued["sms_message_id"]).data)
    assert root.tag == "status"
    assert root.findtext("result/sms_message/status") == "delivered"


def test_status_of_an_unknown_message_fails(sim: PlumSimulator) -> None:
    response = get(sim, "status.json", sms_message_id="f" * 32)
    assert response.status == 404
    assert failure_json(response) == "SMS message not found"


@pytest.mark.parametrize(
    ("service", "params"),
    [
        ("status.json", {"message_id": "f" * 32}),
        ("messages.json", {"phone": "12025550123"}),
        ("conversation.json", {"account_phone_number": "2435678910", "customer": "1202"}),
    ],
)
def test_a_parameter_the_service_does_not_take_is_refused_not_ignored(
    sim: PlumSimulator, service: str, params: dict[str, str]
) -> None:
    # GIVEN a client whose (inferred) parameter name differs from the simulator's reading
    # WHEN it asks a GET service with it
    response = get(sim, service, **params)
    # THEN the simulator says which parameter it does not know, instead of ignoring the
    # filter (which would answer unfiltered and hide the wrong guess)
    assert response.status == 400
    assert "unknown parameter" in failure_json(response)


def test_the_bundles_client_uses_only_parameters_the_simulator_knows(sim: PlumSimulator) -> None:
    # GIVEN the bundle's Plum client and the simulator's separate reading of the reference
    from plumsms.adapters.plum.client import PlumClient  # noqa: PLC0415
    from plumsms.domain.plum import PlumMessageQuery, PlumPageQuery  # noqa: PLC0415

    client = PlumClient(sim.api_url, USER, PASSWORD, backoff_factor=0)
    window = {
        "offset": 1,
        "limit": 60,
        "sort": "asc",
        "start": datetime(2026, 1, 1, tzinfo=UTC),
        "end": datetime(2026, 1, 2, tzinfo=UTC),
    }
    # WHEN it uses every filter of sms/messages and sms/conversation
    query = PlumMessageQuery(
        type="outbound", number="+12025550123", number_side="customer", **window
    )
    # THEN the simulator takes them all (a drifted name would be a 400)
    assert client.messages(query) == []
    assert client.conversation("+12435678910", "+12025550123", PlumPageQuery(**window)) == []


def _seed_log(sim: PlumSimulator, clock: Clock) -> None:
    """Six messages at t, t+10, ...: outbound to PHONE and a third party, and inbound."""
    client = SimulatorClient(sim.base_url)
    for n in range(3):
        clock.now = 1_700_000_000 + 20 * n
        ok_json(queue(sim, body=f"out {n}"))
        clock.now += 10
        client.send_text(PHONE, ACCOUNT, f"in {n}")
    clock.now = 1_700_000_100
    ok_json(queue(sim, fields={"to": "12025550177", "from": "2435678911", "body": "other"}))


def _bodies(result: dict[str, Any]) -> list[str]:
    return [m["body"] for m in result["sms_messages"]]


def test_messages_filters(sim: PlumSimulator, clock: Clock) -> None:
    _seed_log(sim, clock)
    everything = ok_json(get(sim, "messages.json"))
    assert everything["total"] == 7
    assert _bodies(everything) == ["other", "in 2", "out 2", "in 1", "out 1", "in 0", "out 0"]
    ascending = ok_json(get(sim, "messages.json", sort="asc"))
    assert _bodies(ascending)[:2] == ["out 0", "in 0"]
    inbound = ok_json(get(sim, "messages.json", type="inbound", sort="asc"))
    assert _bodies(inbound) == ["in 0", "in 1", "in 2"]
    assert {m["status"] for m in inbound["sms_messages"]} == {"received"}
    outbound = ok_json(get(sim, "messages.json", type="outbound", sort="asc"))
    assert _bodies(outbound) == ["out 0", "out 1", "out 2", "other"]
    window = ok_json(get(sim, "messages.json", start="1700000010", end="1700000030", sort="asc"))
    assert _bodies(window) == ["in 0", "out 1", "in 1"]
    by_customer = ok_json(
        get(
            sim,
            "messages.json",
            phone_number=PHONE_DIGITS,
            phone_number_type="customer",
            sort="asc",
        )
    )
    assert by_customer["total"] == 6
    assert (
        ok_json(get(sim, "messages.json", phone_number=PHONE, phone_number_type="account"))["total"]
        == 0
    )
    by_account = ok_json(get(sim, "messages.json", phone_number="2435678911"))
    assert _bodies(by_account) == ["other"]


def test_messages_paging(sim: PlumSimulator) -> None:
    for n in range(55):
        ok_json(queue(sim, body=f"m{n:02}"))
    first = ok_json(get(sim, "messages.json", sort="asc"))
    assert (len(first["sms_messages"]), first["total"]) == (50, 55)
    second = ok_json(get(sim, "messages.json", sort="asc", offset="50", limit="50"))
    assert _bodies(second) == [f"m{n:02}" for n in range(50, 55)]
    assert _bodies(first) + _bodies(second) == [f"m{n:02}" for n in range(55)]
    too_small = get(sim, "messages.json", limit="10")
    assert failure_json(too_small).startswith("Invalid 'limit' parameter")


def test_messages_xml_list(sim: PlumSimulator) -> None:
    ok_json(queue(sim, body="one"))
    ok_json(queue(sim, body="two"))
    root = etree.fromstring(get(sim, "messages.xml", sort="asc").data)
    assert root.tag == "messages"
    assert [m.findtext("body") for m in root.findall("result/sms_messages/sms_message")] == [
        "one",
        "two",
    ]
    assert root.findtext("result/total") == "2"


def test_conversation(sim: PlumSimulator, clock: Clock) -> None:
    _seed_log(sim, clock)
    result = ok_json(
        get(
            sim,
            "conversation.json",
            account_phone_number=ACCOUNT_DIGITS,
            customer_phone_number=PHONE_DIGITS,
        )
    )
    assert _bodies(result) == ["out 0", "in 0", "out 1", "in 1", "out 2", "in 2"]
    none = ok_json(
        get(
            sim,
            "conversation.json",
            account_phone_number="2435678911",
            customer_phone_number=PHONE_DIGITS,
        )
    )
    assert none == {"sms_messages": [], "total": 0}
    root = etree.fromstring(
        get(
            sim,
            "conversation.xml",
            account_phone_number=ACCOUNT,
            customer_phone_number=PHONE,
            limit="50",
        ).data
    )
    assert root.tag == "conversation"
    assert len(root.findall("result/sms_messages/sms_message")) == 6
    missing = get(sim, "conversation.json", account_phone_number=ACCOUNT_DIGITS)
    assert failure_json(missing) == "Invalid 'customer_phone_number' parameter (required)"


# injected API faults


def test_server_errors_are_injected_on_the_api_only(sim: PlumSimulator) -> None:
    client = SimulatorClient(sim.base_url)
    client.set_faults(api_error_rate=1.0)
    response = queue(sim)
    assert response.status == 503
    assert response.headers["Content-Type"] == "text/html"
    assert client.health()["status"] == "ok"  # /sim/ is never faulted
    assert client.messages() == []
    client.set_faults(api_error_rate=0.0)
    assert queue(sim).status == 200


def test_timeouts_hang_then_close_without_answer(sim: PlumSimulator) -> None:
    SimulatorClient(sim.base_url).set_faults(api_timeout_rate=1.0, api_timeout_seconds=0.05)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        queue(sim)
    assert time.monotonic() - started >= 0.05


def test_latency_delays_the_answer(sim: PlumSimulator) -> None:
    SimulatorClient(sim.base_url).set_faults(api_latency_rate=1.0, api_latency_seconds=0.15)
    started = time.monotonic()
    assert queue(sim).status == 200
    assert time.monotonic() - started >= 0.15


def test_a_long_hang_does_not_block_stop() -> None:
    server = PlumSimulator(SimulatorConfig(username=USER, password=PASSWORD, seed=1))
    server.start()
    SimulatorClient(server.base_url).set_faults(api_timeout_rate=1.0, api_timeout_seconds=60)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(queue, server)
        time.sleep(0.1)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5
        with pytest.raises(urllib3.exceptions.ProtocolError):
            pending.result(timeout=5)


def test_faults_endpoint_validates(sim: PlumSimulator) -> None:
    client = SimulatorClient(sim.base_url)
    with pytest.raises(Exception, match="HTTP 400"):
        client.set_faults(api_error_rate=3.0)
    with pytest.raises(Exception, match="HTTP 400"):
        client.set_faults(no_such_fault=0.1)
    assert client.faults()["api_error_rate"] == 0.0


def test_stop_then_start_again_serves_the_same_state() -> None:
    server = PlumSimulator(SimulatorConfig(username=USER, password=PASSWORD, seed=1))
    first_url = server.start()
    assert queue(server).status == 200
    server.stop()
    with pytest.raises(urllib3.exceptions.HTTPError):
        http.request("GET", first_url + "/sim/health", retries=False)
    server.start()
    try:
        assert len(SimulatorClient(server.base_url).messages()) == 1
        assert queue(server).status == 200
    finally:
        server.stop()
