"""Make the mutants of a module with Cosmic Ray's operators, and describe each one."""

from __future__ import annotations

import ast
import difflib
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cosmic_ray.plugins
from cosmic_ray.ast import ast_nodes, get_ast_from_path
from cosmic_ray.mutating import mutate_code

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = PROJECT_ROOT / "layers" / "plumsms" / "python"
DOMAIN_DIR = PACKAGE_ROOT / "plumsms" / "domain"
BEYOND_DOMAIN = (
    "usecases.dispatch.feed",
    "usecases.dispatch.pacing",
    "usecases.dispatch.recovery",
)
"""Pure modules outside ``plumsms.domain`` that can be mutated too (named from ``plumsms``):
the dispatcher's due feed, pacing and recovery, whose unit tests use fakes for every port."""
EQUIVALENTS_FILE = Path(__file__).resolve().parent / "equivalents.toml"


@dataclass(frozen=True)
class Mutant:
    """One mutation of one module: where it is, what it changes, and its code."""

    module: str  # short name, e.g. "segments"
    operator: str  # e.g. "core/ReplaceComparisonOperator_LtE_Eq"
    occurrence: int
    line: int
    col: int
    source: str  # the original line, stripped
    mutated: str  # the mutated line, stripped
    code: str  # the whole mutated module
    in_function_body: bool  # False: runs at import (constants, defaults, decorators)
    end_line: int = 0  # the last line of the mutated code (0: ``line``)

    @property
    def lines(self) -> range:
        """The lines of the mutated code: a condition may span several, and coverage
        records only some of them (never the ``if (`` of a parenthesised one)."""
        return range(self.line, max(self.line, self.end_line) + 1)

    @property
    def qualified_module(self) -> str:
        return qualified_name(self.module)

    @property
    def path(self) -> Path:
        return module_path(self.module)

    @property
    def label(self) -> str:
        short_operator = self.operator.split("/", 1)[-1]
        return f"{self.module}.py:{self.line}:{self.col} {short_operator}"


def qualified_name(module: str) -> str:
    """The import name of ``module`` (a domain module's short name, or a dotted name
    from ``plumsms`` for the others)."""
    return f"plumsms.{module}" if "." in module else f"plumsms.domain.{module}"


def module_path(module: str) -> Path:
    """The source file of ``module``."""
    return PACKAGE_ROOT.joinpath(*qualified_name(module).split(".")).with_suffix(".py")


def mutable_modules() -> list[str]:
    """Every module the harness can mutate: the domain's, then ``BEYOND_DOMAIN``."""
    return domain_modules() + list(BEYOND_DOMAIN)


def domain_modules() -> list[str]:
    """Every domain module that holds code."""
    return sorted(
        path.stem
        for path in DOMAIN_DIR.glob("*.py")
        if path.stem != "__init__" and _has_code(path.read_text(encoding="utf-8"))
    )


def _has_code(source: str) -> bool:
    tree = ast.parse(source)
    return any(not isinstance(node, ast.Expr | ast.Import | ast.ImportFrom) for node in tree.body)


def _operators() -> Iterator[tuple[str, object]]:
    """Cosmic Ray's operators that take no arguments (all of its core ones)."""
    for name in cosmic_ray.plugins.operator_names():
        operator_class = cosmic_ray.plugins.get_operator(name)
        if not operator_class.arguments():
            yield name, operator_class()


Span = tuple[tuple[int, int], tuple[int, int]]


def _span(node: ast.AST) -> Span:
    return (
        (node.lineno, node.col_offset),  # type: ignore[attr-defined]
        (node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
    )


def _inside(position: tuple[int, int], spans: list[Span]) -> bool:
    return any(start <= position < end for start, end in spans)


def _annotation_spans(tree: ast.Module) -> list[Span]:
    """Annotations Python never evaluates under ``from __future__ import annotations``:
    those of functions and of variables outside class bodies. Class-body annotations are
    kept: pydantic and dataclasses read them."""
    spans: list[Span] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            every += [arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]
            spans += [_span(arg.annotation) for arg in every if arg.annotation is not None]
            if node.returns is not None:
                spans.append(_span(node.returns))
    class_level = {
        id(statement)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for statement in node.body
    }
    spans += [
        _span(node.annotation)
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign) and id(node) not in class_level
    ]
    return spans


def _function_body_spans(tree: ast.Module) -> list[Span]:
    """Code that runs only when its function is called (not at import)."""
    spans: list[Span] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            spans.append(((node.body[0].lineno, 0), _span(node.body[-1])[1]))
    return spans


