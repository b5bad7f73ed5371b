"""Least privilege, proven from the calls the tier recorded (this module runs last).

Every call each function made was checked against its policy as it happened (a denied
call fails its test); here every grant is checked the other way: a grant no recorded call
needed is reported, and fails unless it is listed below with the path that needs it.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from .conftest import Stack

# Grants the tier cannot exercise, with why they are needed. Keep this short.
EXPECTED_UNUSED: dict[tuple[str, str], str] = {
    ("ReconcilerFunction", "dynamodb:DeleteItem"): (
        "attach_orphans drops the orphan row of callbacks that beat Plum's queue answer "
        "(a race; tests/functional/test_reconciler.py covers it)"
    ),
    ("ResultUrlFunction", "dynamodb:GetItem"): (
        "re-reading a message after losing a write race to another callback "
        "(tests/functional/test_result_url.py covers it)"
    ),
    ("ScheduledSendFunction", "dynamodb:Query"): (
        "ByPlumId: recovering a claim whose run died after Plum accepted the send "
        "(tests/functional/test_dispatcher.py covers it)"
    ),
}


def _grants(statements: list[dict[str, Any]]) -> list[tuple[str, str]]:
    grants = []
    for statement in statements:
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            for resource in [resources] if isinstance(resources, str) else resources:
                grants.append((action, resource))
    return grants


def unused_grants(stack: Stack) -> dict[str, list[tuple[str, str]]]:
    """Function -> grants no recorded call needed."""
    report: dict[str, list[tuple[str, str]]] = {}
    for name, definition in stack.definitions.items():
        used = [
            tuple(pair)
            for call in stack.host.calls.get(name, [])
            for pair in call["authorizations"]
        ]
        unused = [
            (action, resource)
            for action, resource in _grants(definition.statements)
            if not any(
                fnmatch.fnmatchcase(a.lower(), action.lower()) and fnmatch.fnmatchcase(r, resource)
                for a, r in used
            )
        ]
        report[name] = unused
    return report


def _short(resource: str) -> str:
    return (
        resource.rsplit(":", 1)[-1].split("/", 1)[-1]
        if "table/" not in resource
        else resource.split("table/", 1)[1].split("/", 1)[-1]
    )


def test_every_grant_is_needed_by_a_recorded_call(stack: Stack) -> None:
    if sum(len(c) for c in stack.host.calls.values()) < 50:
        pytest.fail("run the whole tests/deployed tier: this check reads what it recorded")
    for name in stack.definitions:
        used = sorted(
            {tuple(p) for c in stack.host.calls.get(name, []) for p in c["authorizations"]}
        )
        for action, resource in used:
            print(f"used: {name}: {action} on {resource}")
    report = unused_grants(stack)
    unexpected = {}
    for function, grants in report.items():
        for action, resource in grants:
            print(f"unused grant: {function}: {action} on {resource}")
            if (function, action) not in EXPECTED_UNUSED:
                unexpected.setdefault(function, []).append((action, _short(resource)))
    assert not unexpected, f"grants no call needs (remove them from template.yaml): {unexpected}"
