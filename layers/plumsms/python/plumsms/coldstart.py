"""A function module's cold start, with the garbage collector held off while it wires up.

A cold start builds objects that live as long as the execution environment; the
collector would scan them again and again while the imports run (a quarter of the
import time). A function module calls ``begin()`` before its other imports and
``wired()`` once its wiring is built.
"""

from __future__ import annotations

import gc


def begin() -> None:
    """Collect nothing until ``wired()``."""
    gc.disable()


def wired() -> None:
    """Keep everything built so far out of every later collection, and collect again."""
    gc.freeze()
    gc.enable()
