"""template.yaml's sending resources: the dispatcher, its schedule, DLQ and policies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from plumsms_local import template
from plumsms_local.template import PROJECT_ROOT


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(template.load()["Resources"])


def statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in resource["Properties"]["Policies"] for s in policy["Statement"]]


def actions(resource: dict[str, Any]) -> set[str]:
    return {a for s in statements(resource) for a in s["Action"]}


def test_the_dispatcher_runs_every_minute_with_retries_and_a_dead_letter_queue(
    resources: dict[str, Any],
) -> None:
    props = resources["ScheduledSendFunction"]["Properties"]
    assert props["Handler"] == "app.lambda_handler"
    assert (PROJECT_ROOT / props["CodeUri"] / "app.py").exists()
    schedule = props["Events"]["EveryMinute"]
    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["Schedule"] == "rate(1 minute)"
    assert schedule["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    dlq = {"Fn::GetAtt": "ScheduledSendDeadLetterQueue.Arn"}
    assert schedule["Properties"]["DeadLetterConfig"]["Arn"] == dlq
    assert props["DeadLetterQueue"]["TargetArn"] == dlq
    assert resources["ScheduledSendDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    policy = resources["ScheduledSendDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
    [grant] = policy["Statement"]
    assert grant["Principal"] == {"Service": "events.amazonaws.com"}
    assert "ScheduledSendFunctionEveryMinute" in json.dumps(grant["Condition"])


def test_the_dispatcher_may_do_only_what_it_does(resources: dict[str, Any]) -> None:
    dispatcher = resources["ScheduledSendFunction"]
    assert actions(dispatcher) == {
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "secretsmanager:GetSecretValue",
        "ssm:GetParameter",
        "events:PutEvents",
    }
    assert "dynamodb:Scan" not in actions(dispatcher)
    [query] = [s for s in statements(dispatcher) if s["Action"] == ["dynamodb:Query"]]
    indexes = {json.dumps(r).split("/index/")[1].rstrip('"}') for r in query["Resource"]}
    assert indexes == {"Due", "ByStatus", "ByPlumId", "ByCustomer"}
    variables = dispatcher["Properties"]["Environment"]["Variables"]
    assert variables["PLUM_CREDENTIALS_SECRET"] == {"Ref": "PlumCredentialsSecret"}
    assert variables["SEND_RATE_PER_SECOND"] == {"Ref": "SendRatePerSecond"}
    assert variables["SEND_CONCURRENCY"] == {"Ref": "SendConcurrency"}


def test_the_api_can_wake_the_dispatcher_and_only_it(resources: dict[str, Any]) -> None:
    api = resources["MessagesApiFunction"]
    [invoke] = [s for s in statements(api) if s["Action"] == ["lambda:InvokeFunction"]]
    assert invoke["Resource"] == {"Fn::GetAtt": "ScheduledSendFunction.Arn"}
    variables = api["Properties"]["Environment"]["Variables"]
    assert variables["SCHEDULED_SEND_FUNCTION"] == {"Ref": "ScheduledSendFunction"}


def test_stop_may_suppress_pending_sends(resources: dict[str, Any]) -> None:
    inbound = resources["InboundSmsFunction"]
    assert "dynamodb:UpdateItem" in actions(inbound)
    [query] = [s for s in statements(inbound) if s["Action"] == ["dynamodb:Query"]]
    assert "index/ByCustomer" in json.dumps(query["Resource"])


def test_the_send_routes_are_iam_authorised() -> None:
    routes = {(r.method, r.path): r for r in template.routes()}
    for key in [("POST", "/messages"), ("DELETE", "/messages/{id}"), ("PATCH", "/messages/{id}")]:
        assert routes[key].function == "MessagesApiFunction"
        assert routes[key].authorized
