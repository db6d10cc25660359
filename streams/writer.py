"""Storing folded state and acknowledging records only once the broker holds that state.

Faust's own table assignment queues its changelog record in a producer buffer whose flush gives
up after waiting 0.1 s for the next message (faust-streaming 0.11, `ProducerBuffer.flush_atmost`).
An offset could therefore be committed while the changelog record holding the record's effect was
still queued; when partitions moved in that moment, the new owner recovered the table without it
and the change was lost for good (the two-worker test caught it about one run in five).

So the worker consumes without automatic acks and writes through this class: every state changed
since the last write is stored and sent to its changelog partition once (in record batches built
here, streams/batches.py, not through Faust's per-record `Topic.send`) with the dead letters of
the records folded since, the broker's acknowledgement of every one of those is awaited, then the
partitions' positions (streams/positions.py) are written the same way, and only then are the
records acknowledged, which is what lets Faust commit their offsets. A crash before that point
replays the records, and the fold ignores what it has already seen.

A write that fails has taken states, positions and records that it did not store: a later write
would store newer positions past them (the one a worker makes before it stops, for one), and its
replacement would not read those records again. So after a failure the writer writes nothing
more: the worker stops, and the next one reads again from the last position stored.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from faust.streams import _current_event
from faust.types import TP, EventT, TableT

from streams.batches import send_in_batches
from streams.pipeline import Pipeline
from streams.positions import Positions

log = logging.getLogger(__name__)


class WriteFailed(Exception):
    """A write asked for after an earlier one failed."""


@dataclass(frozen=True)
class Letter:
    """A record for a topic that is not a changelog (a dead letter), sent with the next write
    to the partition the producer's partitioner gives its key."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


class ChangelogWriter:
    """Writes a pipeline's changed states to Faust tables and acks the records behind them."""

    def __init__(self, pipeline: Pipeline, positions: Positions, tables: Mapping[str, TableT],
                 ack: Callable[[EventT], Awaitable[Any]], producer: Callable[[], AIOKafkaProducer], *,
                 max_pending: int = 20_000):
        self.pipeline = pipeline
        self.producer = producer
        self.positions = positions
        self.tables = tables
        self.ack = ack
        self.max_pending = max_pending
        self.lock = asyncio.Lock()
        self.events: list[EventT] = []
        self.letters: list[Letter] = []
        self.latest: dict[int, EventT] = {}
        #: The error of the write that failed, after which nothing more is written.
        self.failed: Exception | None = None

    def handled(self, event: EventT, letters: Sequence[Letter] = ()) -> None:
        """Note a record the pipeline has folded, and the dead letters it caused."""
        self.events.append(event)
        self.letters.extend(letters)
        self.latest[event.message.partition] = event

    def full(self) -> bool:
        """Whether so many records wait for a write that the agent should write before folding more."""
        return len(self.events) >= self.max_pending

    async def write(self) -> int:
        """Store and send every changed state, then the positions they cover, waiting for the
        broker after each; then ack the records. Returns the number of states written."""
        async with self.lock:
            if self.failed is not None:
                raise WriteFailed(f"an earlier changelog write failed ({self.failed!r}): nothing more is written, "
                                  f"the records since the last position stored are read again after a restart / "
                                  f"先前的变更日志写入失败，不再写入；重启后从最后保存的位置重读") from self.failed
            # Whoever asked for the write (a timer, the agent) meets its failure too.
            try:
                taken = self._take()
            except Exception as exc:
                # Taking the states evaluates them first: a failure there is the rules', and was
                # logged as the changelog's (a pack dividing by zero read as a broker fault).
                self.failed = exc
                log.error("evaluating the changes failed (%r): nothing more is written, the worker stops / "
                          "规则评估失败：不再写入，工作进程停止", exc)
                raise
            try:
                return await self._write(*taken)
            except Exception as exc:
                self.failed = exc
                log.error("writing changes to the changelog failed (%r): nothing more is written, the worker "
                          "stops, and the records since the last position stored are read again after a restart / "
                          "变更日志写入失败：不再写入，工作进程停止，重启后从最后保存的位置重读", exc)
                raise

    def _take(self) -> tuple:
        # One synchronous step, so the states sent hold the effect of every record acked after
        # them (and perhaps of later ones: harmless, as a replay changes nothing).
        writes = self.pipeline.take_writes()
        moved = self.positions.take_moved()
        events, self.events = self.events, []
        letters, self.letters = self.letters, []
        return writes, moved, events, letters

    async def _write(self, writes, moved, events, letters) -> int:
        states = [(write.table, write.key, write.state, write.partition) for write in writes]
        # A dead letter that fails fails the write: its record is not acked, and is read again.
        await self._store_and_send(states, letters)
        # A position goes only after the states it covers: it is never ahead of them.
        await self._store_and_send([("positions", str(p), {"next": offset}, p) for p, offset in moved.items()])
        for event in events:
            await self.ack(event)
        return len(writes)

    async def _store_and_send(self, items, letters: Sequence[Letter] = ()) -> None:
        payloads = [orjson.dumps(value) for _, _, value, _ in items]
        for name, key, value, partition in items:
            with self._current(partition):
                self.tables[name].data[key] = value
        topics = {name: table.changelog_topic.get_topic_name() for name, table in self.tables.items()}
        # Each key as the table's key serializer writes it, for its recovery to read.
        records = [(topics[name], partition, self._key_bytes(name, key), payload)
                   for (name, key, _, partition), payload in zip(items, payloads)]
        producer = self.producer()
        records += await _addressed(producer, letters)
        last = await send_in_batches(producer, records)
        table_of = {topic: self.tables[name] for name, topic in topics.items()}
        for (topic, partition), offset in last.items():
            if topic not in table_of:  # a dead letter's
                continue
            # What Faust's own changelog callback did: the RocksDB store keeps the offset its
            # data covers, and recovery at a start reads the changelog from there on.
            table_of[topic].data.set_persisted_offset(TP(topic, partition), offset)

    def _key_bytes(self, name: str, key: str) -> bytes:
        table = self.tables[name]
        return table.changelog_topic.prepare_key(key, table.key_serializer)[0]

    @contextmanager
    def _current(self, partition: int):
        # Faust's RocksDB store picks a key's database from the partition of the event being
        # processed; a write outside the agent names the newest record of the key's partition.
        event = self.latest.get(partition)
        token = _current_event.set(weakref.ref(event) if event is not None else None)
        try:
            yield
        finally:
            _current_event.reset(token)


async def _addressed(producer: AIOKafkaProducer, letters: Sequence[Letter]) -> list[tuple]:
    """`letters` as records for `send_in_batches`, each to the partition `producer.send` would
    have chosen for its key (the partitioner sees every partition, as for a keyed record)."""
    partitions: dict[str, list[int]] = {}
    for topic in {letter.topic for letter in letters}:
        partitions[topic] = sorted(await producer.partitions_for(topic))
    return [(letter.topic, producer._partitioner(letter.key, partitions[letter.topic], partitions[letter.topic]),
             letter.key, letter.value, letter.headers) for letter in letters]
