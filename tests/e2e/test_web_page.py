"""The web page in headless Chromium, served by the local gateway (in-process) over real
HTTP from the embedded DynamoDB: sign in, chart, filter, page, detail, export, cancel."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3

from plumsms import bootstrap
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.config import Settings
from plumsms.domain.models import HistoryEntry, Message, MessageType
from plumsms_local.gateway import LocalGateway
from tests.factories import put_message

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
"""Under CI a missing browser fails the run: the page must be tested where it matters."""
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
API_TOKEN = "browser-test-token-0123456789"
ACCOUNT = "+12435678910"
CUSTOMER = "+19998881234"
OTHER = "+19998885555"
HOSTILE_BODY = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> & "quotes"'

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not IN_CI,
        reason=f"no Chromium at {CHROMIUM} (apt-get install chromium; under CI=true this fails)",
    ),
]


def make(
    minutes_ago: float,
    *,
    customer: str = CUSTOMER,
    status: str = "delivered",
    kind: MessageType = MessageType.OUTBOUND,
    body: str | None = None,
    send_at: datetime | None = None,
) -> Message:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    inbound = kind is MessageType.INBOUND
    history = [HistoryEntry(status="scheduled", at=at, source="api")]
    if status != "scheduled":
        history += [
            HistoryEntry(status="queued", at=at + timedelta(seconds=1), source="dispatcher"),
            HistoryEntry(status=status, at=at + timedelta(seconds=4), source="plum"),
        ]
    return Message.model_validate(
        {
            "id": uuid.uuid4().hex,
            "sms_message_id": None if status == "scheduled" else uuid.uuid4().hex,
            "type": kind,
            "to": ACCOUNT if inbound else customer,
            "from": customer if inbound else ACCOUNT,
            "body": body or f"Hello {customer[-4:]} at {minutes_ago:.0f} minutes ago",
            "status": status,
            "created_at": at,
            "updated_at": at,
            "send_at": send_at,
            "result_url": "https://sms.example.test/plum/status?key=KEY&ref=x",
            "segments": 1,
            "encoding": "GSM-7",
            "history": history,
        }
    )


@pytest.fixture
def stack(function_env: dict[str, str]) -> Iterator[tuple[LocalGateway, DynamoMessageStore]]:
    """The local gateway serving the template's routes, and the store behind it."""
    gateway = LocalGateway(API_TOKEN, port=0).start()
    yield gateway, bootstrap.message_store(Settings.from_env())
    gateway.stop()


