"""smsctl logs / show / tail / export / ui against the local gateway over real HTTP, and
the SigV4 signing proxy behind ``smsctl ui`` for deployed stacks."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import urllib3

from plumsms import bootstrap
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.config import Settings
from plumsms.domain.models import HistoryEntry, Message, MessageType
from plumsms.usecases.log import EXPORT_COLUMNS
from plumsms_local.cli import log as log_cli
from plumsms_local.cli import main
from plumsms_local.gateway import LocalGateway
from tests.factories import put_message

API_TOKEN = "cli-test-token-0123456789"
ACCOUNT = "+12435678910"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def gateway(function_env: dict[str, str]) -> Iterator[LocalGateway]:
    served = LocalGateway(API_TOKEN, port=0).start()
    yield served
    served.stop()


@pytest.fixture
def store(function_env: dict[str, str]) -> DynamoMessageStore:
    return bootstrap.message_store(Settings.from_env())


def make(
    index: int, status: str = "delivered", customer: str = "+19998880000", **extra: Any
) -> Message:
    at = extra.pop("created", T0 + timedelta(minutes=index))
    return Message.model_validate(
        {
            "id": uuid.uuid4().hex,
            "type": MessageType.OUTBOUND,
            "to": customer,
            "from": ACCOUNT,
            "body": f"message {index}",
            "status": status,
            "created_at": at,
            "updated_at": at,
            "segments": 1,
            "encoding": "GSM-7",
            "history": [
                HistoryEntry(status="queued", at=at, source="dispatcher"),
                HistoryEntry(status=status, at=at + timedelta(seconds=3), source="plum"),
            ],
            **extra,
        }
    )


def seed(store: DynamoMessageStore, messages: list[Message]) -> list[Message]:
    for message in messages:
        put_message(store, message)
    return messages


def smsctl(gateway: LocalGateway, *args: str, token: str = API_TOKEN) -> int:
    return main(["--url", gateway.url, "--token", token, *args])


def test_logs_prints_a_filtered_table(
    gateway: LocalGateway, store: DynamoMessageStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN failed and delivered messages
    failed = seed(store, [make(i, status="failed") for i in range(3)])
    delivered = seed(store, [make(10 + i) for i in range(2)])
    # WHEN `smsctl logs --status failed` runs
    code = smsctl(gateway, "logs", "--status", "failed")
    out = capsys.readouterr().out
    # THEN the table holds the failed ones only, with Plum's columns
    assert code == 0
    header = out.splitlines()[0].split()
    assert header == ["TIMESTAMP", "TYPE", "STATUS", "FROM", "TO", "ID", "BODY"]
    assert all(m.id in out for m in failed)
    assert not any(m.id in out for m in delivered)


def test_logs_all_follows_every_page(
    gateway: LocalGateway, store: DynamoMessageStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN 7 messages
    messages = seed(store, [make(i) for i in range(7)])
    # WHEN `smsctl --json logs --all --limit 2` runs
    code = smsctl(gateway, "--json", "logs", "--all", "--limit", "2", "--order", "asc")
    data = json.loads(capsys.readouterr().out)
    # THEN all 7 come, oldest first, once each
    assert code == 0
    assert [m["id"] for m in data["items"]] == [m.id for m in messages]


def test_logs_without_all_says_how_to_continue(
    gateway: LocalGateway, store: DynamoMessageStore, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(store, [make(i) for i in range(3)])
    assert smsctl(gateway, "logs", "--limit", "2") == 0
    assert "--cursor " in capsys.readouterr().err


def test_show_prints_body_and_history(
    gateway: LocalGateway, store: DynamoMessageStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a delivered message with a two-line body
    [message] = seed(store, [make(1, body="first line\nsecond line")])
    # WHEN `smsctl show` runs
    code = smsctl(gateway, "show", message.id)
    out = capsys.readouterr().out
    # THEN fields, the body and the history (oldest first) are printed
    assert code == 0
    assert out.splitlines()[0].split() == ["id", message.id]
    assert "  first line\n  second line" in out
    history = out.split("history:")[1]
    assert history.index("queued") < history.index("delivered")


def test_show_and_the_api_say_why_an_inbound_message_was_not_answered(
    gateway: LocalGateway, store: DynamoMessageStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an inbound text from a short code, stored unanswered
    [message] = seed(
        store,
        [make(2, type="inbound", status="received", unanswered="sender_cannot_receive")],
    )
    # WHEN `smsctl show` and `smsctl --json show` run
    assert smsctl(gateway, "show", message.id) == 0
    out = capsys.readouterr().out
    assert smsctl(gateway, "--json", "show", message.id) == 0
    data = json.loads(capsys.readouterr().out)
    # THEN both carry the reason
    assert re.search(r"^unanswered\s+sender_cannot_receive$", out, re.MULTILINE)
    assert data["unanswered"] == "sender_cannot_receive"


def test_show_unknown_is_an_error_exit(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    assert smsctl(gateway, "show", uuid.uuid4().hex) == 1
    assert "not found (HTTP 404)" in capsys.readouterr().err


def test_a_wrong_token_is_refused(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN the token is wrong
    assert smsctl(gateway, "logs", token="wrong") == 1
    err = capsys.readouterr().err
    # THEN 401 and where the token comes from
    assert "missing or invalid bearer token" in err and "HTTP 401" in err
    assert "make run prints the token" in err and "stack.json" in err


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic abc"])
def test_the_local_api_answers_401_saying_where_the_token_comes_from(
    gateway: LocalGateway, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    answer = urllib3.request("GET", gateway.url + "messages", headers=headers, retries=False)
    assert answer.status == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    error = answer.json()
    assert error["message"] == "missing or invalid bearer token"
    assert error["field"] == "Authorization"
    assert "make run prints the token" in error["rule"] and "API_TOKEN" in error["rule"]


def test_export_writes_the_whole_filtered_set_to_a_file(
    gateway: LocalGateway,
    store: DynamoMessageStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN 8 messages to one customer and 3 to another
    mine = seed(store, [make(i, customer="+19998881111") for i in range(8)])
    seed(store, [make(20 + i, customer="+19998882222") for i in range(3)])
    target = tmp_path / "out.csv"
    # WHEN that customer's messages are exported 3 rows per API answer
    code = smsctl(
        gateway, "export", "--number", "+19998881111", "-o", str(target), "--page-rows", "3"
    )
    # THEN the file is one CSV with every message of that customer, and progress went to stderr
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert sorted(r["id"] for r in rows) == sorted(m.id for m in mine)
    err = capsys.readouterr().err
    assert "continuing" in err
    assert f"exported 8 messages to {target}" in err
    assert not list(tmp_path.glob(".out.csv.*"))


def test_export_jsonl_to_stdout_honours_the_time_range(
    gateway: LocalGateway, store: DynamoMessageStore, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    # GIVEN messages across an hour
    messages = seed(store, [make(i * 10) for i in range(6)])
    # WHEN messages of minutes 10..30 are exported as JSON Lines to stdout
    start = (T0 + timedelta(minutes=10)).isoformat()
    end = (T0 + timedelta(minutes=30)).isoformat()
    code = smsctl(
        gateway, "export", "--format", "jsonl", "--start", start, "--end", end, "--order", "asc"
    )
    out = capfdbinary.readouterr().out.decode()
    # THEN exactly those three are written, oldest first
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == [m.id for m in messages[1:4]]


def test_tail_prints_one_line_per_status_change_with_the_id(
    gateway: LocalGateway,
    store: DynamoMessageStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN two recent messages and a pending one; while tail waits, a new message is
    # logged (queued, then delivered) and the pending one is cancelled
    now = datetime.now(UTC)
    old = seed(store, [make(i, created=now - timedelta(seconds=30 - i)) for i in range(2)])
    later = (now + timedelta(days=1)).isoformat()
    api = log_cli.api_client(argparse.Namespace(url=gateway.url, token=API_TOKEN, sigv4=False))
    pending = api.json("POST", "messages", body={"to": "+19998880000", "from": ACCOUNT,
                                                 "body": "later", "send_at": later})  # fmt: skip
    new = make(9, created=now)

    def meanwhile(seconds: float) -> None:
        if not happened:
            put_message(store, new)
            api.json("DELETE", f"messages/{pending['id']}")
            happened.append(True)

    happened: list[bool] = []
    monkeypatch.setattr(log_cli, "wait_between_polls", meanwhile)
    # WHEN `smsctl tail` runs for two polls
    code = smsctl(gateway, "tail", "--polls", "2", "--interval", "0")
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("{")]
    assert code == 0
    rows = [line.split()[:3] for line in lines]
    # THEN first the latest status of each recent message, oldest first, each with its id
    assert rows[:3] == [
        [m.history[-1].at.isoformat().replace("+00:00", "Z"), m.id, "delivered"] for m in old
    ] + [[rows[2][0], pending["id"], "scheduled"]]
    # AND then one line per status change, with the id: the new message's two, the cancel
    changes = [(row[1], row[2]) for row in rows[3:]]
    assert sorted(changes) == sorted(
        [(new.id, "queued"), (new.id, "delivered"), (pending["id"], "cancelled")]
    )


def test_ui_for_the_local_stack_never_puts_the_api_token_in_the_url(
    gateway: LocalGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN `smsctl ui --no-browser` runs against the local stack
    code = smsctl(gateway, "ui", "--no-browser")
    url = capsys.readouterr().out.strip()
    # THEN the page address carries a one-time code, never the API token
    assert code == 0
    assert API_TOKEN not in url
    assert url.startswith(f"{gateway.url}ui#code=")
    one_time = url.split("#code=", 1)[1]
    # AND the page trades the code once for a session token that the API accepts
    exchange = gateway.url + "local/ui-session"
    body = json.dumps({"code": one_time}).encode()
    first = urllib3.request("POST", exchange, body=body, retries=False)
    assert first.status == 200
    session = json.loads(first.data)["token"]
    assert session != API_TOKEN
    listed = fetch(gateway.url + "messages", authorization=f"Bearer {session}")
    assert listed.status == 200
    again = urllib3.request("POST", exchange, body=body, retries=False)
    assert again.status == 403
    assert fetch(gateway.url + "messages", authorization="Bearer guess").status == 401


def test_a_one_time_code_needs_the_api_token_and_expires(
    gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plumsms_local import gateway as gateway_module  # noqa: PLC0415

    assert urllib3.request("POST", gateway.url + "local/ui-code", retries=False).status == 401
    minted = urllib3.request(
        "POST",
        gateway.url + "local/ui-code",
        headers={"authorization": f"Bearer {API_TOKEN}"},
        retries=False,
    )
    code = json.loads(minted.data)["code"]
    # WHEN more than a minute passes THEN the code is refused
    later = gateway_module.time.monotonic() + gateway_module.CODE_SECONDS + 1
    monkeypatch.setattr(gateway_module.time, "monotonic", lambda: later)
    body = json.dumps({"code": code}).encode()
    answer = urllib3.request("POST", gateway.url + "local/ui-session", body=body, retries=False)
    assert answer.status == 403
    assert json.loads(answer.data)["field"] == "code"


# -- the signing proxy -----------------------------------------------------------------


def fake_signer(
    method: str, url: str, data: bytes | None, headers: dict[str, str]
) -> dict[str, str]:
    """Stands in for SigV4 against the local gateway: 'signing' adds its bearer token."""
    return {**headers, "authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def proxy(gateway: LocalGateway) -> Iterator[log_cli.SigningProxy]:
    served = log_cli.SigningProxy(gateway.url, session_token="session-xyz", sign=fake_signer)
    served.serve_in_background()
    yield served
    served.close()


def fetch(url: str, **headers: str) -> urllib3.BaseHTTPResponse:
    return urllib3.request("GET", url, headers=headers, retries=False, redirect=False)


def test_the_proxy_forwards_signed_calls_that_carry_the_session_token(
    proxy: log_cli.SigningProxy, store: DynamoMessageStore
) -> None:
    # GIVEN a logged message
    [message] = seed(store, [make(1)])
    base = f"http://{proxy.address}/"
    # WHEN the page's call comes with the session token
    answer = fetch(base + "messages", authorization="Bearer session-xyz")
    # THEN the proxy signs and forwards it, and the data comes back
    assert answer.status == 200
    assert [m["id"] for m in answer.json()["items"]] == [message.id]
    # AND without the session token nothing is signed
    assert fetch(base + "messages").status == 401
    assert fetch(base + "messages", authorization="Bearer wrong").status == 401


def test_the_proxy_serves_the_page_without_a_token(proxy: log_cli.SigningProxy) -> None:
    # WHEN the page and its script are loaded like a browser does (no header)
    page = fetch(f"http://{proxy.address}/ui")
    script = fetch(f"http://{proxy.address}/ui/app.js")
    # THEN they come through with their security headers
    assert page.status == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.status == 200
    assert proxy.page_url == f"http://{proxy.address}/ui#token=session-xyz"


def test_the_proxy_refuses_other_host_names(proxy: log_cli.SigningProxy) -> None:
    # GIVEN a request whose Host is not the proxy (a rebinding attack's shape)
    answer = fetch(
        f"http://{proxy.address}/messages", host="evil.example", authorization="Bearer session-xyz"
    )
    # THEN it is refused before anything is signed
    assert answer.status == 403


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        _Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = b'{"items": [], "next_cursor": null}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_the_proxy_signs_with_sigv4_under_a_stage_path(aws_env: None) -> None:
    # GIVEN an upstream at a stage path and AWS credentials in the environment
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    stage_url = f"http://127.0.0.1:{upstream.server_address[1]}/v1/"
    proxy = log_cli.SigningProxy(stage_url, session_token="session-abc").serve_in_background()
    try:
        # WHEN the page calls the API through the proxy
        answer = fetch(
            f"http://{proxy.address}/v1/messages?limit=5", authorization="Bearer session-abc"
        )
        outside = fetch(f"http://{proxy.address}/messages", authorization="Bearer session-abc")
    finally:
        proxy.close()
        upstream.shutdown()
        upstream.server_close()
    # THEN the upstream got a SigV4 request, and the session token never left the machine
    assert answer.status == 200
    [headers] = _Recorder.seen
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=local/")
    assert "/execute-api/aws4_request" in headers["authorization"]
    assert "x-amz-date" in headers
    assert "session-abc" not in json.dumps(headers)
    # AND paths outside the stage are not forwarded
    assert outside.status == 404
    assert proxy.page_url.endswith("/v1/ui#token=session-abc")
