"""Commands of the streaming service: worker, load, simulate, status and the embedded `dev`."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from junheng.errors import EXIT_OK, UserError

BATCH_EVENTS = 500
#: The largest request, and so record, load and simulate send (kafka-python's max_request_size).
MAX_RECORD_BYTES = 64 * 1024 * 1024


def at_least(minimum: int, at_most: int | None = None):
    """An argparse type: a whole number no smaller than `minimum` (nor larger than `at_most`)."""
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {minimum}: {text!r} / "
                                             f"应为不小于 {minimum} 的整数")
        if at_most is not None and value > at_most:
            raise argparse.ArgumentTypeError(f"expected a whole number of at most {at_most}: {text!r} / "
                                             f"应为不大于 {at_most} 的整数")
        return value
    return whole


#: Events per second the simulator paces: below one per 1,000 s its pause overflowed the clock,
#: above a million its count did.
RATES = (0.001, 1_000_000)


def check_rate(rate: float) -> None:
    """Refuse a rate of events the simulator cannot pace (zero, negative, infinite, NaN, extreme)."""
    if not (math.isfinite(rate) and RATES[0] <= rate <= RATES[1]):
        raise UserError(f"--rate must be a number of events per second from {RATES[0]:g} to {RATES[1]:,} / "
                        f"速率必须在 {RATES[0]:g} 到 {RATES[1]:,} 之间（每秒事件数）")


def add_connection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", help="Kafka bootstrap URL, kafka://host:port (env JUNHENG_BROKER)")
    p.add_argument("--topic", help="events topic (env JUNHENG_TOPIC, default junheng.events)")
    p.add_argument("--partitions", type=int, help="partitions of junheng's topics (env JUNHENG_PARTITIONS, default 8)")


def settings_from(args: argparse.Namespace, **extra):
    """Settings from flags, falling back to JUNHENG_* environment variables and defaults."""
    from streams.settings import Settings, load_settings

    flags = {k: v for k, v in vars(args).items() if v is not None and k in Settings.model_fields}
    return load_settings(flags, **{k: v for k, v in extra.items() if v is not None})


# --- worker --------------------------------------------------------------------------------------

def configure_worker(p: argparse.ArgumentParser) -> None:
    add_connection_flags(p)
    p.add_argument("--web-port", type=int, help="port of /metrics, /report, /ready (env JUNHENG_WEB_PORT, default 6066)")
    p.add_argument("--web-host", help="address to listen on (env JUNHENG_WEB_HOST, default 127.0.0.1)")
    p.add_argument("--data-dir", type=Path, help="table data directory (env JUNHENG_DATA_DIR)")
    p.add_argument("--store", choices=("memory", "rocksdb"), help="table store (env JUNHENG_STORE, default memory)")
    p.add_argument("--rules", nargs="+", metavar="PACK", help="rule packs (env JUNHENG_RULES as JSON list)")
    p.add_argument("--as-of", help="date the rules are taken at, fixed (env JUNHENG_AS_OF; default: the day in "
                                   "China, followed as it turns)")
    p.add_argument("--school-series", choices=("all", "violations"), help="which schools get per-school series")
    p.add_argument("--producer-max-batch-size", type=int, help=argparse.SUPPRESS)
    p.set_defaults(run=run_worker)


def run_worker(args) -> int:
    from rules.pack import PackError, load_packs
    from streams.app import create_app, faust_worker, topic_partitions
    from streams.broker import BrokerError, declare_topics, wait_for_broker
    from streams.security import kafka_python_config

    settings = settings_from(args)
    can_listen(settings.web_host, settings.web_port)
    made_dir(settings.data_dir, "--data-dir / JUNHENG_DATA_DIR")
    try:
        load_packs(settings.rules)
        wait_for_broker(settings.bootstrap_servers, timeout=settings.broker_wait, config=kafka_python_config(settings))
        declare_topics(settings.bootstrap_servers, topic_partitions(settings), config=kafka_python_config(settings))
    except (PackError, BrokerError) as exc:
        raise UserError(str(exc)) from None
    tune_runtime()
    app = create_app(settings)
    worker = faust_worker(app, settings)
    worker.execute_from_commandline()
    return EXIT_OK


def made_dir(path: Path, named_by: str) -> Path:
    """Create a directory a command writes into, or raise UserError saying which flag or
    variable named it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # mkdir's own word for it, "File exists", reads as no error at all
        raise UserError(f"{named_by} {path}: a file, not a directory / 该路径是文件，不是目录") from None
    except OSError as exc:
        raise UserError(f"{named_by} {path}: cannot create ({exc.strerror}) / 无法创建目录") from None
    return path


