"""What CloudFormation is asked to create: the template after SAM's own transform."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from functools import cache
from typing import Any

import pytest

from plumsms_local import template
from plumsms_local.template import PROJECT_ROOT, TEMPLATE

from .conftest import SAM

TRANSFORM = PROJECT_ROOT / "tests" / "deployed" / "runtime" / "sam_transform.py"
LAMBDA_LOG_LEVELS = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}


@cache
def transformed() -> dict[str, Any]:
    """SAM's transform of template.yaml, by the SAM library the tools venv pins."""
    python = SAM.parent / "python"
    out = subprocess.run(
        [str(python), str(TRANSFORM), str(TEMPLATE)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def _of_type(kind: str) -> dict[str, Any]:
    return {k: v for k, v in transformed()["Resources"].items() if v["Type"] == kind}


def test_one_stage_only() -> None:
    # Without an explicit OpenApiVersion SAM adds a second stage named "Stage", unthrottled.
    stages = _of_type("AWS::ApiGateway::Stage")
    assert len(stages) == 1
    (stage,) = stages.values()
    assert stage["Properties"]["MethodSettings"][0]["ThrottlingRateLimit"] > 0


def test_iam_routes_need_execute_api_only() -> None:
    # InvokeRole NONE: API Gateway invokes with its own permission, not the caller's, so a
    # principal with only execute-api:Invoke can use the API.
    (api,) = _of_type("AWS::ApiGateway::RestApi").values()
    iam_methods = 0
    for path, methods in api["Properties"]["Body"]["paths"].items():
        for method, spec in methods.items():
            integration = spec["x-amazon-apigateway-integration"]
            assert "credentials" not in integration, (path, method)
            if {"AWS_IAM": []} in spec.get("security", []):
                iam_methods += 1
    assert iam_methods >= 8


def test_access_logs_without_the_query_string() -> None:
    (stage,) = _of_type("AWS::ApiGateway::Stage").values()
    setting = stage["Properties"]["AccessLogSetting"]
    assert "$context.requestId" in setting["Format"]
    # The webhook key travels in the query string: nothing that carries it is logged.
    assert "$context.path" not in setting["Format"]
    assert "querystring" not in setting["Format"].lower()
    (api,) = [
        v for v in transformed()["Resources"].values() if v["Type"] == "AWS::ApiGateway::RestApi"
    ]
    assert api.get("DependsOn") == "ApiGatewayAccount"


def test_both_secrets_outlive_the_stack_and_updates() -> None:
    resources = template.load()["Resources"]
    for name in ("WebhookKeySecret", "PlumCredentialsSecret"):
        assert resources[name]["DeletionPolicy"] == "Retain"
        assert resources[name]["UpdateReplacePolicy"] == "Retain"
    # A literal value would be written again by every update that touches the secret.
    assert "SecretString" not in resources["PlumCredentialsSecret"]["Properties"]


def test_cloudwatch_may_publish_to_the_encrypted_alarm_topic() -> None:
    resources = template.load()["Resources"]
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    statements = resources["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [
        s for s in statements if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])
    alarms = _of_type("AWS::CloudWatch::Alarm")
    assert alarms and all(
        a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms.values()
    )


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("", True),
        ("+12435678910", True),
        ("+12435678910,+447700900123", True),
        ("12435678910", False),
        ("+1 243 567 8910", False),
        ("+12435678910, +12435678911", False),
        ("+12435678910;+12435678911", False),
    ],
)
def test_sms_numbers_are_checked_at_deploy_time(value: str, valid: bool) -> None:
    pattern = template.load()["Parameters"]["SmsNumbers"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is valid


def test_the_reconciler_has_a_failure_destination() -> None:
    resources = transformed()["Resources"]
    config = resources["ReconcilerFunctionEventInvokeConfig"]["Properties"]
    assert config["DestinationConfig"]["OnFailure"]["Destination"]
    rule = resources["ReconcilerFunctionReconcile"]["Properties"]
    assert rule["Targets"][0]["DeadLetterConfig"]["Arn"]


def test_log_level_is_applied_by_lambda() -> None:
    parameter = template.load()["Parameters"]["LogLevel"]
    assert set(parameter["AllowedValues"]) <= LAMBDA_LOG_LEVELS
    for function in _of_type("AWS::Lambda::Function").values():
        logging = function["Properties"]["LoggingConfig"]
        assert logging["ApplicationLogLevel"] == {"Ref": "LogLevel"}
        assert logging["LogFormat"] == "JSON"


def test_build_and_deploy_read_one_architecture() -> None:
    config = tomllib.loads((PROJECT_ROOT / "samconfig.toml").read_text())
    overrides = config["default"]["global"]["parameters"]["parameter_overrides"]
    arch = re.search(r"Architecture=(\w+)", overrides)
    assert arch, "samconfig.toml's global parameter_overrides must name the Architecture"
    for command in ("build", "deploy"):
        section = config["default"].get(command, {}).get("parameters", {})
        assert "parameter_overrides" not in section, f"{command} must not override it again"
    built = subprocess.run(
        ["python3", str(PROJECT_ROOT / "layers/plumsms/build_arch.py"), str(PROJECT_ROOT)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert built == arch.group(1)
    assert template.load()["Parameters"]["Architecture"]["Default"] == arch.group(1)
