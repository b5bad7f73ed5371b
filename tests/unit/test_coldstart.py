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
    else:
        gc.disable()


def test_wiring_holds_the_collector_and_freezes_what_it_built(frozen_before: int) -> None:
    with coldstart.wiring():
        assert not gc.isenabled()
        built = [[] for _ in range(10)]  # containers: what the collector tracks
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(built)


def test_a_failed_wiring_turns_the_collector_back_on_and_freezes_nothing(
    frozen_before: int,
) -> None:
    alive = [[] for _ in range(1000)]  # containers: what the collector tracks
    with pytest.raises(RuntimeError, match="bad setting"), coldstart.wiring():
        raise RuntimeError("bad setting")
    assert gc.isenabled()
    # Frozen objects that die leave the count, so it may fall; a freeze would have added
    # every live object (those above among them).
    assert gc.get_freeze_count() < frozen_before + len(alive)


def _module_statements(path: Path) -> list[ast.stmt]:
    body = ast.parse(path.read_text()).body
    return [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]


@pytest.mark.parametrize("path", FUNCTIONS, ids=lambda p: p.parent.name)
def test_every_function_imports_and_wires_inside_the_block(path: Path) -> None:
    first, block, *after = _module_statements(path)
    assert ast.unparse(first) == "from plumsms import coldstart"
    assert isinstance(block, ast.With)
    assert ast.unparse(block.items[0].context_expr) == "coldstart.wiring()"
    # Every other import and the wiring inside it; after it, only the handler's export.
    assert all(isinstance(s, ast.Import | ast.ImportFrom) for s in block.body[:1])
    assert [ast.unparse(s) for s in after] == ["lambda_handler = function.handler"]


def test_there_are_functions_to_check() -> None:
    assert len(FUNCTIONS) == 5
