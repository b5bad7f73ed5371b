"""The functions' cold start: the collector held off while a module wires itself."""

from __future__ import annotations

import ast
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from plumsms import coldstart

FUNCTIONS = sorted((Path(__file__).resolve().parents[2] / "functions").glob("*/app.py"))


@pytest.fixture
def frozen_before() -> Iterator[int]:
    """The freeze count before the test (a function module imported by an earlier test
    froze its own objects); the collector as it was, after."""
    enabled = gc.isenabled()
    yield gc.get_freeze_count()
    if enabled:
        gc.enable()


def test_begin_holds_the_collector_and_wired_freezes_what_was_built(frozen_before: int) -> None:
    coldstart.begin()
    assert not gc.isenabled()
    built = [object() for _ in range(10)]
    coldstart.wired()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(built)


def _module_statements(path: Path) -> list[ast.stmt]:
    body = ast.parse(path.read_text()).body
    # The docstring and ``from __future__`` come first in every module.
    return [
        s
        for s in body
        if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        and not (isinstance(s, ast.ImportFrom) and s.module == "__future__")
    ]


def _calls(statement: ast.stmt, name: str) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Call)
        and ast.unparse(statement.value.func) == f"coldstart.{name}"
    )


@pytest.mark.parametrize("path", FUNCTIONS, ids=lambda p: p.parent.name)
def test_every_function_begins_before_its_imports_and_ends_wired(path: Path) -> None:
    statements = _module_statements(path)
    assert ast.unparse(statements[0]) == "from plumsms import coldstart"
    assert _calls(statements[1], "begin"), "coldstart.begin() comes before any other import"
    wired = [i for i, s in enumerate(statements) if _calls(s, "wired")]
    assert len(wired) == 1, "coldstart.wired() once, at module level"
    # Every import and the wiring come before it; only the handler's definitions after.
    after = statements[wired[0] + 1 :]
    assert not any(isinstance(s, ast.Import | ast.ImportFrom) for s in after)


def test_there_are_functions_to_check() -> None:
    assert len(FUNCTIONS) == 5
