"""Background threads: a timer for status changes and a sender for callbacks."""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(order=True)
class _Timed:
    due: float
    order: int
    action: Callable[[], None] = field(compare=False)


class Scheduler:
    """Runs callables after a delay, one at a time, in due order, on one thread."""

    def __init__(self, name: str = "plum-sim-scheduler") -> None:
        self._name = name
        self._heap: list[_Timed] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (again after :meth:`stop`)."""
        with self._cond:
            self._stopped = False
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; pending actions are dropped."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def clear(self) -> None:
        """Drop every pending action."""
        with self._cond:
            self._heap.clear()

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` on the scheduler thread ``delay`` seconds from now."""
        with self._cond:
            heapq.heappush(self._heap, _Timed(time.monotonic() + delay, next(self._order), action))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    wait = self._heap[0].due - time.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopped:
                    return
                item = heapq.heappop(self._heap)
            try:
                item.action()
            except Exception:
                # One broken action must not stop every later status change.
                logger.exception("simulator scheduled action failed")


class SerialWorker:
    """Runs submitted callables one after another on one thread, in submission order.

    Callbacks go through one such worker so that the order they reach a result URL is
    the order the simulator decided (reordering is a fault it injects on purpose).
    """

    def __init__(self, name: str = "plum-sim-callbacks") -> None:
        self._name = name
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (again after :meth:`stop`)."""
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the job in hand, drop the rest, stop the thread."""
        self.clear()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def clear(self) -> None:
        """Drop every job not yet started."""
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job``."""
        self._queue.put(job)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except Exception:
                logger.exception("simulator callback job failed")
