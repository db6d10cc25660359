"""`junheng bench`: throughput, latency, memory and metric cardinality, with the ceiling measured
in the same run.

One embedded broker; one topic holding, in order, a synthetic country's snapshot load, change
events in batch records (each record one school system's sync of one school), and the same kind
of changes one event per record. The ceiling is a raw aiokafka consumer reading that topic; the
worker is a real `junheng worker` process folding it with full state and rule evaluation.
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from schemas.events import SchoolEvent
from streams.broker import EmbeddedBroker, declare_topics, free_port
from streams.settings import Settings, load_settings

GIB = 1 << 30
#: Changes published between the second and third /metrics scrapes.
SCRAPE_CHANGES = 500
#: Seconds between the latency phase's reads of the probe school.
PROBE_READ_EVERY = 0.02
#: The date the bench's rules are taken at, by the workers and the in-process pipeline alike.
AS_OF = "2023-09-01"


@dataclass
class BenchConfig:
    districts: int
    batched_events: int
    single_events: int
    events_per_record: int = 100
    partitions: int = 4
    # (events/s, events per record): the target rate in small per-school batches, and a rate
    # of single-event records.
    latency_loads: tuple[tuple[float, int], ...] = ((5000.0, 10), (1000.0, 1))
    latency_seconds: float = 10.0
    seed: int = 1
    # Worker processes in one consumer group: one per core is how Faust scales on one machine.
    workers: int = 1
    # The workers' consumer-group session, and their interval between heap trims (the bench
    # waits one interval before reading memory after a trim).
    session_timeout: float = Settings.model_fields["session_timeout"].default
    heap_trim_interval: float = Settings.model_fields["heap_trim_interval"].default
    # How long after a restarted worker holds every school its first /metrics scrape comes:
    # Prometheus's default scrape interval.
    scrape_after_restart: float = 15.0
    # A plain stateless Faust agent reading the single-event records: their ceiling. Left out of
    # the quick run, which it would take to about 58 s (its process starts and joins in 5 s).
    plain_agent: bool = True

    @classmethod
    def quick(cls) -> "BenchConfig":
        # 1,088 schools, 29 batched changes each. On a machine that ran CPU-bound work 1.6 to 2
        # times slower than the one the quick country was first chosen on, 40 districts and
        # 80,000 changes took 75 to 79 s, 25 and 50,000 62 and 66 s, and 20 and 40,000 51 to
        # 61 s (PERFORMANCE.md, sessions 11 and 12).
        return cls(districts=16, batched_events=32_000, single_events=8_000, latency_seconds=3.0,
                   session_timeout=3.0, heap_trim_interval=1.0, scrape_after_restart=2.0, plain_agent=False)

    @classmethod
    def full(cls) -> "BenchConfig":
        return cls(districts=3050, batched_events=500_000, single_events=50_000, latency_seconds=10.0)


@dataclass
class BenchResult:
    config: dict
    schools: int = 0
    raw_events_per_s: float = 0.0
    load_events_per_s: float = 0.0
    batched_events_per_s: float = 0.0
    batched_schools_touched: int = 0
    batched_events_per_record: float = 0.0
    single_events_per_s: float = 0.0
    plain_agent_single_events_per_s: float = 0.0
    in_process_batched_events_per_s: float = 0.0
    in_process_single_events_per_s: float = 0.0
    # Per changes phase ("batched", "single"): CPU time per event of the workers, the broker and
    # the bench's own process, in microseconds, and the wall time's share of the two cores.
    cpu_per_event_us: dict[str, dict[str, float]] = field(default_factory=dict)
    latency: list[dict] = field(default_factory=list)
    startup_s: float = 0.0
    recovery_s: float = 0.0
    rss_empty_bytes: int = 0
    rss_snapshot_bytes: int = 0
    rss_loaded_bytes: int = 0
    rss_busy_bytes: int = 0
    rss_scraped_bytes: int = 0
    memory_per_10k_schools_snapshot_bytes: float = 0.0
    memory_per_10k_schools_bytes: float = 0.0
    national_memory_estimate_bytes: float = 0.0
    metrics_series_all: int = 0
    metrics_scrape_all_s: float = 0.0
    # Districts that scrape showed with older lines or left out, its render budget spent, and how
    # long until a scrape showed none behind (see `_until_complete`).
    metrics_behind_all: int = 0
    metrics_complete_all_s: float = 0.0
    metrics_scrape_unchanged_s: float = 0.0
    # The same, not asking for gzip; and the size of that text, and gzip-encoded (all workers).
    metrics_scrape_uncompressed_s: float = 0.0
    metrics_text_bytes: int = 0
    metrics_gzip_bytes: int = 0
    metrics_cold_scrape_longest_pause_s: float = 0.0
    metrics_scrape_after_changes_s: float = 0.0
    metrics_behind_after_changes: int = 0
    metrics_scrape_after_restart_s: float = 0.0
    metrics_behind_after_restart: int = 0
    metrics_complete_after_restart_s: float = 0.0
    # A scrape of the restarted worker while it builds its state (None: the bench did not catch
    # it building; a quick one takes about 0.4 s).
    metrics_scrape_during_build_s: float | None = None
    metrics_behind_during_build: int | None = None
    metrics_series_violations: int = 0
    metrics_scrape_violations_s: float = 0.0
    # In-process, the whole country as one worker's state: a sync and a whole /metrics render
    # after each change of partitions (see `_partitions_moving`).
    partitions_moving: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.batched_events_per_s / self.raw_events_per_s if self.raw_events_per_s else 0.0


def run_bench(config: BenchConfig, workdir: Path, say=print) -> BenchResult:
    """Run every measurement once and return the figures."""
    from junheng.examples import country
    from streams.load import snapshot_events
    from streams.simulate import Simulator

    result = BenchResult(config=asdict(config))
    say(f"generating a country of {config.districts} districts / 生成合成数据 …")
    snapshot = country(config.districts, config.seed)
    result.schools = len(snapshot.schools)
    load = _load_records(snapshot_events(snapshot))
    sim = Simulator(snapshot, seed=config.seed)
    changes = sim.events(config.batched_events)
    batched = _sync_records(changes, config.events_per_record)
    result.batched_schools_touched = len({e.school for e in changes if isinstance(e, SchoolEvent)})
    result.batched_events_per_record = len(changes) / max(1, len(batched))
    singles = [(e.district, e.model_dump_json().encode(), 1) for e in sim.events(config.single_events)]
    say("the same records folded in-process, without Kafka or Faust / 进程内折叠 …")
    _in_process(result, load, batched, singles, config.partitions)
    workdir.mkdir(parents=True, exist_ok=True)
    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        settings = _settings(broker, workdir / "worker", config, batch_size=None)
        declare_topics(settings.bootstrap_servers, _topics(settings))
        say(f"producing {len(load) + len(batched) + len(singles):,} records / 写入 Kafka …")
        _produce(settings, load + batched + singles)
        counts = [sum(n for _, _, n in part) for part in (load, batched, singles)]
        say("raw aiokafka consumption (the ceiling) / 原始消费上限 …")
        result.raw_events_per_s = _raw_rate(settings, sum(counts))
        if config.plain_agent:
            say("a plain stateless Faust agent, one event per record (their ceiling) / 无状态 Faust 代理 …")
            plain = _settings(broker, workdir / "plain", config, batch_size=None, app_id="junheng-bench-plain",
                              topic="bench.singles")
            declare_topics(plain.bootstrap_servers, {plain.topic: (plain.partitions, {})})
            _produce(plain, singles)
            result.plain_agent_single_events_per_s = _plain_rate(plain, workdir, len(singles))
        say(f"{config.workers} worker(s): load, batched changes, single-event changes / 工作进程吞吐 …")
        worker = _Workers([settings] + [_settings(broker, workdir / f"worker{n}", config, batch_size=None)
                                        for n in range(1, config.workers)], workdir)
        try:
            result.startup_s = worker.wait_ready()
            result.rss_empty_bytes = worker.rss_before_folding()
            if worker.handled_at_ready:
                result.notes.append(f"{worker.handled_at_ready:,} events of the snapshot load were handled before "
                                    "every worker had joined and every partition was owned")
            processes = {"workers": [m.process.pid for m in worker.members], "broker": [broker.process.pid],
                         "bench": [os.getpid()]}
            cpu_at = []

            def after_part(part: int) -> None:
                cpu_at.append({role: sum(map(_cpu_seconds, pids)) for role, pids in processes.items()})
                if part == 0:  # the snapshot load: memory before any change
                    result.rss_snapshot_bytes = worker.rss()

            marks = worker.follow(counts, on_mark=after_part)
            result.load_events_per_s = counts[0] / (marks[0] - worker.first_seen)
            result.batched_events_per_s = counts[1] / (marks[1] - marks[0])
            result.single_events_per_s = counts[2] / (marks[2] - marks[1])
            for phase, part in (("batched", 1), ("single", 2)):
                used = {role: cpu_at[part][role] - cpu_at[part - 1][role] for role in processes}
                result.cpu_per_event_us[phase] = {
                    **{role: seconds / counts[part] * 1e6 for role, seconds in used.items()},
                    "cores_busy": sum(used.values()) / (marks[part] - marks[part - 1])}
            result.rss_busy_bytes = worker.rss()
            # Resident memory right after folding includes the heap freed since the worker's last
            # trim (streams/heap.py); the state's own footprint shows once the next trim has run.
            time.sleep(config.heap_trim_interval + 1)
            result.rss_loaded_bytes = worker.rss()
            probe = _probe_district(settings, worker, snapshot)
            for rate, per_record in config.latency_loads:
                say(f"latency at {rate:,.0f} events/s, {per_record} per record / 端到端延迟 …")
                result.latency.append(_latency(settings, worker, probe, sim, rate, per_record, config.latency_seconds))
            result.notes.append("latency: publish of a probe event to its change showing in the worker's live state, "
                                "read through /report?district (the same state /metrics exports at scrape time)")
            say("/metrics cardinality / 指标规模 …")
            _scrapes(result, worker, settings, sim)
            # In service Prometheus scrapes all the time: the rendered text each worker keeps is
            # part of its footprint.
            time.sleep(config.heap_trim_interval + 1)
            result.rss_scraped_bytes = worker.rss()
        finally:
            worker.stop()
        loaded = max(0, result.rss_loaded_bytes - result.rss_empty_bytes)
        snapshot_only = max(0, result.rss_snapshot_bytes - result.rss_empty_bytes)
        result.memory_per_10k_schools_snapshot_bytes = snapshot_only / result.schools * 10_000
        result.memory_per_10k_schools_bytes = loaded / result.schools * 10_000
        result.national_memory_estimate_bytes = result.rss_empty_bytes + loaded / result.schools * 207_000
        changes = (counts[1] + counts[2]) / result.schools
        result.notes.append(f"memory after the snapshot load, and after {changes:.0f} changes per school "
                            "(each teacher or class a change names stays in its school's state)")
        say("startup and recovery from the changelog / 启动与恢复 …")
        restart = _recovery(broker, workdir, config, load, counts[0])
        result.recovery_s = restart.recovered_s
        result.metrics_scrape_after_restart_s = restart.first.seconds
        result.metrics_behind_after_restart = restart.first.behind
        result.metrics_complete_after_restart_s = restart.complete_s
        if restart.during_build is not None:
            result.metrics_scrape_during_build_s = restart.during_build.seconds
            result.metrics_behind_during_build = restart.during_build.behind
    return result


def render(result: BenchResult) -> str:
    """The result as the table the command prints; the last line is `ratio=…`."""
    rows = [
        ("schools / 学校数", f"{result.schools:,}"),
        ("workers / 工作进程", f"{result.config['workers']} (one consumer group, {result.config['partitions']} partitions)"),
        ("raw aiokafka consume (ceiling) / 原始消费上限", f"{result.raw_events_per_s:,.0f} events/s"),
        ("worker: snapshot load / 快照加载", f"{result.load_events_per_s:,.0f} events/s"),
        ("worker: batched changes / 批量变更", f"{result.batched_events_per_s:,.0f} events/s "
         f"({result.batched_events_per_record:.1f} per record on average: one record per school's sync, "
         f"at most {result.config['events_per_record']}; {result.batched_schools_touched:,} schools touched)"),
        ("worker: one event per record / 单事件记录", f"{result.single_events_per_s:,.0f} events/s"),
        ("plain Faust agent, one event per record / 无状态代理",
         f"{result.plain_agent_single_events_per_s:,.0f} events/s (one process counting the same records, no state: "
         "the ceiling for single events)" if result.config["plain_agent"] else "not measured in a quick run"),
        *((f"CPU per event, {phase} / 每事件 CPU", f"workers {cpu['workers']:,.0f} µs, broker {cpu['broker']:,.0f} µs, "
           f"bench {cpu['bench']:,.0f} µs ({cpu['cores_busy']:.2f} cores busy on average)")
          for phase, cpu in result.cpu_per_event_us.items()),
        ("in-process, no Kafka or Faust / 进程内（无 Kafka/Faust）",
         f"{result.in_process_batched_events_per_s:,.0f} events/s batched, "
         f"{result.in_process_single_events_per_s:,.0f} events/s one per record"),
        *((f"latency p50 / p99 at {m['offered_rate']:,.0f} events/s, {m['events_per_record']} per record / 延迟",
           f"{m['p50_s'] * 1000:,.0f} ms / {m['p99_s'] * 1000:,.0f} ms ({m['probes']} probes, {m['lost']} not seen "
           f"within 10 s; backlog cleared {m['caught_up_after_s']:.1f} s after the load stopped)")
          for m in result.latency),
        ("startup / 启动", f"{result.startup_s:.1f} s"),
        ("recovery from changelog / 恢复", f"{result.recovery_s:.1f} s"),
        ("/metrics after a restart / 重启后首次抓取", f"{result.metrics_scrape_after_restart_s:.2f} s, "
         f"{result.config['scrape_after_restart']:.0f} s after the restarted worker held all "
         f"{result.schools:,} schools (one worker, the snapshot load only); {result.metrics_behind_after_restart:,} "
         f"districts behind in it, none {result.metrics_complete_after_restart_s:.1f} s after it began; "
         + (f"{result.metrics_scrape_during_build_s:.2f} s while it built its state, {result.metrics_behind_during_build:,} "
            "districts behind in it" if result.metrics_scrape_during_build_s is not None
            else "not caught building its state")),
        ("memory per 10,000 schools / 每万校内存", f"{result.memory_per_10k_schools_snapshot_bytes / (1 << 20):,.0f} MiB "
         f"after the load, {result.memory_per_10k_schools_bytes / (1 << 20):,.0f} MiB after the changes"),
        ("resident memory after the changes / 变更后常驻内存", f"{result.rss_busy_bytes / GIB:,.2f} GiB right after "
         f"folding, {result.rss_loaded_bytes / GIB:,.2f} GiB once freed heap went back to the OS, "
         f"{result.rss_scraped_bytes / GIB:,.2f} GiB after the /metrics scrapes (with the rendered text kept)"),
        ("national estimate (207k schools) / 全国估算", f"{result.national_memory_estimate_bytes / GIB:,.2f} GiB"),
        ("/metrics, all schools / 全部学校", f"{result.metrics_series_all:,} series, {result.metrics_scrape_all_s:.2f} s "
         f"with every school changed since the last scrape (not asking for gzip; {result.metrics_behind_all:,} "
         f"districts behind in it, none "
         f"{result.metrics_complete_all_s:.1f} s after it began; event loop held at most "
         f"{result.metrics_cold_scrape_longest_pause_s:.2f} s meanwhile), "
         f"{result.metrics_scrape_unchanged_s:.2f} s with none changed since, "
         f"{result.metrics_scrape_after_changes_s:.2f} s after {SCRAPE_CHANGES} changes since "
         f"({result.metrics_behind_after_changes:,} districts behind in it), those two asking for gzip as "
         f"Prometheus does ({result.metrics_gzip_bytes / (1 << 20):,.1f} MiB sent for "
         f"{result.metrics_text_bytes / (1 << 20):,.1f} MiB of text); not asking for it, "
         f"{result.metrics_scrape_uncompressed_s:.2f} s with none changed"),
        ("/metrics, off-standard schools only / 仅未达标学校",
         f"{result.metrics_series_violations:,} series, {result.metrics_scrape_violations_s:.2f} s "
         "with every district rendered (in-process, the same records)"),
        ("partitions moving (in-process) / 分区迁移", _moving(result.partitions_moving)),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += [f"note: {n}" for n in result.notes]
    lines.append(f"ratio={result.ratio:.3f}")
    return "\n".join(lines)


def _moving(timings: dict[str, float]) -> str:
    return (f"at a start, sync {timings['start_sync_s']:.2f} s (its render: the line above); keeping half, "
            f"sync {timings['keep_half_sync_s']:.2f} s + render {timings['keep_half_render_s']:.2f} s; gaining "
            f"that half back, sync {timings['gain_half_sync_s']:.2f} s + render {timings['gain_half_render_s']:.2f} s; "
            f"syncs in steps, the event loop held at most {timings['longest_step_s']:.3f} s")


def _in_process(result: BenchResult, load, batched, singles, partitions: int) -> None:
    """Events per second of the worker's pipeline alone over the same records (decode, fold,
    store, evaluation at the worker's default interval), batched and one per record: what the
    domain code allows before Kafka and Faust take their share. Then, as a worker owning every
    partition: its live state built from the tables as at a start, the `/metrics` text of that
    state under the off-standard-only policy rendered whole, and the sync and render when half of
    the partitions move away and come back."""
    import datetime as dt

    from alerts.metrics import MetricsText
    from rules.evaluate import Assessor
    from rules.pack import load_packs
    from streams.freezing import Freezer
    from streams.live import LiveAssessment, LiveSource
    from streams.pipeline import Pipeline

    defaults = Settings.model_fields
    interval = defaults["evaluate_interval"].default
    freezer = Freezer(defaults["full_collection_interval"].default)
    assessor = Assessor(load_packs(defaults["rules"].default), dt.date.fromisoformat(AS_OF))
    schools, districts = {}, {}
    pipeline = Pipeline(schools, districts, LiveAssessment(assessor))

    def fold(records) -> float:
        started = last = time.perf_counter()
        for key, value, _ in records:
            pipeline.handle(value, zlib.crc32(key.encode()) % partitions, key)
            if time.perf_counter() - last >= interval:
                store()
                pipeline.flush()
                freezer.after_round()  # as the worker's evaluation timer does
                last = time.perf_counter()
        store()
        pipeline.flush()
        return sum(n for _, _, n in records) / (time.perf_counter() - started)

    def store() -> None:
        for write in pipeline.take_writes():
            (schools if write.table == "schools" else districts)[write.key] = write.state

    from streams.cli import WORKER_GC_THRESHOLDS

    thresholds = gc.get_threshold()
    gc.set_threshold(*WORKER_GC_THRESHOLDS)  # as in the worker
    # The bench process also holds the generated country (gigabytes at national scale), which a
    # worker does not: keep the collector from scanning it while the pipeline is timed.
    gc.collect()
    gc.freeze()
    try:
        fold(load)
        result.in_process_batched_events_per_s = fold(batched)
        result.in_process_single_events_per_s = fold(singles)
        # As a worker's start: every partition's districts built from the tables, then rendered;
        # a worker starts with no live state (this one evaluated the records as it folded them).
        everything = frozenset(range(partitions))
        pipeline.live.clear()
        gc.freeze()
        result.partitions_moving["start_sync_s"], longest = _sync_as_a_worker(pipeline, everything)
        gc.freeze()  # what the sync built, as a worker's evaluation round does
        metrics = MetricsText(LiveSource(pipeline.live), school_series="violations")
        started = time.perf_counter()
        result.metrics_series_violations = _series(metrics.render())
        result.metrics_scrape_violations_s = time.perf_counter() - started
        result.partitions_moving.update(_partitions_moving(pipeline, metrics, everything))
        result.partitions_moving["longest_step_s"] = max(longest, result.partitions_moving["longest_step_s"])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _partitions_moving(pipeline, metrics, everything: frozenset[int]) -> dict[str, float]:
    """Seconds to sync the live state to new partitions and then render `/metrics`, as a worker
    does when a second one joins the group (it keeps half of its partitions) and when that one
    leaves (the half comes back). `metrics` holds the render of `everything`."""
    half = frozenset(sorted(everything)[: len(everything) // 2])
    timings = {"longest_step_s": 0.0}
    for name, assigned in (("keep_half", half), ("gain_half", everything)):
        timings[f"{name}_sync_s"], longest = _sync_as_a_worker(pipeline, assigned)
        timings["longest_step_s"] = max(timings["longest_step_s"], longest)
        started = time.perf_counter()
        metrics.render()
        timings[f"{name}_render_s"] = time.perf_counter() - started
        gc.freeze()
    return timings


def _sync_as_a_worker(pipeline, assigned: frozenset[int]) -> tuple[float, float]:
    """Seconds to sync `pipeline` to `assigned` in steps, as a worker does, and the longest the
    event loop was held meanwhile (what a worker's folding and answers wait at most)."""
    import asyncio

    async def run() -> tuple[float, float]:
        longest, last = 0.0, time.perf_counter()

        async def watch() -> None:
            nonlocal longest, last
            while True:
                now = time.perf_counter()
                longest, last = max(longest, now - last), now
                await asyncio.sleep(0)

        watcher = asyncio.ensure_future(watch())
        await asyncio.sleep(0)
        started = time.perf_counter()
        await pipeline.sync_in_steps(assigned, between_steps=gc.freeze)  # as a worker's freezer does
        took = time.perf_counter() - started
        watcher.cancel()
        return took, longest

    return asyncio.run(run())


# --- records ---------------------------------------------------------------------------------------

def _load_records(events) -> list[tuple[str, bytes, int]]:
    by_district: dict[str, list] = {}
    for event in events:
        by_district.setdefault(event.district, []).append(event)
    return [(d, _batch(items[i:i + 500]), len(items[i:i + 500]))
            for d, items in by_district.items() for i in range(0, len(items), 500)]


def _sync_records(events, per_record: int) -> list[tuple[str, bytes, int]]:
    """Changes grouped as school systems send them: one record per school's sync (a district's
    own figures in its office's)."""
    by_school: dict[str, list] = {}
    for event in events:
        by_school.setdefault(event.school if isinstance(event, SchoolEvent) else event.district, []).append(event)
    records = []
    for items in by_school.values():
        for i in range(0, len(items), per_record):
            chunk = items[i:i + per_record]
            records.append((chunk[0].district, _batch(chunk), len(chunk)))
    random.Random(7).shuffle(records)
    # A rotation names two schools; keep each school's records in order within its district key.
    return records


def _batch(events) -> bytes:
    return ('{"events":[' + ",".join(e.model_dump_json() for e in events) + "]}").encode()


def _settings(broker: EmbeddedBroker, data_dir: Path, config: BenchConfig, batch_size: int | None,
              app_id: str = "junheng-bench", topic: str = "bench.events") -> Settings:
    return load_settings(broker=broker.url, app_id=app_id, topic=topic, dead_letter_topic=f"{topic}.dead-letter",
                         partitions=config.partitions, web_port=free_port(), data_dir=data_dir,
                         producer_max_batch_size=batch_size, as_of=AS_OF, school_series="all",
                         session_timeout=config.session_timeout, heap_trim_interval=config.heap_trim_interval)


def _topics(settings: Settings):
    from streams.app import topic_partitions

    return topic_partitions(settings)


def _produce(settings: Settings, records) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=20, batch_size=1 << 20,
                             max_request_size=64 << 20, acks=1)
    for key, value, count in records:
        producer.send(settings.topic, key=key.encode(), value=value, headers=[("n", str(count).encode())])
    producer.flush(timeout=300)
    producer.close()


