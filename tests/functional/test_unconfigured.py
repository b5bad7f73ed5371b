"""A fresh deploy and a wrong setting, through the handlers: what keeps working.

- Plum credentials not set yet (the secret holds empty values): the scheduled functions
  do not read them when there is nothing to do, and with work they end the run as
  ``not_configured`` with one warning, never an error.
- ``SMS_NUMBERS`` wrong: every function still starts; only sending refuses, naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from plumsms import secrets as secrets_module
from plumsms.adapters.dynamodb.outbox import DynamoOutbox
from plumsms.adapters.dynamodb.store import DynamoMessageStore
from plumsms.domain.models import Message, Status
from plumsms.domain.sending import Schedule
from plumsms.secrets import NOT_CONFIGURED_WARNING
from plumsms_local.gateway import proxy_event
from plumsms_local.lambda_runtime import LocalFunction
from plumsms_local.template import PROJECT_ROOT
from tests.factories import outbound_message, put_message

ACCOUNT, CUSTOMER = "+12435678910", "+19998881234"
SECRET_NAME = "plumsms/plum-credentials"
WARNING = "Plum credentials are not configured"


@pytest.fixture
def fresh_deploy(
    monkeypatch: pytest.MonkeyPatch, function_env: dict[str, str]
) -> Iterator[dict[str, Any]]:
    """The environment a fresh deploy gives: the credentials secret holds empty values.

    Secrets Manager is stood in for by Powertools' ``get_secret``; ``reads`` counts the
    GetSecretValue calls for the Plum credentials.
    """
    monkeypatch.delenv("PLUM_USERNAME")
    monkeypatch.delenv("PLUM_PASSWORD")
    monkeypatch.setenv("PLUM_CREDENTIALS_SECRET", SECRET_NAME)
    state: dict[str, Any] = {"reads": 0}

    def get_secret(name: str, max_age: int = 0) -> str:
        assert name == SECRET_NAME
        state["reads"] += 1
        return json.dumps({"username": "", "password": ""})

    monkeypatch.setattr(secrets_module.parameters, "get_secret", get_secret)
    yield state


@pytest.fixture
def store(table_name: str, ddb: Any) -> DynamoMessageStore:
    return DynamoMessageStore(table_name, client=ddb)


def scheduled_event(name: str) -> dict[str, Any]:
    return dict(json.loads((PROJECT_ROOT / "events" / f"{name}.json").read_text()))


def message(status: str, age: timedelta, sms_message_id: str | None = None) -> Message:
    at = datetime.now(UTC) - age
    return outbound_message(
        at,
        sms_message_id=sms_message_id,
        to=CUSTOMER,
        from_=ACCOUNT,
        body="Your table is ready",
        status=status,
        send_at=at,
    )


def warnings_in(lines: list[dict[str, Any]]) -> list[str]:
    return [line["message"] for line in lines if line.get("level") == "WARNING"]


def test_the_dispatcher_waits_for_credentials_without_failing(
    fresh_deploy: dict[str, Any],
    load_function: Callable[[str], LocalFunction],
    store: DynamoMessageStore,
    log_lines: Any,
) -> None:
    dispatcher = load_function("scheduled_send")
    # GIVEN nothing due WHEN the schedule fires THEN Plum's credentials are not even read
    idle = dispatcher.invoke(scheduled_event("scheduled_send"))
    assert (idle["outcome"], idle["counts"], fresh_deploy["reads"]) == ("done", {}, 0)
    # GIVEN a message due now WHEN the schedule fires
    due = message(Status.SCHEDULED, timedelta(seconds=5))
    DynamoOutbox(store).create(due, Schedule())
    log_lines.take()
    result = dispatcher.invoke(scheduled_event("scheduled_send"))
    # THEN the run ends as not configured: no error, nothing failed, the message still due
    assert result["outcome"] == result["stopped"] == "not_configured"
    assert result["counts"] == {}
    assert store.get(due.id).status == Status.SCHEDULED
    # AND it said so in one warning line, the run's only warning
    assert [w for w in warnings_in(log_lines.take())] == [NOT_CONFIGURED_WARNING]


def test_the_reconciler_waits_for_credentials_without_failing(
    fresh_deploy: dict[str, Any],
    function_env: dict[str, str],
    store: DynamoMessageStore,
    log_lines: Any,
) -> None:
    reconciler = LocalFunction(
        "reconciler", PROJECT_ROOT / "functions" / "reconciler" / "app.py", timeout_seconds=120
    )
    # GIVEN nothing in flight WHEN the schedule fires THEN the credentials are not read
    idle = reconciler.invoke(scheduled_event("reconciler"))
    assert (idle["outcome"], idle["examined"], fresh_deploy["reads"]) == ("done", 0, 0)
    # GIVEN a message stuck in queued WHEN the schedule fires
    stuck = message(Status.QUEUED, timedelta(hours=1), sms_message_id="e" * 32)
    put_message(store, stuck)
    log_lines.take()
    result = reconciler.invoke(scheduled_event("reconciler"))
    # THEN it ends as not configured, without an error, the message left as it was
    assert (result["outcome"], result["errors"], result["examined"]) == ("not_configured", 0, 0)
    assert store.get(stuck.id).status == Status.QUEUED
    assert warnings_in(log_lines.take()) == [NOT_CONFIGURED_WARNING]


# -- a wrong SMS_NUMBERS ---------------------------------------------------------------------


def api_event(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    return proxy_event(
        method,
        path,
        {"content-type": "application/json"},
        data,
        resource=path,
        path_parameters=None,
    )


def test_a_wrong_sms_numbers_fails_only_sending(
    monkeypatch: pytest.MonkeyPatch,
    load_function: Callable[[str], LocalFunction],
    event: Any,
    log_lines: Any,
) -> None:
    # GIVEN SMS_NUMBERS that is not a phone number
    monkeypatch.setenv("SMS_NUMBERS", "not-a-number")
    # WHEN every function starts THEN none fails its cold start
    functions = {
        name: load_function(name)
        for name in ("inbound_sms", "result_url", "messages_api", "scheduled_send", "reconciler")
    }
    # AND inbound, the Result URL and the log keep working
    form = {"sms_message_id": "f" * 32, "to": "2435678910", "from": "19998881234", "body": "Hi"}
    assert functions["inbound_sms"].invoke(event("inbound_sms", form=form))["statusCode"] == 200
    status = {"sms_message_id": "f" * 32, "status": "delivered"}
    assert functions["result_url"].invoke(event("result_url", form=status))["statusCode"] == 200
    api = functions["messages_api"]
    listed = api.invoke(api_event("GET", "/messages"))
    assert listed["statusCode"] == 200
    assert len(json.loads(listed["body"])["items"]) == 1
    # AND only a send, which needs the account's numbers, is refused, naming the setting
    log_lines.take()
    refused = api.invoke(
        api_event("POST", "/messages", {"to": CUSTOMER, "from": ACCOUNT, "body": "Hello"})
    )
    assert refused["statusCode"] == 500
    answer = json.loads(refused["body"])
    assert answer["field"] == "SMS_NUMBERS"
    assert "SMS_NUMBERS" in answer["message"]
    # AND the operator's log says which entry is wrong, without echoing the value
    [line] = [entry for entry in log_lines.take() if entry["message"] == "configuration error"]
    assert line["level"] == "ERROR" and line["variable"] == "SMS_NUMBERS"
    assert "entry 1" in line["reason"] and "not-a-number" not in line["reason"]
