"""Faust's Kafka transport with the consumer's fetch wait taken from the settings.

Faust builds its aiokafka consumer with `fetch_max_wait_ms=1500` and no setting to change it. A
broker that answers a fetch as soon as records arrive (Apache Kafka) makes that harmless, but
Tansu held fetches: a raw aiokafka consumer here saw records published every 100 ms after a median
of 379 ms with a 1500 ms wait, 138 ms with 500, 15 ms with 200 and 2 ms with 100. That wait was the
largest part of the worker's publish-to-metric latency at low load.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver


def use_fetch_wait(app: faust.App, seconds: float) -> None:
    """Make `app` consume with a fetch wait of `seconds`; call before the app starts."""
    app.transport = _Transport(app.conf.broker_consumer, app, fetch_max_wait_ms=max(1, round(seconds * 1000)))


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any):
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its fetcher, which has not happened yet.
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(driver.Transport):
    Consumer = _Consumer

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms
