"""When a worker renders its `/metrics` text ahead of the scrapes.

A scrape renders the districts changed since the last one (alerts/metrics.py). After the worker
(re)builds its state for a new assignment (a start, a rebalance) every district is new: about
20 s of rendering for a worker's national share, past Prometheus's default 10 s scrape timeout.
And after a burst of changes with no scrape in between (a snapshot load), the next scrape finds
most schools changed. So the worker renders ahead: it starts after every rebuild, and in any
evaluation round in which it folded nothing; and it renders only while no record has arrived for
a round (streams/app.py), in steps of 10 ms at most, so that an event waits for it 10 ms at
most. While events keep arriving it leaves the rendering to the scrapes.
"""

from __future__ import annotations


class RenderAhead:
    """Decides, once per evaluation round, whether to start rendering ahead."""

    def __init__(self) -> None:
        self._assigned: frozenset[int] | None = None
        self._handled: int | None = None
        self._stamp: int | None = None

    def due(self, assigned: frozenset[int] | None, handled: int, stamp: int, rendering: bool) -> bool:
        """Whether to start now, given the partitions the live state was built for, the events
        folded so far, the live state's change stamp, and whether a render (ahead or a scrape's)
        is under way."""
        quiet = handled == self._handled
        self._handled = handled
        if rendering or not assigned:
            return False
        if assigned != self._assigned or (quiet and stamp != self._stamp):
            self._assigned, self._stamp = assigned, stamp
            return True
        return False
