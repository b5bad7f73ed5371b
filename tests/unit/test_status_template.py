"""template.yaml's delivery-status resources: routes, schedule, bus, example rule, policies."""

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


def test_result_url_route_has_no_iam_auth_and_the_documented_handler() -> None:
    [route] = [r for r in template.routes() if r.path == "/plum/status"]
    assert (route.method, route.function, route.authorized) == ("POST", "ResultUrlFunction", False)
    assert route.handler_file == PROJECT_ROOT / "functions" / "result_url" / "app.py"
    assert route.handler_file.exists()


def test_reconciler_runs_on_a_schedule(resources: dict[str, Any]) -> None:
    props = resources["ReconcilerFunction"]["Properties"]
    [schedule] = [e for e in props["Events"].values() if e["Type"] == "Schedule"]
    assert schedule["Properties"]["Schedule"].startswith("rate(")
    assert props["Environment"]["Variables"]["RECONCILE_AFTER_MINUTES"] == {
        "Ref": "ReconcileAfterMinutes"
    }
    assert (PROJECT_ROOT / props["CodeUri"] / "app.py").exists()


def test_bus_and_example_rule_off_by_default(resources: dict[str, Any]) -> None:
    assert resources["StatusEventBus"]["Type"] == "AWS::Events::EventBus"
    rule = resources["FailedSmsExampleRule"]["Properties"]
    assert rule["State"] == "DISABLED"
    assert rule["EventBusName"] == {"Ref": "StatusEventBus"}
    assert rule["EventPattern"]["source"] == ["plumsms"]
    assert rule["EventPattern"]["detail-type"] == ["SMS Status Changed"]
    for name in ("ResultUrlFunction", "ReconcilerFunction"):
        env = resources[name]["Properties"]["Environment"]["Variables"]
        assert env["EVENT_BUS_NAME"] == {"Ref": "StatusEventBus"}


@pytest.mark.parametrize(
    ("function", "allowed"),
    [
        (
            "ResultUrlFunction",
            {
                "dynamodb:GetItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
                "events:PutEvents",
                "secretsmanager:GetSecretValue",
            },
        ),
        (
            "ReconcilerFunction",
            {
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
                "events:PutEvents",
                "secretsmanager:GetSecretValue",
            },
        ),
    ],
)
def test_least_privilege(resources: dict[str, Any], function: str, allowed: set[str]) -> None:
    resource = resources[function]
    assert actions(resource) == allowed
    text = json.dumps(statements(resource))
    assert '"*"' not in text and "dynamodb:*" not in text
    queried = [s["Resource"] for s in statements(resource) if "dynamodb:Query" in s["Action"]]
    assert all("/index/By" in str(r) for r in queried)


def test_every_status_function_has_a_log_group(resources: dict[str, Any]) -> None:
    groups = {
        json.dumps(r["Properties"].get("LogGroupName"))
        for r in resources.values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    for name in ("ResultUrlFunction", "ReconcilerFunction"):
        assert any(name in group for group in groups)