def _raw_rate(settings: Settings, total: int) -> float:
    """Events per second a bare aiokafka consumer reads the topic at (records and headers only)."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def consume() -> float:
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                                    max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20)
        await consumer.start()
        try:
            tps = [TopicPartition(settings.topic, p) for p in range(settings.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            seen, started = 0, time.perf_counter()
            deadline = started + 600
            while seen < total and time.perf_counter() < deadline:
                for records in (await consumer.getmany(timeout_ms=1000, max_records=50_000)).values():
                    for record in records:
                        seen += int(dict(record.headers).get("n", b"1"))
            return seen / (time.perf_counter() - started)
        finally:
            try:
                await consumer.stop()
            except asyncio.CancelledError:
                pass

    return asyncio.run(consume())


def _plain_rate(settings: Settings, workdir: Path, total: int, timeout: float = 600) -> float:
    """Records per second a plain stateless Faust agent (streams/plain.py) with the worker's
    settings reads `total` single-event records at, from its first record to its last."""
    from streams.security import settings_env

    with open(workdir / "plain.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "streams.plain"], env={**os.environ, **settings_env(settings)},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the plain agent exited with code {process.returncode}; see {workdir / 'plain.log'}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/count", timeout=10) as resp:
                    seen = json.load(resp)
            except (OSError, ValueError):  # not listening yet
                seen = {}
            if seen.get("count", 0) >= total:
                return (seen["count"] - 1) / (seen["latest"] - seen["first"])
            time.sleep(0.05)
        raise RuntimeError(f"the plain agent did not read {total:,} records within {timeout:.0f} s")
    finally:
        _kill(process)


def _kill(process: subprocess.Popen) -> None:
    """Kill a process the bench started (SIGKILL, as a crash would), if it still runs, and reap it."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used, all its threads together (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the worker ------------------------------------------------------------------------------------

