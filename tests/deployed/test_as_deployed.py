"""Defects that only show as deployed: IAM, credentials, traces, logs, events, routing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from plumsms_local import template
from plumsms_local.template import TEMPLATE

from . import cfn
from .conftest import ACCOUNT, BUILD_DIR, REFUSED_NUMBER, REGION, SMS_NUMBER, STACK, Stack
from .lambda_host import wait_until
from .test_routes import FAR


def _reconciler_checks_everything_now(stack: Stack) -> None:
    definition = stack.definitions["ReconcilerFunction"]
    stack.host.recycle("ReconcilerFunction")
    stack.host.add(stack.spec(definition, RECONCILE_AFTER_MINUTES="0"))


def test_the_reconciler_finds_a_reply_whose_callbacks_were_lost(stack: Stack, phone: str) -> None:
    # GIVEN Plum delivers a customer's SMS, sends the bundle's XML reply, and every status
    # callback of that reply is lost (so the reply has no Plum id in the log)
    sim = stack.simulator.simulator
    sim.set_application_url(SMS_NUMBER, f"{stack.gateway.url}plum/inbound?key={stack.webhook_key}")
    sim.set_faults({"callback_drop_rate": 1.0})
    try:
        sim.phone_sends(phone, SMS_NUMBER, "HOURS")
        assert wait_until(lambda: any(m["type"] != "inbound" for m in stack.messages(number=phone)))
        reply = next(m for m in stack.messages(number=phone) if m["type"] != "inbound")
        assert reply["sms_message_id"] is None
        # WHEN the reconciler runs THEN it finds the reply in the conversation at Plum,
        # checks no other message claims that Plum id (a Query of ByPlumId: inside its
        # IAM policy), and records the status.
        _reconciler_checks_everything_now(stack)
        run = stack.scheduled("ReconcilerFunction")
    finally:
        sim.set_faults({"callback_drop_rate": 0.0})
    assert run.error is None, run.error
    assert run.result["errors"] == 0 and run.result["without_plum_id"] >= 1, run.result
    queried = {r for c in run.calls for a, r in c["authorizations"] if a == "dynamodb:Query"}
    assert any(r.endswith("/index/ByPlumId") for r in queried), queried
    shown = stack.request("GET", f"/messages/{reply['id']}").json()
    assert shown["sms_message_id"]
    assert shown["status"] in {"sent", "delivered"}


def test_a_fresh_deploy_without_plum_credentials_does_not_fail_the_schedule(stack: Stack) -> None:
    # GIVEN the credentials secret as a new stack creates it (empty username)
    secrets = stack.aws("secretsmanager")
    secrets.put_secret_value(
        SecretId=stack.plum_secret, SecretString=json.dumps({"username": "", "password": "x" * 32})
    )
    stack.host.recycle("ScheduledSendFunction")
    try:
        # WHEN the minute tick runs with nothing due THEN Plum's login is not even read
        run = stack.scheduled("ScheduledSendFunction")
        assert run.error is None, run.error
        assert not any("PlumCredentials" in json.dumps(c) for c in run.calls)
    finally:
        secrets.put_secret_value(
            SecretId=stack.plum_secret,
            SecretString=json.dumps(
                {"username": "plum-deployed", "password": "plum-deployed-password"}
            ),
        )
        stack.host.recycle("ScheduledSendFunction")


def test_unconfigured_credentials_with_due_messages_are_a_warning_not_an_error(
    stack: Stack, phone: str
) -> None:
    secrets = stack.aws("secretsmanager")
    secrets.put_secret_value(
        SecretId=stack.plum_secret, SecretString=json.dumps({"username": "", "password": "x" * 32})
    )
    stack.host.recycle("ScheduledSendFunction")
    try:
        created = stack.api(
            "POST", "/messages", {"to": phone, "from": SMS_NUMBER, "body": "due now"}
        ).json()
        stack.invoke_api.wait()
        run = stack.scheduled("ScheduledSendFunction")
        assert run.error is None, run.error
        status = stack.request("GET", f"/messages/{created['id']}").json()["status"]
        assert status == "scheduled"  # kept for when the login is set, not failed
        assert "not configured" in stack.host.logs("ScheduledSendFunction").lower()
    finally:
        secrets.put_secret_value(
            SecretId=stack.plum_secret,
            SecretString=json.dumps(
                {"username": "plum-deployed", "password": "plum-deployed-password"}
            ),
        )
        stack.host.recycle("ScheduledSendFunction")
    stack.scheduled("ScheduledSendFunction")


def test_every_status_change_reaches_the_bus_including_refused_and_cancelled(
    stack: Stack, phone: str
) -> None:
    stack.queue_events(stack.all_queue)
    stack.queue_events(stack.failed_queue)
    # A send Plum refuses ends failed...
    refused = stack.api(
        "POST", "/messages", {"to": REFUSED_NUMBER, "from": SMS_NUMBER, "body": "x"}
    )
    assert refused.status == 201, refused.body
    stack.invoke_api.wait()
    stack.scheduled("ScheduledSendFunction")
    # ...and a cancelled message is a status change too.
    later = stack.api(
        "POST", "/messages", {"to": phone, "from": SMS_NUMBER, "body": "y", "send_at": FAR}
    ).json()
    assert stack.request("DELETE", f"/messages/{later['id']}").status == 200
    events = wait_until(lambda: stack.queue_events(stack.all_queue), timeout=10)
    statuses = {(e["detail"]["message_id"], e["detail"]["status"]) for e in events}
    assert (later["id"], "cancelled") in statuses
    refused_id = refused.json()["id"]
    final = stack.request("GET", f"/messages/{refused_id}").json()["status"]
    assert final == "failed"
    assert (refused_id, "failed") in statuses
    # ...which the template's example rule routes to its queue.
    failed = stack.queue_events(stack.failed_queue)
    assert refused_id in {e["detail"]["message_id"] for e in failed}


def test_a_run_out_of_time_with_messages_due_starts_the_next_run_itself(
    stack: Stack, phone: str
) -> None:
    # GIVEN three sends from one number (1 msg/s), due in two seconds: scheduled, so no
    # send-now invoke; then due
    send_at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="seconds")
    ids = []
    for index in range(3):
        body = {"to": phone, "from": SMS_NUMBER, "body": f"hand-over {index}", "send_at": send_at}
        created = stack.api("POST", "/messages", body)
        assert created.status == 201, created.body
        ids.append(created.json()["id"])
    wait_until(
        lambda: datetime.now(UTC) > datetime.fromisoformat(send_at) + timedelta(seconds=0.5),
        timeout=10,
    )
    before = len(stack.invoke_api.requests)
    # WHEN the schedule's run has 3 s left: its claims stop after about one second
    rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{STACK}-ScheduledSendFunction-schedule"
    run = stack.host.invoke("ScheduledSendFunction", stack.factory.schedule(rule), timeout=3)
    # THEN it sent what its time allowed and invoked the next run (its own function,
    # asynchronously, with the hand-over event), with the grant the template gives it
    assert run.error is None and not run.denied()
    assert 1 <= run.result["counts"]["sent"] < 3, run.result
    assert run.result["counts"]["continued"] == 1, run.result
    [handover] = stack.invoke_api.requests[before:]
    assert handover["type"] == "Event"
    assert handover["payload"]["detail-type"] == "Continue"
    assert stack.invoke_api.names[handover["function"]] == "ScheduledSendFunction"
    # AND the next run, a whole invocation, took the lease (waiting for it if need be,
    # as a hand-over's run does, instead of coalescing) and sent the rest: each once
    [next_run] = [i for i in stack.invoke_api.wait() if i.request_id != run.request_id][-1:]
    assert next_run.error is None
    assert next_run.result["stopped"] is None, next_run.result
    assert next_run.result["counts"].get("continued", 0) == 0
    for message_id in ids:
        status = stack.request("GET", f"/messages/{message_id}").json()["status"]
        assert status in {"queued", "sent", "delivered"}, (message_id, status)


def test_no_trace_carries_the_webhook_key_a_phone_number_or_a_body(
    stack: Stack, phone: str
) -> None:
    body = f"HOURS please {uuid.uuid4().hex[:8]}"
    before = len(stack.xray.datagrams)
    assert stack.inbound(phone, body).status == 200
    stack.api("POST", "/messages", {"to": phone, "from": SMS_NUMBER, "body": body})
    stack.invoke_api.wait()
    wait_until(lambda: len(stack.xray.datagrams) > before + 3)
    sent = b"".join(stack.xray.datagrams[before:]).decode("utf-8", "replace")
    assert "subsegments" in sent or '"name"' in sent  # the tracer did emit segments
    for secret in (stack.webhook_key, phone, phone.lstrip("+"), body, "We are open"):
        assert secret not in sent, f"a trace holds {secret[:6]}..."


def test_logs_carry_the_request_id_as_correlation_id(stack: Stack, phone: str) -> None:
    function, event = stack.factory.form(
        f"/plum/inbound?key={stack.webhook_key}",
        {"sms_message_id": uuid.uuid4().hex, "from": phone, "to": SMS_NUMBER, "body": "hi"},
    )
    request_id = event["requestContext"]["requestId"]
    stack.host.invoke(function, event)
    lines = [
        json.loads(line) for line in stack.host.logs(function).splitlines() if line.startswith("{")
    ]
    ours = [line for line in lines if line.get("correlation_id") == request_id]
    assert ours, "no log line carries the API Gateway request id"


def test_no_log_line_above_debug_holds_a_phone_number_or_body(stack: Stack, phone: str) -> None:
    body = f"secret words {uuid.uuid4().hex[:8]}"
    stack.inbound(phone, body)
    for function in stack.definitions:
        logs = stack.host.logs(function)
        assert phone not in logs and body not in logs and stack.webhook_key not in logs, function


def test_unknown_paths_reaching_a_function_answer_404(stack: Stack) -> None:
    function, event = stack.factory.http("GET", "/messages")
    event["path"] = event["resource"] = "/no/such/route"
    answer = stack.host.invoke(function, event)
    assert answer.result["statusCode"] == 404, answer.result


def test_a_custom_domain_base_path_is_stripped_before_routing(stack: Stack) -> None:
    definition = stack.definitions["MessagesApiFunction"]
    spec = stack.spec(definition, API_BASE_PATH="sms")
    spec.name = "MessagesApiBasePath"
    stack.host.add(spec)
    _, event = stack.factory.http("GET", "/messages?limit=1", base_path="sms")
    assert event["path"] == "/sms/messages"
    answer = stack.host.invoke("MessagesApiBasePath", event)
    assert answer.result["statusCode"] == 200, answer.result


def test_a_wrong_sms_numbers_value_does_not_take_the_webhooks_down(
    stack: Stack, phone: str
) -> None:
    definition = stack.definitions["InboundSmsFunction"]
    spec = stack.spec(definition, SMS_NUMBERS="not-a-number")
    spec.name = "InboundWrongNumbers"
    stack.host.add(spec)
    _, event = stack.factory.form(
        f"/plum/inbound?key={stack.webhook_key}",
        {"sms_message_id": uuid.uuid4().hex, "from": phone, "to": SMS_NUMBER, "body": "hello"},
    )
    answer = stack.host.invoke("InboundWrongNumbers", event)
    assert answer.error is None and answer.result["statusCode"] == 200, answer


@pytest.mark.denies_on_purpose
def test_a_dispatcher_whose_every_claim_fails_raises_an_alarm(stack: Stack, phone: str) -> None:
    # GIVEN a dispatcher that may not write the table (every claim fails)
    definition = stack.definitions["ScheduledSendFunction"]
    spec = stack.spec(definition)
    spec.name = "DispatcherCannotWrite"
    spec.policy = [
        {**s, "Action": [a for a in s["Action"] if a != "dynamodb:UpdateItem"]}
        for s in definition.statements
    ]
    stack.host.add(spec)
    # (due in a second, so no send-now wakes the real dispatcher first)
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    created = stack.api(
        "POST", "/messages", {"to": phone, "from": SMS_NUMBER, "body": "claim me", "send_at": soon}
    )
    assert created.status == 201, created.body
    wait_until(lambda: datetime.now(UTC).isoformat() > soon, timeout=5)
    run = stack.host.invoke(
        "DispatcherCannotWrite", stack.factory.schedule("arn:aws:events:::rule/x")
    )
    # THEN the run finishes (failures counted, not raised) and emits the metric an alarm watches
    assert run.error is None, run.error
    emitted = _metrics(stack.host.logs("DispatcherCannotWrite"))
    assert "DispatchErrors" in emitted, emitted
    alarms = _alarms()
    namespace, dimensions = emitted["DispatchErrors"]
    assert ("DispatchErrors", namespace, dimensions) in alarms


def _metrics(logs: str) -> dict[str, tuple[str, frozenset[tuple[str, str]]]]:
    """Metric name -> (namespace, dimensions) of every EMF line in ``logs``."""
    found = {}
    for line in logs.splitlines():
        if '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            dims = frozenset(
                (d, str(record[d])) for group in directive["Dimensions"] for d in group
            )
            for metric in directive["Metrics"]:
                found[metric["Name"]] = (directive["Namespace"], dims)
    return found


def _alarms() -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    alarms = set()
    for resource in template.load()["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        dims = frozenset(
            (d["Name"], d["Value"])
            for d in props.get("Dimensions", [])
            if isinstance(d["Value"], str)
        )
        alarms.add((props["MetricName"], props["Namespace"], dims))
    return alarms


COUNTED_FAILURES = [
    "DispatchErrors",
    "SendFailures",
    "StatusEventsFailed",
    "HookErrors",
    "SuppressErrors",
    "ReconcileErrors",
]


@pytest.mark.parametrize("metric", COUNTED_FAILURES)
def test_every_counted_failure_has_an_alarm(metric: str) -> None:
    assert any(
        name == metric and ns == "PlumSms" and ("service", "plumsms") in dims
        for name, ns, dims in _alarms()
    )


def test_the_log_level_parameter_takes_effect(stack: Stack, phone: str) -> None:
    # GIVEN the stack deployed with LogLevel=WARN (Lambda passes it as AWS_LAMBDA_LOG_LEVEL)
    deployment = cfn.Deployment(
        stack.deployment.stack_name,
        stack.deployment.region,
        stack.deployment.account,
        {**stack.deployment.parameters, "LogLevel": "WARN"},
        stack.deployment.refs,
        stack.deployment.attributes,
    )
    definition = cfn.functions(TEMPLATE, BUILD_DIR / "template.yaml", deployment)[
        "InboundSmsFunction"
    ]
    spec = stack.spec(definition)
    spec.name = "InboundWarnOnly"
    stack.host.add(spec)
    _, event = stack.factory.form(
        f"/plum/inbound?key={stack.webhook_key}",
        {"sms_message_id": uuid.uuid4().hex, "from": phone, "to": SMS_NUMBER, "body": "x"},
    )
    _, bad = stack.factory.form("/plum/inbound?key=wrong-key-0123456789", {"from": phone})
    assert stack.host.invoke("InboundWarnOnly", event).result["statusCode"] == 200
    assert stack.host.invoke("InboundWarnOnly", bad).result["statusCode"] == 403
    levels = {
        json.loads(line).get("level")
        for line in stack.host.logs("InboundWarnOnly").splitlines()
        if line.startswith('{"level"')
    }
    # THEN the INFO lines (one per request) are gone
    assert levels and "INFO" not in levels, levels
