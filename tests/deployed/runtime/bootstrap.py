"""A stand-in for the Lambda python3.13 runtime, run in a fresh interpreter per environment.

Started as ``python3.13 -I -S bootstrap.py`` (no site-packages, no PYTHONPATH), it does
what the Lambda runtime does and nothing kinder:

- ``sys.path`` is the function's directory, the layer's ``python/`` directory and a
  directory holding only the runtime's boto3/botocore, then the standard library;
- the handler module is imported once (the Init phase), then one event at a time is
  passed to ``lambda_handler(event, context)``;
- the per-invocation trace header is set in ``_X_AMZN_TRACE_ID`` as Lambda sets it.

It also does what AWS does at the edge of the function: every AWS API call is recorded
(botocore's ``before-parameter-build`` event) and checked against the function's IAM
policy; a call the policy does not allow fails with ``AccessDeniedException``.

Protocol: requests and answers are JSON lines on two pipes whose descriptors are given
in ``EMULATOR_FDS`` (``read,write``); the function's own stdout/stderr are its logs.
Nothing here imports the project's code: it runs beside the artifacts, not the sources.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

ARGS: dict[str, Any] = json.loads(os.environ.pop("EMULATOR_CONFIG"))


def _set_path() -> None:
    stdlib = [p for p in sys.path if p and "site-packages" not in p and p != ARGS["script_dir"]]
    sys.path[:] = [ARGS["task_root"], ARGS["layer_dir"], ARGS["runtime_dir"], *stdlib]


class _Policy:
    """Allow statements of one function's role, evaluated the way IAM does for Allow."""

    def __init__(self, statements: list[dict[str, Any]]) -> None:
        self.statements = statements

    def allows(self, action: str, resource: str) -> bool:
        for statement in self.statements:
            if statement.get("Effect") != "Allow":
                continue
            actions = statement["Action"]
            resources = statement["Resource"]
            actions = [actions] if isinstance(actions, str) else actions
            resources = [resources] if isinstance(resources, str) else resources
            if any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions) and any(
                fnmatch.fnmatchcase(resource, r) for r in resources
            ):
                return True
        return False


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


# API operations whose IAM action has another name.
_ACTION_NAMES = {"Invoke": "InvokeFunction"}


def _authorizations(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The (action, resource ARN) pairs IAM checks for one call (the shapes this bundle uses).

    DynamoDB transactions have no IAM action of their own: each item is authorised as the
    PutItem, UpdateItem, DeleteItem, ConditionCheckItem or GetItem it performs.
    """
    region, account = ARGS["region"], ARGS["account"]
    action = f"{service}:{_ACTION_NAMES.get(operation, operation)}"
    if service == "dynamodb":
        prefix = f"arn:aws:dynamodb:{region}:{account}:table/"
        if "RequestItems" in params:
            return [(action, prefix + name) for name in params["RequestItems"]]
        if "TransactItems" in params:
            return [
                (f"dynamodb:{_TRANSACT_ACTIONS[kind]}", prefix + body["TableName"])
                for item in params["TransactItems"]
                for kind, body in item.items()
            ]
        arn = prefix + params["TableName"]
        return [(action, arn + f"/index/{params['IndexName']}" if params.get("IndexName") else arn)]
    if service == "secretsmanager":
        secret = params["SecretId"]
        if not secret.startswith("arn:"):
            secret = f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}-??????"
        return [(action, secret)]
    if service == "ssm":
        name = params["Name"]
        slash = "" if name.startswith("/") else "/"
        return [(action, f"arn:aws:ssm:{region}:{account}:parameter{slash}{name}")]
    if service == "events":
        buses = {entry.get("EventBusName") or "default" for entry in params.get("Entries", [])}
        return [
            (
                action,
                bus
                if bus.startswith("arn:")
                else f"arn:aws:events:{region}:{account}:event-bus/{bus}",
            )
            for bus in sorted(buses)
        ]
    if service == "lambda":
        name = params["FunctionName"]
        if not name.startswith("arn:"):
            name = f"arn:aws:lambda:{region}:{account}:function:{name}"
        return [(action, name)]
    return [(action, f"unknown:{service}:{operation}")]


def _install_recorder(calls: list[dict[str, Any]]) -> None:
    # Imported only now: sys.path holds the runtime's botocore from this point on.
    import botocore.session  # noqa: PLC0415
    from botocore.exceptions import ClientError  # noqa: PLC0415

    policy = _Policy(ARGS["policy"])

    def check(params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        pairs = _authorizations(service, model.name, params)
        denied = [[a, r] for a, r in pairs if not policy.allows(a, r)]
        calls.append(
            {"operation": f"{service}:{model.name}", "authorizations": pairs, "denied": denied}
        )
        if denied:
            action, resource = denied[0]
            raise ClientError(
                {
                    "Error": {
                        "Code": "AccessDeniedException",
                        "Message": f"not authorized to perform: {action} on resource: {resource}",
                    }
                },
                model.name,
            )

    original_init = botocore.session.Session.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.register("before-parameter-build", check)

    botocore.session.Session.__init__ = init  # type: ignore[method-assign]


class _Context:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.invoked_function_arn = spec["arn"]
        self.aws_request_id = spec["request_id"]
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "emulated"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + spec["timeout"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(exc: BaseException, kind: str) -> dict[str, Any]:
    return {
        "errorType": kind or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def main() -> None:
    _set_path()
    calls: list[dict[str, Any]] = []
    _install_recorder(calls)
    read_fd, write_fd = (int(fd) for fd in os.environ.pop("EMULATOR_FDS").split(","))
    requests = os.fdopen(read_fd, "r", encoding="utf-8")
    answers = os.fdopen(write_fd, "w", encoding="utf-8")

    def answer(payload: dict[str, Any]) -> None:
        payload["calls"] = calls[:]
        calls.clear()
        answers.write(json.dumps(payload, default=str) + "\n")
        answers.flush()

    module_name, function_name = ARGS["handler"].rsplit(".", 1)
    started = time.perf_counter()
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:
        kind = "Runtime.ImportModuleError" if isinstance(exc, ImportError) else "Runtime.Unknown"
        answer({"init_ms": (time.perf_counter() - started) * 1000, "error": _error(exc, kind)})
        return
    origins = {
        name: getattr(sys.modules.get(name), "__file__", None)
        for name in ("plumsms", "boto3", "botocore", "urllib3", "pydantic", "lxml", "yaml")
    }
    answer({"init_ms": (time.perf_counter() - started) * 1000, "modules": origins})

    for line in requests:
        request = json.loads(line)
        os.environ["_X_AMZN_TRACE_ID"] = request["trace_id"]
        started = time.perf_counter()
        try:
            result = handler(request["event"], _Context(request["context"]))
            payload: dict[str, Any] = {"result": result}
        except Exception as exc:
            payload = {"error": _error(exc, "")}
        payload["duration_ms"] = (time.perf_counter() - started) * 1000
        sys.stdout.flush()
        sys.stderr.flush()
        answer(payload)


if __name__ == "__main__":
    main()
