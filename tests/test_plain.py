"""The bench's ceiling for single-event records: a plain Faust agent with the worker's settings
(streams/plain.py) reads every record of its topic from a real broker."""

from __future__ import annotations

import datetime as dt

from kafka_env import EmbeddedBroker, worker_settings
from streams import bench
from streams.broker import declare_topics


def test_the_plain_agent_reads_every_record_and_gives_its_rate(tmp_path):
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        settings = worker_settings(broker, tmp_path, dt.date(2024, 9, 1), app_id="plain-test", topic="plain.test")
        declare_topics(settings.bootstrap_servers, {settings.topic: (settings.partitions, {})})
        records = [(f"3205{n % 7:02d}", b'{"n": %d}' % n, 1) for n in range(300)]
        bench._produce(settings, records)
        # Raises unless the agent's /count reaches every record within the timeout.
        rate = bench._plain_rate(settings, tmp_path, len(records), timeout=60)
    assert rate > 0
    assert "Traceback" not in (tmp_path / "plain.log").read_text()