class _Worker:
    def __init__(self, settings: Settings, log: Path):
        from streams.cli import start_worker_process

        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.web_port}"
        self.started = time.perf_counter()
        self.process = start_worker_process(settings, log)
        self.rss_before_folding = 0

    def ready(self) -> dict:
        try:
            with urllib.request.urlopen(f"{self.url}/ready", timeout=30) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            return json.load(exc)
        except (OSError, ValueError):
            return {}

    def report(self, district: str) -> dict | None:
        """The worker's report of `district`; None when it does not hold it (404), or cannot
        tell yet (503). Either answer comes after the same sync, and evaluation, as a report."""
        try:
            with urllib.request.urlopen(f"{self.url}/report?district={district}", timeout=60) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 503):
                return None
            raise

    def rss(self) -> int:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def kill(self) -> None:
        _kill(self.process)


class _Workers:
    """Worker processes of one consumer group, read together: ready when every partition is
    owned, handled events and memory summed, a district's report from the worker owning it."""

    def __init__(self, settings: list[Settings], workdir: Path, log: str = "worker"):
        self.members = [_Worker(s, workdir / f"{log}{n or ''}.log") for n, s in enumerate(settings)]
        self.started = time.perf_counter()
        self.first_seen = 0.0
        self.handled_at_ready = 0
        self.partitions = settings[0].partitions

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    def ready(self) -> dict:
        return self._summed([m.ready() for m in self.members])

    def _summed(self, states: list[dict]) -> dict:
        owned = [p for state in states for p in state.get("partitions", [])]
        return {"ready": all(s.get("ready") for s in states) and sorted(owned) == list(range(self.partitions)),
                "handled": sum(s.get("handled", 0) for s in states),
                "schools": sum(s.get("schools", 0) for s in states),
                "building": any(s.get("building") for s in states)}

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds from the start until every member is ready and every partition owned.
        Meanwhile it notes when the first event was handled (a member that owns partitions
        before the others have joined folds at once) and each member's memory at its last
        answer before it handled any."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for member in self.members:
                if member.process.poll() is not None:
                    raise RuntimeError(f"a worker exited with code {member.process.returncode}")
            states = [m.ready() for m in self.members]
            for member, state in zip(self.members, states):
                if state and not state.get("handled"):
                    member.rss_before_folding = member.rss()
            summed = self._summed(states)
            if summed["handled"] and not self.first_seen:
                self.first_seen = time.perf_counter()
            if summed["ready"]:
                self.handled_at_ready = summed["handled"]
                return time.perf_counter() - self.started
            time.sleep(0.05)
        raise RuntimeError("the workers were not ready in time")

    def rss_before_folding(self) -> int:
        """The members' memory before they handled any event, each read at its last answer
        before its first (its memory now if it never answered before that)."""
        return sum(m.rss_before_folding or m.rss() for m in self.members)

    def follow(self, counts: list[int], timeout: float = 3600, on_mark=lambda part: None) -> list[float]:
        """When the handled count passed the end of each part, each stamp followed by a read of
        the report, which evaluates every change not yet evaluated."""
        marks, target, deadline = [], 0, time.perf_counter() + timeout
        for count in counts:
            target += count
            while time.perf_counter() < deadline:
                handled = self.ready().get("handled", 0)
                if handled and not self.first_seen:
                    self.first_seen = time.perf_counter()
                if handled >= target:
                    self.report("none")
                    marks.append(time.perf_counter())
                    on_mark(len(marks) - 1)
                    break
                time.sleep(0.02)
            else:
                raise RuntimeError(f"the worker handled fewer than {target} events in {timeout:.0f} s")
        return marks

    def report(self, district: str) -> dict:
        """The report of `district` from the member holding it; asked of every member, which
        makes each evaluate what it folded (`follow` asks for a district nobody holds for that).
        An empty report when no member holds it."""
        reports = [r for r in (m.report(district) for m in self.members) if r is not None]
        return next(iter(reports), {"districts": [], "schools": [], "violations": []})

    def rss(self) -> int:
        return sum(m.rss() for m in self.members)

    def stop(self) -> None:
        """Kill every member: the bench keeps nothing of them, and a graceful stop takes each
        about 2 s (mode's Worker waits for tasks that never end before closing its loop)."""
        for member in self.members:
            member.kill()


