"""Mutation testing of the pure domain: ``python -m tests.mutation --help``.

Cosmic Ray's operators make the mutants; this package runs each one against the unit
tests that execute the mutated line (the whole unit suite for code that runs at import),
in a forked interpreter with a time limit, and reports a score per module. Mutants that no
test can kill are listed, each with its reason, in ``equivalents.toml``.
"""
