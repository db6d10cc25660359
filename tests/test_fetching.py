"""The worker's consumer fetches with the configured wait, not Faust's fixed 1.5 s."""

from __future__ import annotations

import asyncio
import datetime as dt

from kafka_env import EmbeddedBroker, worker_settings
from streams.app import create_app


def test_the_consumer_fetcher_waits_as_long_as_the_setting_says(tmp_path):
    async def fetch_waits() -> list[int]:
        waits = []
        for seconds in (None, 0.25):
            extra = {} if seconds is None else {"fetch_wait": seconds}
            app = create_app(worker_settings(broker, tmp_path, dt.date(2024, 9, 1), **extra))
            consumer = app.consumer._thread._create_worker_consumer(app.transport)
            await consumer.start()
            try:
                waits.append(consumer._fetcher._fetch_max_wait_ms)
            finally:
                await consumer.stop()
        return waits

    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        assert asyncio.run(fetch_waits()) == [100, 250]