@pytest.fixture
def seeded(stack: tuple[LocalGateway, DynamoMessageStore]) -> dict[str, Any]:
    """A log of 34 messages over four days, with a hostile body and a scheduled send."""
    _, store = stack
    messages = [
        make(60 * 24 * (i % 4) + i, status=["delivered", "failed", "sent"][i % 3])
        for i in range(24)
    ]
    messages += [make(30 + i, customer=OTHER, status="failed") for i in range(6)]
    hostile = make(5, status="failed", body=HOSTILE_BODY)
    inbound = make(3, kind=MessageType.INBOUND, status="received", body="STOP")
    scheduled = make(
        1, status="scheduled", body="Reminder: see you tomorrow",
        send_at=datetime.now(UTC) + timedelta(days=1),
    )  # fmt: skip
    messages += [hostile, inbound, scheduled]
    for message in messages:
        put_message(store, message)
    return {"all": messages, "hostile": hostile, "scheduled": scheduled}


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"CI=true and no Chromium at {CHROMIUM}: the browser tests must run in CI")
    if IN_CI:
        import playwright.sync_api as sync_api  # noqa: PLC0415 - a missing one fails under CI
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, timezone_id="UTC", locale="en-US",
            accept_downloads=True,
        )  # fmt: skip
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.errors = errors
        yield page
        context.close()
        browser.close()


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    """Save a full-page screenshot (and copy it to $PLUMSMS_SCREENSHOTS if set)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get("PLUMSMS_SCREENSHOTS"):
        target = Path(os.environ["PLUMSMS_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)
    return path


def sign_in(page: Any, url: str) -> None:
    page.goto(url + "ui")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#token", API_TOKEN)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#log-table tbody tr[data-id]")


def wait_rows(page: Any, count: int) -> None:
    # Functions, not expressions: the page's CSP forbids eval, which expressions need.
    page.wait_for_function(
        "n => document.querySelectorAll('#log-table tbody tr[data-id]').length === n", arg=count
    )


def row_ids(page: Any, table: str = "#log-table") -> list[str]:
    return list(
        page.eval_on_selector_all(
            f"{table} tbody tr[data-id]", "rows => rows.map(r => r.dataset.id)"
        )
    )


def test_find_a_message_by_number_and_status_and_read_its_history(
    stack: tuple[LocalGateway, DynamoMessageStore],
    seeded: dict[str, Any],
    browser_page: Any,
    tmp_path: Path,
) -> None:
    gateway, _ = stack
    page = browser_page
    # GIVEN the page opened from the local stack: it asks for the API token first
    sign_in(page, gateway.url)
    # THEN the log shows the newest 50 with Plum's columns, and the chart has bars
    headers = page.eval_on_selector_all("#log-table thead th", "ths => ths.map(t => t.textContent)")
    assert headers[:5] == ["To", "From", "Timestamp", "Status", "Type"]
    # AND the body (shortened), segments and error of each message, times with their zone
    assert headers[5:8] == ["Body", "Segments", "Error"]
    assert len(row_ids(page)) == 33
    hostile_row = page.locator(f"#log-table tr[data-id='{seeded['hostile'].id}'] td")
    assert hostile_row.nth(5).inner_text() == HOSTILE_BODY[:60] + "…"
    assert hostile_row.nth(6).inner_text() == "1"
    assert hostile_row.nth(2).inner_text().endswith("UTC")
    labels = page.eval_on_selector_all("#filters label", "ls => ls.map(l => l.textContent.trim())")
    assert "Created after" in labels and "Created before" in labels
    assert page.locator("#chart svg rect").count() >= 4
    assert "failed" in page.inner_text("#chart-legend")
    screenshot(page, tmp_path, "log")

    # WHEN the user filters by the customer's number and status "failed"
    page.fill("#filters input[name=number]", CUSTOMER)
    page.select_option("#filters select[name=status]", "failed")
    page.click("#filters button[type=submit]")
    page.wait_for_function("() => location.hash.includes('status=failed')")
    wait_rows(page, 9)
    # THEN only that number's failed messages are listed
    expected = {m.id for m in seeded["all"] if m.status == "failed" and CUSTOMER in (m.to, m.from_)}
    assert set(row_ids(page)) == expected
    screenshot(page, tmp_path, "filtered")

    # WHEN the hostile message's View link is opened
    hostile = seeded["hostile"]
    page.click(f"#log-table tr[data-id='{hostile.id}'] a")
    page.wait_for_selector("#view-detail:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#detail-history li').length === 3")
    # THEN body, result URL and status timeline are shown, and the body is text, not markup
    assert page.inner_text("#detail-id") == hostile.id
    assert page.text_content("#detail-body") == HOSTILE_BODY
    assert page.locator("#detail-body img, #detail-body script").count() == 0
    assert page.evaluate("window.__xss") is None
    # The result URL is shown with its webhook key masked.
    assert "plum/status?key=***&ref=x" in page.inner_text("#detail-fields")
    timeline = page.eval_on_selector_all(
        "#detail-history li .badge", "b => b.map(x => x.textContent)"
    )
    assert timeline == ["scheduled", "queued", "failed"]
    screenshot(page, tmp_path, "detail")

    # AND going back keeps the filters
    page.click("#back-link")
    page.wait_for_selector("#view-log:not([hidden])")
    assert page.input_value("#filters input[name=number]") == CUSTOMER
    assert not page.errors


def test_paging_and_export_of_the_filtered_log(
    stack: tuple[LocalGateway, DynamoMessageStore],
    seeded: dict[str, Any],
    browser_page: Any,
    tmp_path: Path,
) -> None:
    gateway, _ = stack
    page = browser_page
    sign_in(page, gateway.url)
    # GIVEN 25 messages per page
    page.select_option("#filters select[name=limit]", "25")
    page.click("#filters button[type=submit]")
    wait_rows(page, 25)
    first = row_ids(page)
    # WHEN the next page is opened
    page.click("#next-page")
    page.wait_for_function("() => document.querySelector('#page-label').textContent === 'Page 2'")
    second = row_ids(page)
    # THEN it holds the rest, without repeats, and there is no further page
    assert len(second) == 8
    assert not set(first) & set(second)
    assert page.is_disabled("#next-page")
    # AND the page number is in the address: a reload opens page 2 again
    assert "page=2" in page.url
    page.reload()
    page.wait_for_function("() => document.querySelector('#page-label').textContent === 'Page 2'")
    wait_rows(page, 8)
    assert row_ids(page) == second
    # The chart loads after the rows; drawn, it moves the pager: click once it is there
    page.wait_for_selector("body[data-ready=true]")
    page.click("#prev-page")
    page.wait_for_function("() => document.querySelector('#page-label').textContent === 'Page 1'")
    assert row_ids(page) == first

    # WHEN the other customer's messages are exported as CSV from the page
    page.fill("#filters input[name=number]", OTHER)
    page.click("#filters button[type=submit]")
    wait_rows(page, 6)
    with page.expect_download() as download_info:
        page.click("[data-export=csv]")
    download = download_info.value
    text = Path(download.path()).read_text(encoding="utf-8")
    # THEN the file holds exactly those messages
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["id"] for r in rows} == {m.id for m in seeded["all"] if m.to == OTHER}
    assert download.suggested_filename.endswith(".csv")
    assert "Exported 6 messages." in page.inner_text("#export-status")
    # AND the export's note does not follow the user to other views
    page.click("nav a[data-view=opt-outs]")
    page.wait_for_selector("#view-opt-outs:not([hidden])")
    page.click("nav a[data-view=log]")
    page.wait_for_selector("#view-log:not([hidden])")
    assert page.inner_text("#export-status") == ""
    assert not page.errors


def test_scheduled_messages_can_be_cancelled(
    stack: tuple[LocalGateway, DynamoMessageStore],
    seeded: dict[str, Any],
    browser_page: Any,
    tmp_path: Path,
) -> None:
    gateway, store = stack
    page = browser_page
    sign_in(page, gateway.url)
    scheduled = seeded["scheduled"]
    # GIVEN the scheduled page
    page.click("nav a[data-view=scheduled]")
    page.wait_for_selector(f"#scheduled-table tr[data-id='{scheduled.id}']")
    assert row_ids(page, "#scheduled-table") == [scheduled.id]
    screenshot(page, tmp_path, "scheduled")
    # WHEN its Cancel button is clicked and confirmed
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#scheduled-table tr[data-id='{scheduled.id}'] button")
    page.wait_for_function("() => !document.querySelector('#scheduled-table tr[data-id]')")
    # THEN the message is cancelled in the log and the page says nothing is scheduled
    assert store.get(scheduled.id).status == "cancelled"
    assert "Nothing is scheduled." in page.inner_text("#scheduled-table")
    # AND the page confirms what it did
    page.wait_for_selector("#done:not([hidden])")
    assert f"Cancelled: message {scheduled.id} will not be sent." in page.inner_text("#done")
    assert not page.errors


def test_a_wrong_token_is_refused_and_the_login_stays(
    stack: tuple[LocalGateway, DynamoMessageStore], browser_page: Any
) -> None:
    gateway, _ = stack
    page = browser_page
    # GIVEN the page opened with a wrong token in the fragment (as smsctl ui would pass one)
    page.goto(gateway.url + "ui#token=wrong")
    # THEN the API refuses it and the page asks again, saying why
    page.wait_for_selector("#login:not([hidden])")
    assert "refused" in page.inner_text("#notice")
    assert page.locator("#app").is_hidden()


def test_smsctl_ui_signs_the_page_in_with_a_one_time_code_and_shows_why_unanswered(
    stack: tuple[LocalGateway, DynamoMessageStore],
    seeded: dict[str, Any],
    browser_page: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from plumsms_local.cli import main  # noqa: PLC0415

    gateway, store = stack
    page = browser_page
    unanswered = make(2, kind=MessageType.INBOUND, status="received", body="Your code: 1")
    unanswered = unanswered.model_copy(
        update={"from_": "AMAZON", "unanswered": "sender_cannot_receive"}
    )
    put_message(store, unanswered)
    # GIVEN the address `smsctl ui` prints for the local stack (a one-time code in it)
    assert main(["--url", gateway.url, "--token", API_TOKEN, "ui", "--no-browser"]) == 0
    url = capsys.readouterr().out.strip()
    assert API_TOKEN not in url and "#code=" in url
    # WHEN the browser opens it THEN the page is signed in and the code is gone from the URL
    page.goto(url)
    page.wait_for_selector("#log-table tbody tr[data-id]")
    assert "code=" not in page.url
    # AND a message left unanswered says why
    page.goto(gateway.url + f"ui#/messages/{unanswered.id}")
    page.wait_for_selector("#detail-fields")
    page.wait_for_function(
        "() => document.querySelector('#detail-fields').textContent.includes('Not answered')"
    )
    assert "short code or name" in page.inner_text("#detail-fields")
    # AND opening the same address again does not sign a new browser in
    fresh = page.context.new_page()
    fresh.goto(url)
    fresh.wait_for_selector("#login:not([hidden])")
    assert not page.errors


def test_the_api_explorer_renders_offline(
    stack: tuple[LocalGateway, DynamoMessageStore], browser_page: Any, tmp_path: Path
) -> None:
    gateway, _ = stack
    page = browser_page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    # WHEN the interactive API page is opened
    page.goto(gateway.url + "api-docs")
    page.wait_for_selector(".swagger-ui .opblock-summary-path")
    # THEN it lists the log operations, and nothing was fetched from another host
    paths = page.eval_on_selector_all(
        ".opblock-summary-path", "nodes => nodes.map(n => n.textContent.trim())"
    )
    assert "/messages/export" in paths
    assert all(url.startswith(gateway.url) or url.startswith("data:") for url in requested)
    screenshot(page, tmp_path, "api-docs")


def authorize_swagger(page: Any, gateway: LocalGateway) -> None:
    """Open the API page and give Swagger the API token through its own dialog."""
    page.goto(gateway.url + "api-docs")
    page.click(".swagger-ui .btn.authorize")
    page.fill(".modal-ux input[type=text], .modal-ux input[type=password]", API_TOKEN)
    page.click(".modal-ux .auth-btn-wrapper .btn.authorize")
    page.click(".modal-ux .btn-done")


def test_swagger_try_it_out_sends_with_the_bearer_token(
    stack: tuple[LocalGateway, DynamoMessageStore], browser_page: Any, tmp_path: Path
) -> None:
    gateway, _ = stack
    page = browser_page
    sent: list[Any] = []
    page.on("request", lambda request: sent.append(request))  # noqa: PLW0108 (playwright wants a function)
    # GIVEN the API page, authorised with the API token through Swagger's own dialog
    authorize_swagger(page, gateway)
    # WHEN "Try it out" on POST /messages is given a JSON body and executed
    operation = page.locator("#operations-sending-send_message_messages_post")
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    body = {"to": "+12125551234", "from": ACCOUNT, "body": "Sent from Swagger"}
    operation.locator("textarea.body-param__text").fill(json.dumps(body))
    operation.locator(".execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    # THEN the JSON went to this API's /messages with the token, and the message exists
    [call] = [r for r in sent if r.method == "POST" and r.url == gateway.url + "messages"]
    assert call.headers.get("authorization") == f"Bearer {API_TOKEN}"
    assert json.loads(call.post_data or "{}") == body
    assert status.inner_text().strip() == "201"
    screenshot(page, tmp_path, "api-docs-try-it-out")


def try_it_out(page: Any, operation_id: str, fill: dict[str, str] | None = None) -> str:
    """Run one operation with Swagger's "Try it out"; the HTTP status it shows."""
    operation = page.locator(f"#operations-{operation_id}")
    operation.locator(".opblock-summary").first.click()
    operation.locator(".try-out__btn").click()
    for name, value in (fill or {}).items():
        if name == "body":
            operation.locator("textarea.body-param__text").fill(value)
        else:
            operation.locator(f"tr[data-param-name='{name}'] input").fill(value)
    operation.locator(".execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    code = str(status.inner_text()).strip()
    operation.locator(".opblock-summary").first.click()  # fold it again
    return code


def test_swagger_try_it_out_works_for_every_route(
    stack: tuple[LocalGateway, DynamoMessageStore], browser_page: Any, tmp_path: Path
) -> None:
    gateway, _ = stack
    page = browser_page
    # GIVEN a scheduled send to look at, change and cancel, and the API page authorised
    later = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    message_id = post_send(gateway, send_at=iso(later))["id"]
    authorize_swagger(page, gateway)
    document = urllib3.request("GET", gateway.url + "openapi.json").json()
    # Swagger names each operation's element after its first tag and its id.
    operations = {
        f"{op['tags'][0]}-{op['operationId']}": (method.upper(), path)
        for path, methods in document["paths"].items()
        for method, op in methods.items()
    }
    path_id = {"message_id": message_id}
    changed = json.dumps({"body": "Changed in Swagger"})
    posted = json.dumps({"to": "+12125551234", "from": ACCOUNT, "body": "Sent from Swagger"})
    # WHEN every operation of the document is run from the page, cancel last
    order = sorted(operations, key=lambda o: (operations[o][0] == "DELETE", o))
    answers = {}
    for operation_id in order:
        method, path = operations[operation_id]
        fill = dict(path_id) if "{message_id}" in path else {}
        if method == "PATCH":
            fill["body"] = changed
        if method == "POST":
            fill["body"] = posted
        answers[f"{method} {path}"] = try_it_out(page, operation_id, fill)
    screenshot(page, tmp_path, "api-docs-every-route")
    # THEN each answered with success, through this API, with the token
    assert len(answers) == len(operations) >= 8
    assert {route: code for route, code in answers.items() if not code.startswith("2")} == {}


def post_send(gateway: LocalGateway, **fields: Any) -> dict[str, Any]:
    """POST /messages through the gateway, as the page's user would with smsctl."""
    payload = {"to": CUSTOMER, "from": ACCOUNT, "body": "Hello"} | fields
    answer = urllib3.request(
        "POST",
        gateway.url + "messages",
        json=payload,
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert answer.status == 201, answer.data
    return dict(answer.json())


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_scheduled_view_lists_in_send_order_across_pages_with_series_and_quiet_hours(
    stack: tuple[LocalGateway, DynamoMessageStore], browser_page: Any, tmp_path: Path
) -> None:
    gateway, _ = stack
    page = browser_page
    now = datetime.now(UTC)
    # GIVEN five scheduled sends created in an order unlike their send order, one of them
    # a daily series with quiet hours
    hours = [5, 1, 4, 2, 3]
    sent = [
        post_send(gateway, send_at=iso(now + timedelta(hours=h)), body=f"in {h}h") for h in hours
    ]
    series = post_send(
        gateway, send_at=iso(now + timedelta(hours=6)), body="daily",
        recurrence={"frequency": "daily", "count": 3, "time_zone": "America/New_York"},
        quiet_hours={"start": "21:00", "end": "08:00", "time_zone": "America/New_York"},
    )  # fmt: skip
    by_due = [m["id"] for m in sorted(sent, key=lambda m: m["send_at"])] + [series["id"]]
    # AND an API that answers two at a time (the page asks for 100; pages of two show
    # what "More" does with a long list)
    page.route(
        "**/messages?*status=scheduled*",
        lambda route, request: route.continue_(url=re.sub(r"limit=\d+", "limit=2", request.url)),
    )
    sign_in(page, gateway.url)
    # WHEN the scheduled view is opened and More clicked until every send is listed
    page.click("nav a[data-view=scheduled]")
    page.wait_for_selector("#scheduled-table tr[data-id]")
    while page.is_visible("#scheduled-more"):
        shown = len(row_ids(page, "#scheduled-table"))
        page.click("#scheduled-more")
        page.wait_for_function(
            "n => document.querySelectorAll('#scheduled-table tr[data-id]').length > n", arg=shown
        )
    # THEN the whole list is in send order, not page by page
    assert row_ids(page, "#scheduled-table") == by_due
    # AND the series shows its rule and quiet hours
    cells = page.locator(f"#scheduled-table tr[data-id='{series['id']}'] td")
    assert cells.nth(4).inner_text() == "daily in America/New_York, 3 times"
    assert cells.nth(5).inner_text() == "21:00-08:00 America/New_York"
    screenshot(page, tmp_path, "scheduled-series")
    # WHEN its detail is opened
    page.click(f"#scheduled-table tr[data-id='{series['id']}'] a")
    page.wait_for_function(
        "() => document.querySelector('#detail-fields').textContent.includes('Quiet hours')"
    )
    # THEN it names the series, this message's place in it and the quiet hours
    fields = page.inner_text("#detail-fields")
    assert "daily in America/New_York, 3 times (this is #1)" in fields
    assert series["id"] in fields.split("Series", 1)[1]
    assert "21:00-08:00 America/New_York" in fields
    assert not page.errors


def test_an_unknown_id_clears_the_previous_message_and_its_cancel_button(
    stack: tuple[LocalGateway, DynamoMessageStore], seeded: dict[str, Any], browser_page: Any
) -> None:
    gateway, _ = stack
    page = browser_page
    sign_in(page, gateway.url)
    scheduled = seeded["scheduled"]
    # GIVEN the detail of a scheduled message, with its Cancel button
    page.goto(gateway.url + f"ui#/messages/{scheduled.id}")
    page.wait_for_selector("#detail-cancel:not([hidden])")
    # WHEN an id that does not exist is opened
    unknown = uuid.uuid4().hex
    page.goto(gateway.url + f"ui#/messages/{unknown}")
    page.wait_for_selector("#notice:not([hidden])")
    # THEN nothing of the previous message is left, and the page says the id is unknown
    assert f"No message has the id {unknown}." in page.inner_text("#notice")
    assert page.locator("#detail-cancel").is_hidden()
    assert page.inner_text("#detail-fields") == ""
    assert page.text_content("#detail-body") == ""
    assert page.inner_text("#detail-id") == unknown
    # WHEN the user goes on to another view THEN the notice goes
    page.click("nav a[data-view=scheduled]")
    page.wait_for_selector("#scheduled-table tr[data-id]")
    assert page.locator("#notice").is_hidden()
    # (the browser itself logs the API's 404 answer; the page adds no error of its own)
    assert [e for e in page.errors if "status of 404" not in e] == []


def test_a_token_link_pasted_into_an_open_tab_signs_in(
    stack: tuple[LocalGateway, DynamoMessageStore], seeded: dict[str, Any], browser_page: Any
) -> None:
    gateway, _ = stack
    page = browser_page
    # GIVEN the page open at its sign-in form
    page.goto(gateway.url + "ui")
    page.wait_for_selector("#login:not([hidden])")
    # WHEN a "#token=" link is pasted into the same tab (only the fragment changes)
    page.goto(gateway.url + f"ui#token={API_TOKEN}")
    # THEN the page signs in and the token leaves the address
    page.wait_for_selector("#log-table tbody tr[data-id]")
    assert page.locator("#login").is_hidden()
    assert "token=" not in page.url
    assert not page.errors


PHONE = {"width": 390, "height": 844}


def assert_fits_the_phone(page: Any, view: str) -> None:
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"], f"{view}: the page is {width} px wide"
    header = page.locator("header.top").bounding_box()
    sign_out = page.locator("#sign-out").bounding_box()
    assert header is not None and sign_out is not None
    assert sign_out["x"] >= header["x"]
    assert sign_out["x"] + sign_out["width"] <= header["x"] + header["width"]
    assert sign_out["y"] >= header["y"]
    assert sign_out["y"] + sign_out["height"] <= header["y"] + header["height"]
    assert header["x"] + header["width"] <= PHONE["width"]


def test_the_page_fits_a_phone(
    stack: tuple[LocalGateway, DynamoMessageStore],
    seeded: dict[str, Any],
    browser_page: Any,
    tmp_path: Path,
) -> None:
    gateway, _ = stack
    # GIVEN the page on a 390 px wide phone, and the same page on a desktop
    desktop = browser_page
    sign_in(desktop, gateway.url)
    screenshot(desktop, tmp_path, "desktop-1280-log")
    context = desktop.context.browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
        timezone_id="UTC", locale="en-US",
    )  # fmt: skip
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # WHEN each view is opened
    sign_in(page, gateway.url)
    # THEN nothing scrolls sideways, Sign out stays inside the header
    assert_fits_the_phone(page, "log")
    # AND the chart's labels are drawn at a readable size without overlapping
    ticks = page.eval_on_selector_all(
        "#chart svg text.tick",
        "ts => ts.map(t => { const b = t.getBoundingClientRect();"
        " return [b.left, b.right, b.height, t.textContent]; })",
    )
    dates = sorted((t for t in ticks if "-" in t[3]), key=lambda t: t[0])
    assert len(dates) >= 4
    assert all(height >= 10 for _, _, height, _ in ticks), ticks
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(dates)), dates
    screenshot(page, tmp_path, "phone-390-log")
    hostile = seeded["hostile"]
    page.goto(gateway.url + f"ui#/messages/{hostile.id}")
    page.wait_for_function("() => document.querySelectorAll('#detail-history li').length === 3")
    assert_fits_the_phone(page, "detail")
    screenshot(page, tmp_path, "phone-390-detail")
    page.click("nav a[data-view=scheduled]")
    page.wait_for_selector("#scheduled-table tr[data-id]")
    assert_fits_the_phone(page, "scheduled")
    screenshot(page, tmp_path, "phone-390-scheduled")
    page.click("nav a[data-view=opt-outs]")
    page.wait_for_selector("#view-opt-outs:not([hidden])")
    assert_fits_the_phone(page, "opt-outs")
    assert not errors
    context.close()
