"""Soak: the simulator at a steady rate against one worker. Memory must level off and the worker
must keep pace. 60 s by default (CI); JUNHENG_SOAK_SECONDS=600 for the full run."""

from __future__ import annotations

import os
import time

import pytest

from kafka_env import (EmbeddedBroker, Sender, Simulators, Worker, batch_report, county_fleet, merged, metric_samples,
                       publish, report_of, rss_kib, without_causes, worker_settings)
from streams.load import snapshot_events

SECONDS = float(os.environ.get("JUNHENG_SOAK_SECONDS", "60"))
RATE = 50.0           # events per second, one event per record
KEEP_PACE = 10.0      # the worker may be at most this many seconds of events behind
RSS_GROWTH_MIB = 24   # allowed growth of the worker's RSS over the second half of the run
COUNTIES = county_fleet(6)


@pytest.fixture
def worker(tmp_path):
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        settings = worker_settings(broker, tmp_path, COUNTIES[0].as_of)
        running = Worker(settings, tmp_path / "worker.log")
        try:
            yield running.ready(timeout=90)
        finally:
            running.stop()


@pytest.mark.slow
def test_a_steady_stream_keeps_memory_flat_and_the_worker_in_pace(worker):
    settings = worker.settings
    loaded = snapshot_events(merged(COUNTIES))
    publish(settings, loaded)
    worker.wait_handled(len(loaded), timeout=60)
    sim = Simulators(COUNTIES, seed=17)
    sender = Sender(settings, sim, rate=RATE, count=int(RATE * SECONDS)).start()

    samples = []  # (seconds since start, RSS KiB, sent, handled)
    started = time.monotonic()
    while sender.thread.is_alive() and time.monotonic() - started < SECONDS + 60:
        time.sleep(2)
        sent, handled = sender.sent, worker.events_handled() - len(loaded)
        samples.append((time.monotonic() - started, rss_kib(worker.process.pid), sent, handled))
        assert sent - handled <= RATE * KEEP_PACE, f"worker {sent - handled} events behind at {samples[-1][0]:.0f} s"
    sender.join(timeout=30)
    worker.wait_handled(len(loaded) + sender.count, timeout=KEEP_PACE * 3)

    half = [s for s in samples if s[0] >= SECONDS / 2]
    growth_mib = (max(s[1] for s in half) - half[0][1]) / 1024
    print(f"\nsoak {SECONDS:.0f} s at {RATE:.0f}/s: RSS {samples[0][1] / 1024:.1f} → {samples[-1][1] / 1024:.1f} MiB, "
          f"second half +{growth_mib:.1f} MiB; most behind {max(s[2] - s[3] for s in samples)} events")
    assert growth_mib < RSS_GROWTH_MIB, [(round(t), rss // 1024) for t, rss, _, _ in samples]
    metrics = worker.metrics()
    assert set(metric_samples(metrics, "junheng_consumer_lag").values()) == {0.0}
    assert metric_samples(metrics, "junheng_dead_letter_total") == {"": 0.0}
    # After thousands of changes the live state is still exactly the batch assessment of the truth.
    assert without_causes(report_of([worker])) == batch_report(sim.snapshot())