def _future_annotations(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )


@dataclass(frozen=True)
class Site:
    """Where one operator can mutate a module; ``make`` turns it into a mutant."""

    module: str
    operator: str
    occurrence: int
    line: int
    col: int
    in_function_body: bool
    end_line: int = 0


@dataclass
class ModuleSites:
    """The sites of one module, less those in annotations Python never evaluates."""

    module: str
    sites: list[Site]
    annotations: int


def sites_of(module: str) -> ModuleSites:
    """Every place Cosmic Ray's operators mutate ``plumsms.domain.<module>``, less those
    that only change an annotation Python never evaluates (cheap: no mutant is made)."""
    path = module_path(module)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    unevaluated = _annotation_spans(tree) if _future_annotations(tree) else []
    bodies = _function_body_spans(tree)
    parso_tree = get_ast_from_path(path)
    sites: list[Site] = []
    skipped = 0
    for operator_name, operator in _operators():
        positions = [
            (start, end)
            for node in ast_nodes(parso_tree)
            for start, end in operator.mutation_positions(node)  # type: ignore[attr-defined]
        ]
        for occurrence, (start, end) in enumerate(positions):
            if _inside(start, unevaluated):
                skipped += 1
                continue
            sites.append(
                Site(
                    module=module,
                    operator=operator_name,
                    occurrence=occurrence,
                    line=start[0],
                    col=start[1],
                    in_function_body=_inside(start, bodies),
                    end_line=end[0],
                )
            )
    sites.sort(key=lambda site: (site.line, site.col, site.operator))
    return ModuleSites(module=module, sites=sites, annotations=skipped)


def make(site: Site) -> Mutant | None:
    """The mutant at ``site``; None when Cosmic Ray cannot make it (its ExceptionReplacer
    fails on ``except (A, B) as e:``)."""
    path = module_path(site.module)
    original = path.read_text(encoding="utf-8")
    operator = cosmic_ray.plugins.get_operator(site.operator)()
    try:
        code = mutate_code(original, operator, site.occurrence)
    except Exception:
        return None
    if code is None:
        return None
    source, mutated = _changed_line(original.splitlines(), code.splitlines(), site.line)
    return Mutant(
        module=site.module,
        operator=site.operator,
        occurrence=site.occurrence,
        line=site.line,
        col=site.col,
        source=source,
        mutated=mutated,
        code=code,
        in_function_body=site.in_function_body,
        end_line=site.end_line,
    )


def _changed_line(original: list[str], mutated: list[str], line: int) -> tuple[str, str]:
    """The mutated line before, and what replaced it (lines joined by " / ")."""
    before = original[line - 1].strip() if line - 1 < len(original) else ""
    matcher = difflib.SequenceMatcher(a=original, b=mutated, autojunk=False)
    for tag, _a_start, _a_end, b_start, b_end in matcher.get_opcodes():
        if tag != "equal":
            after = " / ".join(text.strip() for text in mutated[b_start:b_end] if text.strip())
            return before, after
    return before, before


@dataclass(frozen=True)
class Equivalent:
    """A reviewed mutant that no test can kill, and why."""

    module: str
    operator: str
    source: str
    mutated: str
    reason: str
    line: int | None = None

    def matches(self, mutant: Mutant) -> bool:
        return (
            self.module == mutant.module
            and self.operator.split("/", 1)[-1] == mutant.operator.split("/", 1)[-1]
            and self.source == mutant.source
            and self.mutated == mutant.mutated
            and (self.line is None or self.line == mutant.line)
        )


def load_equivalents(path: Path = EQUIVALENTS_FILE) -> list[Equivalent]:
    """The reviewed list; each entry must give its reason."""
    if not path.exists():
        return []
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    entries = []
    for number, entry in enumerate(document.get("equivalent", []), start=1):
        missing = {"module", "operator", "source", "mutated", "reason"} - entry.keys()
        if missing:
            raise ValueError(f"{path.name}: entry {number} lacks {', '.join(sorted(missing))}")
        if not str(entry["reason"]).strip():
            raise ValueError(f"{path.name}: entry {number} gives no reason")
        entries.append(
            Equivalent(
                module=entry["module"],
                operator=entry["operator"],
                source=entry["source"],
                mutated=entry["mutated"],
                reason=entry["reason"],
                line=entry.get("line"),
            )
        )
    return entries
