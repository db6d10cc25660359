"""How long Python's garbage collector holds a worker, for its log.

A worker keeps millions of objects (school states, live results); a full collection walks all of
them on the event loop, which also folds events and answers scrapes. The worker logs each
collection that took longer than a threshold, so that a late answer can be matched to one.
"""

from __future__ import annotations

import gc
import time


class CollectorPauses:
    """Records garbage collections of at least `threshold` seconds until they are taken."""

    def __init__(self, threshold: float = 0.1):
        self.threshold = threshold
        self._started = 0.0
        self._slow: list[tuple[int, float]] = []

    def install(self) -> "CollectorPauses":
        gc.callbacks.append(self._callback)
        return self

    def uninstall(self) -> None:
        gc.callbacks.remove(self._callback)

    def take(self) -> list[tuple[int, float]]:
        """The slow collections since the last call, as (generation, seconds)."""
        slow, self._slow = self._slow, []
        return slow

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        if took >= self.threshold:
            self._slow.append((info["generation"], took))
