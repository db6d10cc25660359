"""Long synchronous work on a worker's event loop, done in turns.

A worker folds events on the same event loop that serves `/metrics` and `/report`; building a
national share of either takes seconds, so that work gives the loop back every few tens of
milliseconds and folding goes on in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Turns:
    """Gives the running event loop back once at least `step_seconds` of work went by since the
    last time, calling `before_each` first; call `pause` between units of work."""

    def __init__(self, step_seconds: float, before_each: Callable[[], None] = lambda: None):
        self.step_seconds = step_seconds
        self.before_each = before_each
        self._deadline = time.perf_counter() + step_seconds

    async def pause(self) -> None:
        if time.perf_counter() >= self._deadline:
            self.before_each()
            await asyncio.sleep(0)
            self._deadline = time.perf_counter() + self.step_seconds


def left_going(future: asyncio.Future) -> asyncio.Future:
    """`future`, marked so that asyncio does not report its error as never retrieved when nobody
    awaits it: work a wait gave up on is left going, and its error is met by whoever reads its
    result next."""
    future.add_done_callback(_retrieved)
    return future


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
