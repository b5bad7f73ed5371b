"""The mutation harness (python -m tests.mutation): its equivalents list and its mutants."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutation.mutants import (
    DOMAIN_DIR,
    Equivalent,
    Site,
    load_equivalents,
    make,
    mutable_modules,
    sites_of,
)
from tests.mutation.runner import CoverageMap


def _sites_on_line(sites: list[Site], text: str) -> list[Site]:
    lines = (DOMAIN_DIR / "pci.py").read_text(encoding="utf-8").splitlines()
    return [site for site in sites if lines[site.line - 1].strip() == text]


def test_every_reviewed_equivalent_names_a_domain_module_and_gives_a_reason() -> None:
    entries = load_equivalents()
    assert entries
    modules = set(mutable_modules())
    for entry in entries:
        assert entry.module in modules
        assert entry.operator.startswith("core/")
        assert len(entry.reason) > 20


def test_an_entry_without_a_reason_is_refused(tmp_path: Path) -> None:
    listed = tmp_path / "equivalents.toml"
    listed.write_text(
        '[[equivalent]]\nmodule = "pci"\noperator = "core/X"\nsource = "a"\nmutated = "b"\n'
        'reason = " "\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="gives no reason"):
        load_equivalents(listed)


def test_mutants_describe_their_change_and_skip_signature_annotations() -> None:
    found = sites_of("pci")
    assert found.annotations > 0  # e.g. "-> bool" is never evaluated
    limit = [m for m in map(make, _sites_on_line(found.sites, "MAX_DIGITS = 19")) if m]
    assert {m.mutated for m in limit} == {"MAX_DIGITS = 20", "MAX_DIGITS = 18"}
    assert not any(m.in_function_body for m in limit)
    assert all("MAX_DIGITS = 19" not in m.code for m in limit)


def test_an_entry_matches_by_text_and_optionally_by_line() -> None:
    mutant = next(
        m for m in map(make, _sites_on_line(sites_of("pci").sites, "MAX_DIGITS = 19")) if m
    )
    entry = Equivalent("pci", mutant.operator, mutant.source, mutant.mutated, "reason")
    assert entry.matches(mutant)
    assert Equivalent(
        "pci", mutant.operator, mutant.source, mutant.mutated, "reason", mutant.line
    ).matches(mutant)
    assert not Equivalent(
        "pci", mutant.operator, mutant.source, mutant.mutated, "reason", mutant.line + 1
    ).matches(mutant)


def test_the_dispatchers_pacing_and_recovery_can_be_mutated() -> None:
    # GIVEN the dispatcher's pacing module, named from plumsms
    found = sites_of("usecases.dispatch.pacing")
    mutant = next(m for m in map(make, found.sites) if m is not None)
    # THEN its mutants stand for that module, and recovery is known too
    assert mutant.qualified_module == "plumsms.usecases.dispatch.pacing"
    assert mutant.path.name == "pacing.py" and mutant.path.parent.name == "dispatch"
    assert "usecases.dispatch.recovery" in mutable_modules()


def test_a_condition_over_several_lines_is_run_against_the_tests_of_any_of_its_lines() -> None:
    # GIVEN recovery's content match, a parenthesised condition from "if (" to ")", whose
    # first line coverage never records
    found = sites_of("usecases.dispatch.recovery")
    mutant = next(
        m
        for m in map(make, found.sites)
        if m is not None and m.source == "if (" and m.operator == "core/AddNot"
    )
    assert len(mutant.lines) > 2
    coverage = CoverageMap(
        lines={mutant.module: {mutant.line + 1: ["t::a", "t::b"], mutant.lines[-1]: ["t::a"]}},
        durations={},
    )
    # THEN the tests of its other lines run it
    assert coverage.tests_for(mutant) == ["t::a", "t::b"]
