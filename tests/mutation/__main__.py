"""``python -m tests.mutation [MODULE ...] [--sample N --seed S] [--jobs J]``

Mutation testing of ``plumsms.domain`` and the dispatcher's ``usecases.dispatch.pacing``
and ``usecases.dispatch.recovery`` (every one of them unless modules are named): every
mutant Cosmic Ray makes of each module is run against the unit tests that execute its
lines (all unit tests for code that runs at import), killed past ``--timeout-factor``
times those tests' unmutated duration plus ``--timeout-floor`` seconds. Mutants listed
in ``equivalents.toml`` are not run.

Prints, per module, the mutants killed, survived and equivalent and the score (killed
over non-equivalent); lists the survivors. Exits 1 when a module's score (or, with
``--sample``, the sample's score) falls below ``--threshold`` percent.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tests.mutation.mutants import (
    BEYOND_DOMAIN,
    Equivalent,
    Mutant,
    Site,
    load_equivalents,
    make,
    mutable_modules,
    sites_of,
)
from tests.mutation.runner import (
    ERROR,
    KILLED,
    SURVIVED,
    TIMEOUT,
    UNCOVERED,
    Outcome,
    Runner,
    coverage_map,
    warm_up,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument(
        "modules",
        nargs="*",
        help=f"domain modules or {', '.join(BEYOND_DOMAIN)} (default: all of them)",
    )
    parser.add_argument("--sample", type=int, help="run N mutants drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--threshold", type=float, default=95.0, help="minimum score, percent")
    parser.add_argument("--timeout-factor", type=float, default=3.0)
    parser.add_argument("--timeout-floor", type=float, default=10.0, help="seconds")
    parser.add_argument("--log-dir", type=Path, help="keep each mutant's pytest output here")
    parser.add_argument("--list", action="store_true", help="list the mutants, run none")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every outcome")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    known = mutable_modules()
    modules = args.modules or known
    unknown = sorted(set(modules) - set(known))
    if unknown:
        print(f"no such module: {', '.join(unknown)} (known: {', '.join(known)})")
        return 2
    equivalents = load_equivalents()
    started = time.monotonic()

    sites: list[Site] = []
    annotations: dict[str, int] = {}
    for module in modules:
        found = sites_of(module)
        sites += found.sites
        annotations[module] = found.annotations
    if args.sample is not None:
        random.Random(args.seed).shuffle(sites)

    chosen: list[Mutant] = []
    listed: dict[str, int] = Counter()
    unmakeable: dict[str, int] = Counter()
    used: set[Equivalent] = set()
    for site in sites:
        if args.sample is not None and len(chosen) >= args.sample:
            break
        mutant = make(site)
        if mutant is None:
            unmakeable[site.module] += 1
            continue
        match = next((entry for entry in equivalents if entry.matches(mutant)), None)
        if match is None:
            chosen.append(mutant)
        else:
            listed[mutant.module] += 1
            used.add(match)
    chosen.sort(key=lambda mutant: (mutant.module, mutant.line, mutant.col, mutant.operator))
    stale = []
    if args.sample is None:
        stale = [entry for entry in equivalents if entry.module in modules and entry not in used]
    for module, count in sorted(unmakeable.items()):
        print(f"{module}: Cosmic Ray could not make {count} mutants")

    if args.list:
        for mutant in chosen:
            print(f"{mutant.label}\n    - {mutant.source}\n    + {mutant.mutated}")
        return 0

    warm_up()
    coverage = coverage_map(print)
    print(f"{len(chosen)} mutants to run; coverage measured in {time.monotonic() - started:.0f} s")
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)

    tally: Counter[str] = Counter()

    def progress(outcome: Outcome) -> None:
        tally[outcome.result] += 1
        done = sum(tally.values())
        if done % 50 == 0:
            elapsed = time.monotonic() - started
            print(f"  {done}/{len(chosen)} run in {elapsed:.0f} s: {dict(tally)}", flush=True)
        if args.verbose or outcome.result in (SURVIVED, UNCOVERED, ERROR):
            line = f"  {outcome.result:9} {outcome.seconds:5.1f}s {outcome.mutant.label}"
            if outcome.result != KILLED:
                line += f"\n      - {outcome.mutant.source}\n      + {outcome.mutant.mutated}"
            print(line, flush=True)

    runner = Runner(
        coverage=coverage,
        jobs=args.jobs,
        timeout_factor=args.timeout_factor,
        timeout_floor=args.timeout_floor,
        log_dir=args.log_dir,
        on_outcome=progress,
    )
    outcomes = runner.run(chosen)
    sampled = args.sample is not None
    failing = _report(modules, outcomes, listed, annotations, stale, args.threshold, sampled)
    print(f"done in {time.monotonic() - started:.0f} s")
    return 1 if failing else 0


def _report(
    modules: Sequence[str],
    outcomes: Sequence[Outcome],
    listed: dict[str, int],
    annotations: dict[str, int],
    stale: Sequence[Equivalent],
    threshold: float,
    sampled: bool,
) -> bool:
    """Print the table and the survivors; True when the score is below the threshold."""
    by_module: dict[str, Counter[str]] = {module: Counter() for module in modules}
    for outcome in outcomes:
        by_module[outcome.mutant.module][outcome.result] += 1
    width = max(14, *(len(module) + 2 for module in modules))
    header = (
        f"{'module':{width}}{'killed':>8}{'timeout':>8}{'survived':>9}{'equiv.':>8}{'score':>8}"
    )
    print("\n" + header + ("   (equivalents not run; annotation mutants left out)"))
    failing = False
    total_killed = total_run = 0
    for module in modules:
        counts = by_module[module]
        killed = counts[KILLED] + counts[TIMEOUT] + counts[ERROR]
        survived = counts[SURVIVED] + counts[UNCOVERED]
        run = killed + survived
        total_killed += killed
        total_run += run
        score = 100.0 * killed / run if run else 100.0
        below = not sampled and score < threshold
        failing |= below
        print(
            f"{module:{width}}{killed:>8}{counts[TIMEOUT]:>8}{survived:>9}"
            f"{listed.get(module, 0):>8}"
            f"{score:>7.1f}%{'  < ' + str(threshold) if below else ''}"
            f"{'  (' + str(annotations[module]) + ' annotation)' if annotations[module] else ''}"
        )
    overall = 100.0 * total_killed / total_run if total_run else 100.0
    print(
        f"{'all':{width}}{total_killed:>8}{'':>8}{total_run - total_killed:>9}{'':>8}"
        f"{overall:>7.1f}%"
    )
    if sampled and overall < threshold:
        failing = True
        print(f"sampled score {overall:.1f}% is below {threshold}%")
    survivors = [outcome for outcome in outcomes if outcome.result in (SURVIVED, UNCOVERED)]
    if survivors:
        print("\nsurvivors (kill with a test, or list in tests/mutation/equivalents.toml):")
        for outcome in sorted(survivors, key=lambda o: (o.mutant.module, o.mutant.line)):
            mutant = outcome.mutant
            note = " (no unit test runs this line)" if outcome.result == UNCOVERED else ""
            print(f"  {mutant.label}{note}\n      - {mutant.source}\n      + {mutant.mutated}")
    if stale:
        print("\nequivalents.toml entries that match no mutant any more (review them):")
        for entry in stale:
            print(f"  {entry.module}: {entry.operator}: {entry.source!r} -> {entry.mutated!r}")
    errors = [outcome for outcome in outcomes if outcome.result == ERROR]
    if errors:
        print(f"\n{len(errors)} mutants ended pytest with an internal error (counted as killed)")
    return failing


if __name__ == "__main__":
    sys.exit(main())
