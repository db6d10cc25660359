"""Which source records each partition's state already holds, kept in the changelog beside it.

Faust's stream passes over (and acknowledges) every record fetched while a rebalance has flow
stopped, and nothing fetches those records again unless a seek follows. Traces showed both ends
of that: in the two-worker test, runs of records (offsets 44-54 of one partition in one run,
89-118 in another) that no worker folded while the committed offset moved past them; and a
worker restarted after kill -9 whose consumer had fetched every record of its partitions while
its agent received one. So a worker does not trust the committed offset. It keeps, per partition,
the next offset its state needs and writes that position to a compacted changelog after the
state it covers. Once flow resumes after a rebalance it seeks every partition it owns to that
position (records delivered before then are left for the seek to bring again), and it folds a
partition's records strictly in order from there: an older record is already held, a newer one
means records were skipped, and the consumer is sent back for them. A seek can itself be lost
(Faust drops fetched records below the last offset it delivered, and a delivery still under way
from before the seek can raise that mark again: a two-worker bench run stalled so, one worker
folding nothing), so a partition with records to read that made no progress is sent back
again: after STALL_AFTER seconds while the agent has nothing buffered, and after STALL_AFTER_BUSY
seconds in any case (a busy worker folds other partitions' buffered records for seconds at a time,
and a national bench run showed sending it back then only refetches what it already had).
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from enum import Enum


class Verdict(Enum):
    FOLD = "fold"  # the next record the state needs
    HELD = "held"  # already folded: acknowledge it, do not fold (or dead-letter) it again
    SKIPPED_AHEAD = "skipped ahead"  # records before it were not delivered: seek back
    NOT_RESUMED = "not resumed"  # the partition's start is not set yet: the resume seek brings it again


class Positions:
    """The next offset each partition's state needs, as known to this worker."""

    RESEEK_AFTER = 0.5  # seconds before asking again for records a seek has not yet brought
    STALL_AFTER = 3.0  # seconds without progress, records waiting, before a partition is read again
    STALL_AFTER_BUSY = 30.0  # the same while the agent still has buffered records to fold

    def __init__(self, store: MutableMapping, clock=time.monotonic):
        self.store = store
        self.clock = clock
        self.next: dict[int, int] = {}
        self.generation: int | None = None  # the consumer generation last resumed from the store
        self.moved: set[int] = set()
        self.seeking: dict[int, float] = {}
        self.progress: dict[int, float] = {}

    def resume(self, generation: int, starts: dict[int, int]) -> None:
        """Start a consumer generation: each owned partition is read from `starts`."""
        self.generation, self.next, self.seeking = generation, dict(starts), {}
        now = self.clock()
        self.progress = {partition: now for partition in starts}

    def admit(self, partition: int, offset: int, generation: int) -> Verdict:
        """What to do with the record at `offset` of `partition`, delivered in `generation`."""
        if generation != self.generation or partition not in self.next:
            return Verdict.NOT_RESUMED
        wanted = self.next[partition]
        if offset < wanted:
            return Verdict.HELD
        if offset > wanted:
            return Verdict.SKIPPED_AHEAD
        self.next[partition] = offset + 1
        self.moved.add(partition)
        self.seeking.pop(partition, None)
        self.progress[partition] = self.clock()
        return Verdict.FOLD

    def stored(self, partition: int, default: int) -> int:
        """The position stored for `partition` (recovered with the tables), else `default`."""
        stored = self.store.get(str(partition))
        return stored["next"] if stored else default

    def should_seek(self, partition: int) -> bool:
        """Whether to send the consumer back now (not again for every record of a buffer)."""
        now = self.clock()
        if now - self.seeking.get(partition, float("-inf")) < self.RESEEK_AFTER:
            return False
        self.seeking[partition] = now
        return True

    def stalled(self, highwaters: dict[int, int | None], busy: bool = False) -> list[int]:
        """Partitions with records beyond their position (by the consumer's highwater marks) that
        have folded nothing, nor been sent back, for STALL_AFTER seconds (STALL_AFTER_BUSY while
        the agent is `busy` with buffered records): each is noted as sent back now, and the
        caller seeks it to its position."""
        limit = self.STALL_AFTER_BUSY if busy else self.STALL_AFTER
        now, found = self.clock(), []
        for partition, wanted in self.next.items():
            end = highwaters.get(partition)
            if end is None or end <= wanted:
                continue
            quiet = now - max(self.progress.get(partition, now), self.seeking.get(partition, float("-inf")))
            if quiet >= limit:
                self.seeking[partition] = now
                found.append(partition)
        return found

    def take_moved(self) -> dict[int, int]:
        """The positions that moved since the last call, to write after the states they cover."""
        moved = {partition: self.next[partition] for partition in self.moved if partition in self.next}
        self.moved = set()
        return moved
