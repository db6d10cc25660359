"""Keeping Python's garbage collector off a worker's long-lived state.

A worker's state is millions of objects that live for hours, and every evaluation round replaces
thousands of them. The collector frees none of them: reference counting does (over a whole quick
bench run, a worker's collections freed 226 objects, all in the first one, at start). Yet every
new object passes through the collector's generations, and each collection scans what it holds:
in a national bench run first-generation collections held a worker for up to 1.1 s and
second-generation ones for up to 3.1 s, while events waited.

So after each evaluation round the worker moves every object the collector tracks out of its
generations (`gc.freeze`, a constant-time list splice), and a collection scans only what was
allocated since. Once every `JUNHENG_FULL_COLLECTION_INTERVAL` (an hour by default) it puts them
back and runs one full collection, so that a reference cycle that became garbage after it was
frozen is still freed; that collection is as long as one over the whole state always was.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


class Freezer:
    """Freezes the collector's generations after each round; a full collection when one is due."""

    def __init__(self, full_every: float, clock: Callable[[], float] = time.monotonic):
        self.full_every = full_every
        self._clock = clock
        self._last_full = clock()

    def after_round(self) -> None:
        """Leave every object alive now out of later collections until the next full one."""
        gc.freeze()

    def collect_all_when_due(self) -> bool:
        """Every `full_every` seconds: one full collection over every object, then freeze again.
        Returns whether it ran."""
        if self._clock() - self._last_full < self.full_every:
            return False
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._last_full = self._clock()
        return True
