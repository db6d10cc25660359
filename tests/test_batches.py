"""Changelog records sent in batches built by the worker (streams/batches.py), against a real
broker: every record arrives in its partition in order, the offsets returned are the last ones
written, and a producer limited to one record per batch (Tansu's setting) sends no more."""

from __future__ import annotations

import asyncio
import datetime as dt

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kafka_env import EmbeddedBroker, read_topic, worker_settings
from streams.batches import send_in_batches
from streams.broker import declare_topics

TOPIC = "batches.test"
AS_OF = dt.date(2024, 9, 1)


def test_records_arrive_in_order_and_the_last_offsets_are_returned(tmp_path):
    # 300 records of 1 KiB in batches of at most 16 KiB: several batches a partition.
    records = [(TOPIC, n % 3, f"school-{n}".encode(), bytes([n % 256]) * 1024) for n in range(300)]
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        declare_topics([f"127.0.0.1:{broker.port}"], {TOPIC: (3, {})})
        last, read = _send_and_read(broker, tmp_path, records, max_batch_size=16384)
    assert last == {(TOPIC, p): 99 for p in range(3)}
    for partition in range(3):
        sent = [(key, value) for _, p, key, value in records if p == partition]
        assert [(r.key, r.value) for r in read[partition]] == sent
        assert [r.offset for r in read[partition]] == list(range(100))


def test_one_record_per_batch_when_the_producer_allows_no_more(tmp_path):
    # Tansu answers a partition's end offset with its last batch's first offset + 1: a record
    # batched with others would leave the end short of it, which is how a table lost updates.
    records = [(TOPIC, 0, f"school-{n}".encode(), b"{}") for n in range(40)]
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        declare_topics([f"127.0.0.1:{broker.port}"], {TOPIC: (1, {})})
        last, read = _send_and_read(broker, tmp_path, records, max_batch_size=1)
        end = asyncio.run(_end_offset(broker))
    assert last == {(TOPIC, 0): 39}
    assert len(read[0]) == 40
    assert end == 40


def _send_and_read(broker, tmp_path, records, max_batch_size: int):
    """The last offsets `send_in_batches` returns, and the topic's records read back by partition."""
    async def send():
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{broker.port}", max_batch_size=max_batch_size,
                                    linger_ms=5)
        await producer.start()
        try:
            return await send_in_batches(producer, records)
        finally:
            await producer.stop()

    last = asyncio.run(send())
    read: dict[int, list] = {}
    for record in read_topic(worker_settings(broker, tmp_path, AS_OF), TOPIC, len(records)):
        read.setdefault(record.partition, []).append(record)
    return last, read


async def _end_offset(broker) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=f"127.0.0.1:{broker.port}")
    await consumer.start()
    try:
        tp = TopicPartition(TOPIC, 0)
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()
