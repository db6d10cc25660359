"""Broker stall detection: a bounded round trip to the broker every few seconds.

Faust and aiokafka ride out a broker that stops answering (they retry and time out on their own
schedules, some of them minutes long), so without a probe a frozen broker looks like a quiet
stream. The probe asks the broker for its metadata on a connection of its own; a round trip that
does not finish within `timeout` seconds marks the broker stalled. An outage counts once,
however many probes fail during it, and the gauge returns to 0 at the first answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from alerts.health import Health

if TYPE_CHECKING:
    import faust

    from streams.settings import Settings

log = logging.getLogger(__name__)

PROBE_INTERVAL = 2.0
PROBE_TIMEOUT = 3.0


class StallDetector:
    """Counts broker outages into a worker's Health (`broker_stalls`, `broker_stalled`)."""

    def __init__(self, health: Health, probe, timeout: float = PROBE_TIMEOUT):
        self.health = health
        self.probe = probe  # an async callable: one round trip to the broker
        self.timeout = timeout

    async def check(self) -> bool:
        """One bounded round trip; True when the broker answered in time."""
        try:
            await asyncio.wait_for(self.probe(), self.timeout)
        except Exception as exc:  # a timeout, a refused or reset connection: the broker is not answering
            self._stalled(exc)
            return False
        self._answered()
        return True

    def _stalled(self, exc: Exception) -> None:
        if not self.health.broker_stalled:
            self.health.broker_stalled = True
            self.health.broker_stalls += 1
            log.warning("broker not answering within %.0f s (%s) / Kafka 代理无响应", self.timeout,
                        type(exc).__name__)

    def _answered(self) -> None:
        if self.health.broker_stalled:
            self.health.broker_stalled = False
            log.warning("broker answering again / Kafka 代理已恢复响应")


class MetadataProbe:
    """A metadata request on an aiokafka client of its own, so that a stall of the worker's
    consumer or producer connections does not hide behind their retries."""

    def __init__(self, settings: "Settings"):
        self.settings = settings
        self.client = None

    async def __call__(self) -> None:
        from aiokafka.client import AIOKafkaClient

        from streams.security import aiokafka_config

        fresh = self.client is None
        if fresh:
            self.client = AIOKafkaClient(bootstrap_servers=self.settings.bootstrap_servers,
                                         request_timeout_ms=int(PROBE_TIMEOUT * 1000), **aiokafka_config(self.settings))
        try:
            if fresh:
                await self.client.bootstrap()
            await self.client.fetch_all_metadata()
        except BaseException:
            # A cancelled or failed request can leave the connection waiting for an answer that
            # belongs to no one: start afresh at the next probe.
            client, self.client = self.client, None
            asyncio.ensure_future(_close(client))
            raise

    async def close(self) -> None:
        if self.client is not None:
            await _close(self.client)
            self.client = None


async def _close(client) -> None:
    try:
        await client.close()
    except Exception:  # closing a client whose broker is gone may fail; nothing is left to do
        pass


def watch(app: "faust.App", settings: "Settings", health: Health) -> StallDetector:
    """Probe the broker from a timer of `app` every PROBE_INTERVAL seconds."""
    probe = MetadataProbe(settings)
    detector = StallDetector(health, probe)

    @app.timer(interval=PROBE_INTERVAL)
    async def probe_broker():
        await detector.check()

    return detector