def can_listen(host: str, port: int) -> None:
    """Refuse, before anything starts, a web address the worker could not listen on (a port in
    use: Faust would fail at its start with a traceback in its log)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the worker's server does
            probe.bind(address)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --web-port / "
                        f"JUNHENG_WEB_PORT or --web-host / 无法监听该地址，请换一个端口") from None


WORKER_GC_THRESHOLDS = (50_000, 20, 10)


def tune_runtime() -> None:
    """Runtime settings for a long-running worker, before its event loop exists."""
    import gc

    import mode.loop

    # uvloop runs Faust's per-record futures and callbacks faster than asyncio's own loop.
    mode.loop.use("uvloop")
    # A worker keeps millions of long-lived objects (school states, live results) and allocates
    # fast; Python's default first-generation threshold of 700 makes the collector rescan the
    # survivors every few hundred allocations (about a quarter of the in-process fold time).
    gc.set_threshold(*WORKER_GC_THRESHOLDS)


# --- load ----------------------------------------------------------------------------------------

def configure_load(p: argparse.ArgumentParser) -> None:
    p.add_argument("snapshot", help="snapshot file, JSON or YAML")
    add_connection_flags(p)
    p.add_argument("--revision", type=at_least(0, at_most=2**62), default=0,  # an event version's range
                   help="raise to replace an already loaded snapshot of the same date (default 0); at the same "
                        "revision, each record that differs is dead-lettered")
    p.set_defaults(run=run_load)


def run_load(args) -> int:
    from junheng.cli import read_snapshot
    from streams.load import snapshot_events

    settings = settings_from(args)
    snapshot = read_snapshot(args.snapshot)
    events = snapshot_events(snapshot, revision=args.revision)
    not_ahead(args.snapshot, events, settings)
    sent = publish(settings, events)
    print(f"loaded {args.snapshot}: {len(snapshot.districts)} districts, {len(snapshot.schools)} schools, "
          f"{sent} events in batches to {settings.topic} / 快照已发布")
    return EXIT_OK


def not_ahead(path: str, events: list, settings) -> None:
    """Refuse a snapshot whose as_of the workers would refuse, dated ahead of the clock
    (streams/future.py), before any of its events is sent: its every event would be dead-lettered."""
    from streams import future

    horizon = future.Horizon(time.time(), settings.future_tolerance, ("this machine's clock", "本机时钟"))
    reason = horizon.refuses(events[0]) if events else None
    if reason is not None:
        raise UserError(f"{path}: {reason}")


def broker_ready(settings) -> None:
    """Wait for the broker and declare junheng's topics, or raise UserError: a topic a producer
    created by sending to it would get the broker's default partition count, not the tables'."""
    from streams.app import topic_partitions
    from streams.broker import BrokerError, declare_topics, wait_for_broker
    from streams.security import kafka_python_config

    try:
        wait_for_broker(settings.bootstrap_servers, timeout=settings.broker_wait, config=kafka_python_config(settings))
        declare_topics(settings.bootstrap_servers, topic_partitions(settings), config=kafka_python_config(settings))
    except BrokerError as exc:
        raise UserError(str(exc)) from None


def publish(settings, events, batch: int = BATCH_EVENTS) -> int:
    """Publish events in batch records keyed by district, in order per district."""
    broker_ready(settings)
    by_district: dict[str, list] = {}
    for event in events:
        by_district.setdefault(event.district, []).append(event)
    with producing(settings, flush_timeout=60) as send:
        for district, items in by_district.items():
            for start in range(0, len(items), batch):
                chunk = items[start:start + batch]
                send(district.encode(), ('{"events":[' + ",".join(e.model_dump_json() for e in chunk) + "]}").encode())
    return len(events)


@contextmanager
def producing(settings, flush_timeout: float):
    """A `Sending` to the events topic; when the block ends every record is acknowledged, or
    UserError: a broker that stops taking records meanwhile is the user's to know about, in one
    line, as soon as a record fails (at the latest `settings.send_timeout` after it was sent)."""
    from kafka.errors import KafkaError, MessageSizeTooLargeError

    producer = make_producer(settings)
    sending = Sending(producer, settings.topic)
    try:
        yield sending
        producer.flush(timeout=flush_timeout)
        sending.check()
    except MessageSizeTooLargeError as exc:  # the producer's own limit: not the broker's doing
        raise UserError(f"a record is larger than the {MAX_RECORD_BYTES >> 20} MiB one Kafka request carries "
                        f"({exc}) / 单条记录超过 {MAX_RECORD_BYTES >> 20} MiB 上限") from None
    except KafkaError as exc:
        raise UserError(f"the broker stopped taking events ({exc}); those not acknowledged can be sent "
                        f"again / Kafka 代理不再接收事件，未确认的事件可重新发送") from None
    finally:
        _close_quietly(producer)


class Sending:
    """`sending(key, value)` sends a record; `acknowledged` counts those the broker took."""

    def __init__(self, producer, topic: str):
        self._producer, self._topic = producer, topic
        self._failed: list[Exception] = []
        self.acknowledged = 0

    def __call__(self, key: bytes, value: bytes) -> None:
        self.check()
        future = self._producer.send(self._topic, key=key, value=value)
        future.add_callback(self._took).add_errback(self._failed.append)

    def check(self) -> None:
        """Raise the first failure the producer reported, if any."""
        if self._failed:
            raise self._failed[0]

    def _took(self, _metadata) -> None:
        # Only the producer's one I/O thread calls this.
        self.acknowledged += 1


def make_producer(settings):
    """A kafka-python producer with the settings' security (TLS, SASL) applied. A record the
    broker has not acknowledged within `send_timeout` fails: with kafka-python's default of two
    minutes, `junheng simulate` went on printing its progress for 125 s after the broker was
    killed."""
    from kafka import KafkaProducer

    from streams.security import kafka_python_config

    send_ms = int(settings.send_timeout * 1000)
    # kafka-python retries a request that timed out until the record's own time is up, and
    # refuses a record time shorter than linger + one request's time.
    return KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=10,
                         max_request_size=MAX_RECORD_BYTES, acks=1, delivery_timeout_ms=send_ms,
                         request_timeout_ms=send_ms // 3, **kafka_python_config(settings))


def _close_quietly(producer) -> None:
    from kafka.errors import KafkaError

    # kafka-python closes by flushing, which raises while records wait for a broker that is
    # gone, and then its finalizer tries again and prints a traceback at exit: the command has
    # said what happened by then, so the records still waiting are dropped.
    try:
        producer.close(timeout=5)
    except KafkaError:
        producer._sender.force_close()
        producer._closed = True


# --- simulate ------------------------------------------------------------------------------------

def configure_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snapshot", default=None, help="the loaded snapshot the changes start from (default: the SIP example)")
    add_connection_flags(p)
    p.add_argument("--rate", type=float, default=5.0, help="events per second (default 5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--count", type=at_least(0), default=0, help="stop after this many events (default: run until stopped)")
    p.set_defaults(run=run_simulate)


def run_simulate(args) -> int:
    check_rate(args.rate)
    settings = settings_from(args)
    snapshot = _baseline(args.snapshot)
    broker_ready(settings)
    simulate(settings, snapshot, args.rate, args.seed, args.count)
    return EXIT_OK


def simulate(settings, snapshot, rate: float, seed: int, count: int = 0, quiet: bool = False) -> None:
    """Send simulated changes, one event per record, at `rate` per second."""
    from streams.simulate import Simulator

    sim = Simulator(snapshot, seed=seed, start=_now())
    with producing(settings, flush_timeout=30) as send:
        _send_simulated(send, sim, rate, count, quiet)


def _send_simulated(send: Sending, sim, rate: float, count: int, quiet: bool) -> None:
    sent, started = 0, time.monotonic()
    while not count or sent < count:
        event = sim.next_event()
        send(event.district.encode(), event.model_dump_json().encode())
        sent += 1
        if not quiet and sent % max(1, int(rate * 10)) == 0:
            print(f"simulated {sent} events, {send.acknowledged} acknowledged by the broker ({event.type} at "
                  f"{getattr(event, 'school', event.district)}) / 已模拟 {sent} 个事件，代理已确认 {send.acknowledged} 个", flush=True)
        pause = started + sent / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)


def _baseline(path: str | None):
    """The snapshot changes are simulated from; refused when no school in it can change (the
    simulator picked from an empty list, with a traceback, after `dev` had started everything)."""
    from junheng.cli import read_snapshot
    from junheng.examples import suzhou_sip

    snapshot = read_snapshot(path) if path else suzhou_sip()
    if not any(s.sections and s.kind.value != "special" for s in snapshot.schools):
        raise UserError(f"{path}: no school with a primary or junior section to simulate changes for / "
                        f"快照中没有可模拟变更的学校（需有小学或初中学段）")
    return snapshot


def _now():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc)


# --- status --------------------------------------------------------------------------------------

def configure_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", action="append", required=True, help="a worker's web address, e.g. http://127.0.0.1:6066 (repeatable)")
    p.add_argument("--district", action="append", help="only these districts (repeatable)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(run=run_status)


def run_status(args) -> int:
    from junheng.cli import print_report, report_exit
    from junheng.web import check_web_address
    from streams.status import check_districts_held, fetch_reports, merge_reports

    for url in args.url:
        check_web_address(url, "http://127.0.0.1:6066", "工作进程")
    reports = fetch_reports(args.url, args.district)
    check_districts_held(reports, args.district or [])
    report = merge_reports(reports)
    print_report(report, args.format)
    return report_exit(report)  # assess's exit codes: 1 violations, 3 incomplete, 0 all evaluated and held


# --- bench ---------------------------------------------------------------------------------------

def configure_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="a small country, done in under a minute")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--districts", type=at_least(1), help="districts of 68 schools (default 3050, --quick 16)")
    p.add_argument("--events", type=at_least(1), help="batched change events (default 500,000, --quick 32,000)")
    p.add_argument("--workers", type=int, choices=range(1, 9), metavar="N", default=1,
                   help="worker processes in one consumer group, 1 to 8 (default 1; one per core scales)")
    p.add_argument("--workdir", type=Path, default=Path("var/bench"), help="logs and table data")
    p.set_defaults(run=run_bench_command)


def run_bench_command(args) -> int:
    from dataclasses import asdict, replace

    from streams.bench import BenchConfig, render, run_bench
    from streams.broker import BrokerError

    config = BenchConfig.quick() if args.quick else BenchConfig.full()
    if args.districts:
        config = replace(config, districts=args.districts)
    if args.events:
        config = replace(config, batched_events=args.events)
    config = replace(config, workers=args.workers)
    _writable(args.json, args.workdir)  # before a run of twenty minutes, not after it
    try:
        result = run_bench(config, args.workdir, say=lambda text: print(text, file=sys.stderr, flush=True))
    except (BrokerError, RuntimeError) as exc:
        raise UserError(f"benchmark failed: {exc} / 基准测试失败") from None
    print(render(result))
    if args.json:
        try:
            args.json.write_text(json.dumps({**asdict(result), "ratio": result.ratio}, indent=2), encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--json {args.json}: cannot write ({exc.strerror}) / 无法写入结果文件") from None
    return EXIT_OK


def _writable(json_path: Path | None, workdir: Path) -> None:
    """Refuse a JSON file or work directory the bench could not write, before it runs."""
    made_dir(workdir, "--workdir")
    if json_path is not None:
        folder = json_path.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK) or json_path.is_dir():
            raise UserError(f"--json {json_path}: cannot write there (no such writable folder, or a folder) / "
                            f"无法写入结果文件")


# --- dev -----------------------------------------------------------------------------------------

def configure_dev(p: argparse.ArgumentParser) -> None:
    p.add_argument("--web-port", type=int, default=6066, help="the worker's web port (default 6066)")
    p.add_argument("--rate", type=float, default=2.0, help="simulated events per second (default 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--snapshot", default=None, help="snapshot to load (default: the SIP example)")
    p.add_argument("--count", type=at_least(0), default=0, help="stop the simulator after this many events")
    p.set_defaults(run=run_dev)


def run_dev(args) -> int:
    """Embedded default: broker, worker, the SIP example loaded, and the simulator running."""
    from junheng.cli import read_packs
    from junheng.interrupts import held_interrupts
    from streams.broker import BrokerError, EmbeddedBroker
    from streams.settings import load_settings

    check_rate(args.rate)
    snapshot = _baseline(args.snapshot)
    # SIGTERM (a service manager, `kill`) stops dev like Ctrl-C, so the broker and worker it
    # started stop with it instead of living on.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    workdir = made_dir(Path(os.environ.get("JUNHENG_DATA_DIR", "var/dev")), "JUNHENG_DATA_DIR")
    broker = EmbeddedBroker(log_path=workdir / "broker.log")
    worker = None
    # Everything from the broker's start on is inside the try: a Ctrl-C while the broker started
    # left it running (it has a session of its own, so the terminal's SIGINT never reaches it).
    try:
        try:
            broker.start()
        except BrokerError as exc:
            raise UserError(str(exc)) from None
        settings = load_settings({"web_port": args.web_port}, broker=broker.url, producer_max_batch_size=1,
                                 session_timeout=2, data_dir=workdir / "worker", as_of=snapshot.as_of)
        events = _load_events(snapshot)
        not_ahead(args.snapshot or "the SIP example", events, settings)
        can_listen(settings.web_host, settings.web_port)
        read_packs(settings.rules)  # a bad pack here, not later in the worker's log
        with held_interrupts():  # until `worker` holds it, for the cleanup below to stop it
            worker = start_worker_process(settings, workdir / "worker.log")
        url = f"http://127.0.0.1:{settings.web_port}"
        wait_ready(url, worker, timeout=60, log=workdir / "worker.log")
        publish(settings, events)
        print(f"junheng dev: broker {broker.url}, worker {url}\n"
              f"  metrics / 指标:         {url}/metrics\n"
              f"  assessment / 评估报告:  junheng status --url {url}   (JSON: {url}/report)\n"
              f"  logs / 日志:            {workdir}/worker.log, {workdir}/broker.log\n"
              f"loaded {len(snapshot.schools)} schools; simulating {args.rate:g} events/s — Ctrl-C to stop / 按 Ctrl-C 停止",
              flush=True)
        simulate(settings, snapshot, args.rate, args.seed, args.count)
        if args.count:
            print(f"simulator done; the worker keeps running until Ctrl-C / 模拟结束，按 Ctrl-C 停止", flush=True)
            while worker.poll() is None:
                time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping / 正在停止", flush=True)
    finally:
        if worker is not None:
            stop_process(worker)
        broker.stop()
    return EXIT_OK


def _load_events(snapshot):
    from streams.load import snapshot_events

    return snapshot_events(snapshot)


def start_worker_process(settings, log_path: Path) -> subprocess.Popen:
    """`junheng worker` as a child process configured through the environment."""
    from streams.security import settings_env

    env = {**os.environ, **settings_env(settings)}
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "junheng", "worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(url: str, process: subprocess.Popen | None, timeout: float, log: Path | None = None) -> None:
    """Wait until a worker's /ready says so, or raise UserError (naming the worker's `log`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise UserError(f"the worker exited with code {process.returncode}; see its log{f' {log}' if log else ''}"
                            f" / 工作进程已退出，请查看日志")
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as resp:
                if json.load(resp).get("ready"):
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.2)
    raise UserError(f"the worker at {url} was not ready within {timeout:.0f} s / 工作进程未就绪")


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
