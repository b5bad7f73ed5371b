"""A function module's cold start, with the garbage collector held off while it wires up.

A cold start builds objects that live as long as the execution environment; the
collector would scan them again and again while the imports run (a quarter of the
import time). A function module imports and wires itself inside ``wiring()``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def wiring() -> Iterator[None]:
    """Collect nothing inside the block; after it, keep everything it built out of every
    later collection, and collect again. A failed wiring only turns the collector back on:
    the import fails and Lambda starts the environment again."""
    gc.disable()
    try:
        yield
    except BaseException:
        gc.enable()
        raise
    gc.freeze()
    gc.enable()