def _latency(settings: Settings, worker: _Workers, probe_school, sim, rate: float, per_record: int,
             seconds: float) -> dict:
    """Publish-to-effect latency of probe events, sent every 100 ms by their own thread, while
    simulated changes arrive at `rate` events per second in records of `per_record` events."""
    from kafka import KafkaProducer

    from schemas.events import EnrolmentReported

    stop = threading.Event()
    sent = [0]
    sent_at: dict[int, float] = {}
    rng = random.Random(rate)
    handled_before = worker.ready().get("handled", 0)

    # Made before the clock starts: the publishers are other machines' work, and the bench
    # process kept about half of one of this machine's two cores busy while it generated and
    # encoded the events on the fly (and read the probe).
    districts = sorted(sim.district_schools)
    records = []
    for _ in range(int(rate * seconds / per_record) + 1):
        # A record is one district platform's batch: events of one district, sharing its key.
        district = rng.choice(districts)
        events = [sim.next_event(district) for _ in range(per_record)]
        records.append((district.encode(), events[0].model_dump_json().encode() if per_record == 1 else _batch(events)))

    def load() -> None:
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
        started = time.perf_counter()
        for key, value in records:
            if stop.is_set():
                break
            producer.send(settings.topic, key=key, value=value)
            sent[0] += per_record
            pause = started + sent[0] / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        producer.flush()
        producer.close()

    def probes() -> None:
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=0)
        version = int(time.time() * 1000)
        while not stop.is_set():
            version += 1
            event = EnrolmentReported(event_id=f"probe-{version}", source="bench-probe", district=probe_school.district,
                                      school=probe_school.id, occurred_at=sim.clock, version=version,
                                      level="primary", students=1000 + version % 997)
            sent_at[event.students] = time.perf_counter()
            producer.send(settings.topic, key=event.district.encode(), value=event.model_dump_json().encode())
            producer.flush()
            stop.wait(0.1)
        producer.close()

    threads = [threading.Thread(target=load, daemon=True), threading.Thread(target=probes, daemon=True)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    latencies: dict[int, float] = {}
    key_teachers = probe_school.sections["primary"].key_teachers
    while time.perf_counter() - began < seconds + 10:
        if time.perf_counter() - began >= seconds:
            stop.set()
        students = _probe_students(worker, probe_school, key_teachers)
        if students in sent_at and students not in latencies:
            latencies[students] = time.perf_counter() - sent_at[students]
        # Done once the last probe is seen: each earlier one was seen by then (see below).
        if stop.is_set() and not threads[1].is_alive() and sent_at and max(sent_at, key=sent_at.get) in latencies:
            break
        # Each read costs the worker a flush and a report; reading every 20 ms adds 10 ms to a
        # latency on average and keeps the reads' own share of the worker small.
        time.sleep(PROBE_READ_EVERY)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = max(time.perf_counter() - began, 1e-9)
    caught_up = _catch_up(worker, handled_before + sent[0] + len(sent_at))
    # A probe overtaken by a later one before a read is counted as seen at that read.
    ordered = sorted(sent_at.items(), key=lambda kv: kv[1])
    seen, last = [], None
    for students, at in reversed(ordered):
        if students in latencies:
            last = latencies[students] + sent_at[students]
        if last is not None:
            seen.append(last - at)
    seen.sort()
    return {"offered_rate": sent[0] / min(elapsed, seconds), "events_per_record": per_record,
            "caught_up_after_s": caught_up,
            "probes": len(ordered), "lost": len(ordered) - len(seen),
            "p50_s": statistics.median(seen) if seen else float("nan"),
            "p99_s": seen[min(len(seen) - 1, int(len(seen) * 0.99))] if seen else float("nan")}


def _catch_up(worker: _Workers, target: int, timeout: float = 300) -> float:
    """Seconds until the worker has handled `target` events, so that the next phase starts clean."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if worker.ready().get("handled", 0) >= target:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError(f"the worker did not catch up within {timeout:.0f} s")


def _probe_students(worker: _Workers, school, key_teachers: int) -> int | None:
    """The probe school's primary enrolment as the live state shows it, from its R2."""
    report = worker.report(school.district)
    for entry in report["schools"]:
        if entry["id"] == school.id:
            r2 = entry["sections"]["primary"]["indicators"]["R2"]["value"]
            if r2:
                # R2 = key teachers × 100 / students, rounded to 4 places in the report.
                for students in range(1000, 1997):
                    if round(key_teachers * 100 / students, 4) == r2:
                        return students
    return None


def _probe_district(settings: Settings, worker: _Workers, snapshot):
    """A district of one school that nothing but the probes changes, loaded like any other."""
    from schemas.snapshot import Snapshot
    from streams.load import snapshot_events

    # At least 10 key teachers keeps R2 = key × 100 / students distinct at 4 places for 1000–1996.
    template = next(s for s in snapshot.schools
                    if s.kind.value == "primary" and (s.sections["primary"].key_teachers or 0) >= 10)
    school = template.model_copy(update={"id": "999999-001", "district": "999999"})
    district = snapshot.districts[0].model_copy(update={"id": "999999", "name": "探针区县"})
    probe = Snapshot(as_of=snapshot.as_of, districts=[district], schools=[school])
    handled = worker.ready().get("handled", 0)
    _produce(settings, _load_records(snapshot_events(probe)))
    deadline = time.perf_counter() + 60
    while worker.ready().get("handled", 0) < handled + 2 and time.perf_counter() < deadline:
        time.sleep(0.02)
    return school


def _scrapes(result: BenchResult, worker: _Workers, settings: Settings, sim) -> None:
    # The first scrape renders every district; the second finds nothing changed; the third finds
    # what a scrape in service finds, some schools changed here and there. With several workers,
    # each serves its share: the slowest worker's scrape is reported, and the series of all.
    # A scrape answers once its render budget is spent (JUNHENG_SCRAPE_BUDGET), the districts it
    # did not render again showing older lines; their render goes on, and the bench scrapes again
    # until none is behind, for the time that took and the series of the whole text. Those
    # scrapes do not ask for gzip, as in runs before gzip: decompressing a national share's text
    # in the bench process takes CPU from the workers while the bench times their answers (the
    # one national run whose scrapes here asked for gzip held the loop up to 0.75 s, against
    # 0.26 to 0.62 s in earlier runs; the cause was not established). Later scrapes ask for it,
    # as Prometheus does.
    with _LongestAnswer(worker.urls) as pause:
        began = time.perf_counter()
        cold = [_scrape(url, compressed=False) for url in worker.urls]
        complete = _until_complete(worker.urls, began, cold)
    result.metrics_cold_scrape_longest_pause_s = pause.longest
    warm = [_scrape(url) for url in worker.urls]
    # What a tool that does not ask for gzip (curl without --compressed) waits for.
    uncompressed = [_scrape(url, compressed=False) for url in worker.urls]
    # In service a scrape finds what changed in one scrape interval: a few hundred changes in 15 s
    # on a busy day nationally (two million changes a day is 23 a second).
    handled = worker.ready().get("handled", 0)
    _produce(settings, [(e.district, e.model_dump_json().encode(), 1) for e in sim.events(SCRAPE_CHANGES)])
    _catch_up(worker, handled + SCRAPE_CHANGES)
    after_changes = [_scrape(url) for url in worker.urls]
    result.metrics_scrape_after_changes_s = max(scrape.seconds for scrape in after_changes)
    result.metrics_behind_after_changes = sum(scrape.behind for scrape in after_changes)
    result.metrics_scrape_all_s = max(scrape.seconds for scrape in cold)
    result.metrics_behind_all = sum(scrape.behind for scrape in cold)
    result.metrics_complete_all_s = max(seconds for seconds, _ in complete)
    result.metrics_series_all = sum(scrape.series for _, scrape in complete)
    result.metrics_scrape_unchanged_s = max(scrape.seconds for scrape in warm)
    result.metrics_scrape_uncompressed_s = max(scrape.seconds for scrape in uncompressed)
    result.metrics_text_bytes = sum(len(scrape.body) for scrape in warm)
    result.metrics_gzip_bytes = sum(scrape.sent for scrape in warm)
    result.notes.append("the all-schools scrapes are the worker's real /metrics over HTTP; the off-standard-only "
                        "text is rendered whole in the bench process, from the in-process pipeline's state after "
                        "the same records")


class _LongestAnswer:
    """The longest a worker took to answer `/ready` while something else ran: how long its
    event loop, which also folds events, was held at most."""

    def __init__(self, urls: list[str], every: float = 0.01):
        self.urls, self.every, self.longest = urls, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> "_LongestAnswer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            for url in self.urls:
                started = time.perf_counter()
                try:
                    urllib.request.urlopen(f"{url}/ready", timeout=600).close()
                except urllib.error.HTTPError:
                    pass
                self.longest = max(self.longest, time.perf_counter() - started)
            self._stop.wait(self.every)


@dataclass
class _Scrape:
    seconds: float
    body: bytes
    behind: int  # districts shown with older lines or left out (junheng_metrics_districts_behind)
    ended: float  # time.perf_counter() when the body had been read
    sent: int  # bytes on the wire: the body's length, gzip-encoded if it was

    @property
    def series(self) -> int:
        return _series(self.body)


def _scrape(url: str, compressed: bool = True) -> _Scrape:
    """One scrape of `url`'s /metrics, as Prometheus makes it (asking for gzip) unless not
    `compressed`; its time is until the body was read, before the bench decompresses it."""
    request = urllib.request.Request(f"{url}/metrics", headers={"Accept-Encoding": "gzip"} if compressed else {})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as resp:
        body = resp.read()
        encoding = resp.headers.get("Content-Encoding")
    ended = time.perf_counter()
    sent = len(body)
    if encoding == "gzip":
        body = gzip.decompress(body)
    # Found from the end, where the pipeline's families are: a regular expression over a national
    # share's 130 MiB took 0.66 s, holding the GIL that _LongestAnswer's polling thread needs.
    at = body.rindex(b"\njunheng_metrics_districts_behind ") + len(b"\njunheng_metrics_districts_behind ")
    return _Scrape(ended - started, body, int(float(body[at:body.index(b"\n", at)])), ended, sent)


def _until_complete(urls: list[str], began: float, firsts: list[_Scrape], every: float = 2.0,
                    timeout: float = 600) -> list[tuple[float, _Scrape]]:
    """Per worker, seconds from `began` until a scrape of it showed no district behind (its
    scrape in `firsts` or a later one), and that scrape. Each round scrapes every worker still
    behind, `every` seconds apart (each scrape sends the whole text, 131 MiB nationally, which the
    render going on waits for), so the figure is that coarse."""
    deadline = time.perf_counter() + timeout
    latest = dict(enumerate(firsts))
    while True:
        behind = [n for n, scrape in latest.items() if scrape.behind]
        if not behind:
            return [(latest[n].ended - began, latest[n]) for n in range(len(urls))]
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{urls[behind[0]]}/metrics still had {latest[behind[0]].behind} districts behind "
                               f"after {timeout:.0f} s")
        time.sleep(every)
        latest.update((n, _scrape(urls[n], compressed=False)) for n in behind)


