"""Which source records each partition's state already holds, kept in the changelog beside it.

Faust decides where a partition is read from after a rebalance by the group's committed offset,
and on this path that offset has been seen to run ahead of what was folded: in the two-worker
test, records delivered between a rebalance's revocation and the seek that follows it were never
folded by anyone, yet the committed offset passed them (offsets 44-54 of one partition, in one
run). So a worker does not trust the committed offset. It keeps, per partition, the next offset
its state needs, writes that position to a compacted changelog after the state it covers, and
folds a partition's records strictly in order from there: an older record is already in the
state, a newer one means records were skipped, and the consumer is sent back for them.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from enum import Enum


class Verdict(Enum):
    FOLD = "fold"  # the next record the state needs
    HELD = "held"  # already in the state: acknowledge, do not fold again
    SKIPPED_AHEAD = "skipped ahead"  # records before it were not delivered: seek back


class Positions:
    """The next offset each partition's state needs, as known to this worker."""

    RESEEK_AFTER = 0.5  # seconds before asking again for records a seek has not yet brought

    def __init__(self, store: MutableMapping):
        self.store = store
        self.next: dict[int, int] = {}
        self.generation: int | None = None
        self.moved: set[int] = set()
        self.seeking: dict[int, float] = {}

    def admit(self, partition: int, offset: int, generation: int) -> Verdict:
        """What to do with the record at `offset` of `partition`, delivered in `generation`."""
        if generation != self.generation:
            # Partitions may have moved and tables been recovered: start again from the store.
            self.generation, self.next, self.seeking = generation, {}, {}
        if partition not in self.next:
            stored = self.store.get(str(partition))
            # No stored position: a partition this deployment has never folded starts wherever
            # the consumer starts (the committed offset, else the earliest record).
            self.next[partition] = stored["next"] if stored else offset
        wanted = self.next[partition]
        if offset < wanted:
            return Verdict.HELD
        if offset > wanted:
            return Verdict.SKIPPED_AHEAD
        self.next[partition] = offset + 1
        self.moved.add(partition)
        self.seeking.pop(partition, None)
        return Verdict.FOLD

    def should_seek(self, partition: int) -> bool:
        """Whether to send the consumer back now (not again for every record of a buffer)."""
        now = time.monotonic()
        if now - self.seeking.get(partition, float("-inf")) < self.RESEEK_AFTER:
            return False
        self.seeking[partition] = now
        return True

    def take_moved(self) -> dict[int, int]:
        """The positions that moved since the last call, to write after the states they cover."""
        moved = {partition: self.next[partition] for partition in self.moved if partition in self.next}
        self.moved = set()
        return moved
