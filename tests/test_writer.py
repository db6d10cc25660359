"""The changelog writer (streams/writer.py) against a real broker: once a write fails, it writes
nothing more. That write took states, positions and records it did not store; a later write
storing newer positions would leave those records behind for good, while a writer that stops
leaves them to be read again from the last position stored."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from kafka_env import EmbeddedBroker, read_topic, worker_settings
from pipelines import PACK
from rules.evaluate import Assessor
from small_districts import GUSU, SIP, SIP_SCHOOLS
from schemas.snapshot import Snapshot
from streams.app import JSON, faust_app, topic_partitions
from streams.broker import declare_topics
from streams.live import LiveAssessment
from streams.load import snapshot_events
from streams.pipeline import Pipeline
from streams.positions import Positions
from streams.writer import ChangelogWriter, Letter, WriteFailed

AS_OF = dt.date(2026, 9, 1)


@dataclass
class Record:
    """What the writer reads of a Faust event: its offset, its message's partition."""

    offset: int
    message: SimpleNamespace


def test_after_a_failed_write_nothing_more_is_written_nor_acknowledged(tmp_path):
    snapshot = Snapshot(as_of=AS_OF, districts=[SIP, GUSU], schools=SIP_SCHOOLS)
    records = [event.model_dump_json().encode() for event in snapshot_events(snapshot)]
    assert len(records) == 4
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        settings = worker_settings(broker, tmp_path, AS_OF)
        declare_topics(settings.bootstrap_servers, topic_partitions(settings))
        acked, error, refused = asyncio.run(_write_fold_fail_and_write_again(settings, records))
        positions_topic = f"{settings.app_id}-positions-changelog"
        stored = read_topic(settings, positions_topic, count=3, timeout=3)
        schools_stored = read_topic(settings, f"{settings.app_id}-schools-changelog", count=3, timeout=3)

    assert acked == [0, 1]  # the records of the first write only
    assert isinstance(error, MessageSizeTooLargeError)
    assert isinstance(refused, WriteFailed) and refused.__cause__ is error and "先前的变更日志写入失败" in str(refused)
    # One position, from the first write: none past the records the failed write held.
    assert [(r.key, r.value) for r in stored] == [(b'"0"', b'{"next":2}')]
    # The failed write may have stored its school (a replay changes nothing); nothing after it.
    assert b'"320571-002"' not in {r.key for r in schools_stored}


async def _write_fold_fail_and_write_again(settings, records):
    app = faust_app(settings)
    tables = {name: app.Table(name, partitions=settings.partitions, default=None, schema=JSON)
              for name in ("schools", "districts", "positions")}
    pipeline = Pipeline(tables["schools"].data, tables["districts"].data, LiveAssessment(Assessor(PACK, AS_OF)))
    positions = Positions(tables["positions"].data)
    positions.resume(1, {0: 0})
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, max_batch_size=16384)
    await producer.start()
    acked: list[int] = []

    async def ack(event):
        acked.append(event.offset)

    refusing = _RefusingTopic(producer, settings.dead_letter_topic)
    writer = ChangelogWriter(pipeline, positions, tables, ack=ack, producer=lambda: refusing)

    def fold(offset: int, letters=()):
        positions.admit(0, offset, 1)
        pipeline.handle(records[offset], 0)
        writer.handled(Record(offset, SimpleNamespace(partition=0)), list(letters))

    try:
        fold(0)  # the two districts
        fold(1)
        await writer.write()
        # A school, and a dead letter whose send fails.
        fold(2, [Letter(settings.dead_letter_topic, b"320571", b"rejected")])
        with pytest.raises(MessageSizeTooLargeError) as failed:
            await writer.write()
        fold(3)  # the other school
        with pytest.raises(WriteFailed) as refused:
            await writer.write()
        return acked, failed.value, refused.value
    finally:
        await producer.stop()


class _RefusingTopic:
    """A producer whose every batch for `topic` the broker refuses, as Kafka refuses a record
    past its message.max.bytes (Tansu takes any size)."""

    def __init__(self, producer: AIOKafkaProducer, topic: str):
        self.producer, self.topic = producer, topic

    def __getattr__(self, name):
        return getattr(self.producer, name)

    async def send_batch(self, batch, topic, *, partition):
        if topic != self.topic:
            return await self.producer.send_batch(batch, topic, partition=partition)
        refused = asyncio.get_running_loop().create_future()
        refused.set_exception(MessageSizeTooLargeError())
        return refused


def test_an_evaluation_that_fails_is_logged_as_such_not_as_a_changelog_write(caplog):
    """Taking the states evaluates them first. A rule pack dividing by zero stopped the worker
    with "writing changes to the changelog failed", sending its operator to the broker."""
    class Failing:
        def take_writes(self):
            raise ZeroDivisionError("division by zero")

    async def ack(event):
        raise AssertionError("nothing is acknowledged")

    writer = ChangelogWriter(Failing(), SimpleNamespace(take_moved=dict), {}, ack=ack, producer=lambda: None)
    with pytest.raises(ZeroDivisionError):
        asyncio.run(writer.write())
    assert "evaluating the changes failed" in caplog.text and "规则评估失败" in caplog.text
    assert "changelog" not in caplog.text
    with pytest.raises(WriteFailed):  # and nothing more is written, as after a failed write
        asyncio.run(writer.write())