def _series(text: bytes) -> int:
    # Every line ends with a newline and is a sample unless it starts with "#".
    return text.count(b"\n") - text.count(b"\n#") - text.startswith(b"#")


def _wait_committed(settings: Settings, timeout: float = 600) -> None:
    """Until the worker's consumer group has committed every record of its events topic, which
    it does only once the states and positions those records lead to are in the changelogs."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def wait() -> None:
        # Not subscribed: it reads the group's committed offsets without joining the group.
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=settings.app_id,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(settings.topic, p) for p in range(settings.partitions)]
            ends = await consumer.end_offsets(tps)
            deadline = time.perf_counter() + timeout
            while time.perf_counter() < deadline:
                committed = [await consumer.committed(tp) or 0 for tp in tps]
                if all(offset >= ends[tp] for offset, tp in zip(committed, tps)):
                    return
                await asyncio.sleep(0.1)
            raise RuntimeError(f"the worker did not commit its records within {timeout:.0f} s")
        finally:
            await consumer.stop()

    asyncio.run(wait())


@dataclass
class _Restart:
    recovered_s: float  # from restarting the killed worker to its state holding every school
    first: _Scrape  # its first /metrics scrape, `BenchConfig.scrape_after_restart` seconds later
    complete_s: float  # from that scrape's start until one showed no district behind
    during_build: _Scrape | None  # a scrape while it built its state, if the bench caught it


def _recovery(broker: EmbeddedBroker, workdir: Path, config: BenchConfig, load, total: int) -> _Restart:
    """A killed worker restarted and scraped (see `_Restart`); the worker writes its changelog
    one record per batch, the setting under which Tansu recovers tables exactly."""
    settings = _settings(broker, workdir / "recovery", config, batch_size=1, app_id="junheng-bench-recovery",
                         topic="bench.recovery")
    declare_topics(settings.bootstrap_servers, _topics(settings))
    _produce(settings, load)
    worker = _Workers([settings], workdir, log="recovery")
    try:
        worker.wait_ready()
        worker.follow([total])
        schools = worker.ready().get("schools", 0)
        _wait_committed(settings)  # else the restarted worker reads the events again
        worker.members[0].kill()
        restarted = _Workers([settings], workdir, log="recovery")
        try:
            deadline = time.perf_counter() + 600
            during = None
            while time.perf_counter() < deadline:
                state = restarted.ready()
                if state.get("building") and during is None:
                    during = _scrape(restarted.urls[0])
                if state.get("ready") and state.get("schools", 0) >= schools:
                    recovered = time.perf_counter() - restarted.started
                    time.sleep(config.scrape_after_restart)
                    began = time.perf_counter()
                    first = _scrape(restarted.urls[0])
                    ((complete, _),) = _until_complete(restarted.urls, began, [first])
                    return _Restart(recovered, first, complete, during)
                time.sleep(0.05)
            raise RuntimeError("the restarted worker did not recover every school in time")
        finally:
            restarted.stop()
    finally:
        worker.stop()
