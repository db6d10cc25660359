"""The streaming service against a real Tansu broker and a real `junheng worker` process."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import socket
import subprocess
import sys
import time

import pytest

from junheng.examples import rural_county, suzhou_sip
from kafka_env import (Worker, metric_samples, module_broker, publish, read_topic, send_records,  # noqa: F401
                       wait_until, without_causes, worker_settings)  # module_broker: the broker fixture
from rules.evaluate import assess
from rules.pack import load_packs
from schemas.report import Report
from streams.load import snapshot_events
from streams.simulate import Simulator

SIP = suzhou_sip()
RURAL = rural_county()
PACK = load_packs(["national-2017"])


@pytest.fixture(scope="module")
def worker(broker, tmp_path_factory):
    settings = worker_settings(broker, tmp_path_factory.mktemp("worker"), SIP.as_of)
    running = Worker(settings, settings.data_dir.parent / "worker.log").ready()
    yield running
    running.stop()


def expected(snapshot) -> dict:
    return without_causes(json.loads(assess(snapshot, PACK, SIP.as_of).model_dump_json()))


def test_live_report_equals_batch_assessment_after_shuffled_duplicated_changes(worker):
    settings = worker.settings
    handled = worker.events_handled()
    loaded = snapshot_events(SIP) + snapshot_events(RURAL)
    publish(settings, loaded)
    sims = [Simulator(SIP, seed=11), Simulator(RURAL, seed=12)]
    changes = [e for sim in sims for e in sim.events(300)]
    rng = random.Random(5)
    noisy = changes + rng.sample(changes, 120)
    rng.shuffle(noisy)
    # Half the changes go one event per record, half in batch records of up to 40 events.
    singles, batched = noisy[: len(noisy) // 2], noisy[len(noisy) // 2:]
    records = [(e.district, e.model_dump_json().encode()) for e in singles]
    for start in range(0, len(batched), 40):
        for district in (SIP.districts[0].id, RURAL.districts[0].id):
            chunk = [e for e in batched[start:start + 40] if e.district == district]
            if chunk:
                records.append((district, ('{"events":[' + ",".join(e.model_dump_json() for e in chunk) + "]}").encode()))
    send_records(settings, records)
    worker.wait_handled(handled + len(loaded) + len(noisy))

    live = worker.report()
    for sim, district in zip(sims, (SIP, RURAL)):
        want = expected(sim.snapshot())
        got = without_causes(worker.report(district.districts[0].id))
        assert got == want
    assert {d["id"] for d in live["districts"]} == {"320571", "431299"}
    metrics = worker.metrics()
    assert 'junheng_events_total{outcome="duplicate"' in metrics or 'outcome="stale"' in metrics


def test_violations_name_the_event_that_moved_them(worker):
    settings = worker.settings
    sim = Simulator(SIP, seed=21)
    school = SIP.schools[0]
    handled = worker.events_handled()
    # SIP's first school is a primary school; a class of 52 breaks the 45 limit (G5).
    event = sim._event(__import__("schemas.events", fromlist=["ClassChanged"]).ClassChanged,
                       sim.schools[school.id], "class:big-one", type="class.opened",
                       class_id="big-one", after={"level": "primary", "students": 52})
    send_records(settings, [(school.district, event.model_dump_json().encode())])
    worker.wait_handled(handled + 1)
    report = worker.report(school.district)
    g5 = [v for v in report["violations"] if v["rule"] == "G5" and v["school"] == school.id]
    assert g5 and g5[0]["value"] == 52.0 and g5[0]["limit"] == 45.0
    assert g5[0]["cause"]["event_id"] == event.event_id
    assert g5[0]["cause"]["source"] == "junheng-simulator" and g5[0]["cause"]["type"] == "class.opened"
    metrics = worker.metrics()
    assert f'junheng_rule_violation{{district="320571",rule="G5",school="{school.id}",section="primary",severity="critical"}} 1.0' in metrics
    assert "\njunheng_metrics_districts_behind 0.0\n" in metrics  # rendered within the scrape's budget


def _sip_loaded(worker) -> list:
    """Load the SIP snapshot into the module's worker and wait for it, so that a test's schools
    are known whichever tests ran before on it (loading it again changes nothing); its events."""
    loaded = snapshot_events(SIP)
    handled = worker.events_handled()
    publish(worker.settings, loaded)
    worker.wait_handled(handled + len(loaded))
    return loaded


def test_bad_events_go_to_the_dead_letter_topic_and_the_worker_carries_on(worker):
    settings = worker.settings
    _sip_loaded(worker)
    handled = worker.events_handled()
    good = Simulator(SIP, seed=31).next_event()
    bad = [
        b"{not json",
        json.dumps({"type": "enrolment.reported", "event_id": "e-wrong-type", "source": "t", "district": "320571",
                    "school": SIP.schools[1].id, "occurred_at": "2026-09-02T08:00:00Z", "version": 1,
                    "level": "primary", "students": "many"}).encode(),
        json.dumps({"type": "budget.set", "event_id": "e-unknown-school", "source": "t", "district": "320571",
                    "school": "320571-999", "occurred_at": "2026-09-02T08:00:00Z", "version": 1,
                    "fiscal_year": 2026, "public_funds_budget_cny": 100.0}).encode(),
        json.dumps({"type": "teacher.hired", "event_id": "e-flag-as-text", "source": "t", "district": "320571",
                    "school": SIP.schools[1].id, "occurred_at": "2026-09-02T08:00:00Z", "version": 1,
                    "teacher": "T-flag", "after": {"level": "primary", "degree_above_required": True,
                                                   "certified": "yes"}}).encode(),
    ]
    send_records(settings, [("320571", value) for value in bad] + [("320571", good.model_dump_json().encode())])
    worker.wait_handled(handled + 5)
    letters = read_topic(settings, settings.dead_letter_topic, 4)
    reasons = {bytes(r.value): dict(r.headers)["junheng-reason"].decode() for r in letters}
    assert set(reasons) == set(bad)
    assert "not valid JSON" in reasons[bad[0]]
    assert "students" in reasons[bad[1]] and "integer" in reasons[bad[1]]
    assert "unknown school 320571-999" in reasons[bad[2]]
    assert reasons[bad[3]].startswith("invalid event: teacher.hired.after.certified: Input should be true or false")
    metrics = worker.metrics()
    assert 'junheng_events_total{outcome="rejected",type="unknown"} 1.0' in metrics
    assert 'junheng_events_total{outcome="rejected",type="enrolment.reported"} 1.0' in metrics
    assert 'junheng_events_total{outcome="rejected",type="budget.set"} 1.0' in metrics
    assert 'junheng_events_total{outcome="rejected",type="teacher.hired"} 1.0' in metrics
    assert f'outcome="applied",type="{good.type}"' in metrics


def test_many_dead_letters_of_one_batch_record_arrive_in_order_and_writes_go_on(worker):
    """Sent concurrently, the dead letters of one record waited for each other's batches: 3,000
    took a minute, and no write completed (nor was any record acked) until they all had."""
    settings = worker.settings
    loaded = snapshot_events(SIP)
    handled = worker.events_handled()
    publish(settings, loaded)
    worker.wait_handled(handled + len(loaded))
    count = 5000
    rejected = [json.dumps({"type": "budget.set", "event_id": f"e-many-{n}", "source": "t", "district": "320571",
                            "school": "320571-999", "occurred_at": "2026-09-02T08:00:00Z", "version": 1,
                            "fiscal_year": 2026, "public_funds_budget_cny": float(n)}) for n in range(count)]
    good = Simulator(SIP, seed=41).next_event()
    before = _end_offsets(settings, settings.topic)
    send_records(settings, [("320571", ('{"events":[' + ",".join(rejected) + "]}").encode()),
                            ("320571", good.model_dump_json().encode())])
    after = _end_offsets(settings, settings.topic)
    [(partition, batch_offset)] = [(p, before[p]) for p in after if after[p] != before[p]]
    assert after[partition] == batch_offset + 2

    source = f"{settings.topic}/{partition}/{batch_offset}".encode()
    letters = _read_until(settings, settings.dead_letter_topic,
                          lambda records: sum(dict(r.headers)["junheng-source"] == source for r in records) >= count)
    mine = [r for r in letters if dict(r.headers)["junheng-source"] == source]
    assert [json.loads(r.value)["event_id"] for r in mine] == [f"e-many-{n}" for n in range(count)]
    assert all(dict(r.headers)["junheng-reason"].decode().startswith("unknown school 320571-999") for r in mine)
    # Each where Faust's keyed send put it: by the key, as the source record.
    assert {r.partition for r in mine} == {partition} and {r.key for r in mine} == {b"320571"}
    # The write after them stored the position past the good event: it, and the batch, are acked.
    key = f'"{partition}"'.encode()
    _read_until(settings, f"{settings.app_id}-positions-changelog",
                lambda records: any(r.key == key and json.loads(r.value)["next"] == batch_offset + 2 for r in records))
    assert f'outcome="applied",type="{good.type}"' in worker.metrics()


def test_events_dated_ahead_of_the_workers_clock_are_dead_lettered(worker):
    # Applied, the change held junheng_event_lag_seconds at 0 (until 2999), and the snapshot
    # took every change dated up to its as_of as counted in it.
    settings = worker.settings
    loaded = _sip_loaded(worker)
    handled = worker.events_handled()
    sim = Simulator(SIP, seed=51)
    change = sim.next_event().model_copy(update={"event_id": "e-year-2999",
                                                 "occurred_at": dt.datetime(2999, 1, 1, tzinfo=dt.timezone.utc)})
    [snapshot] = [e for e in loaded if e.type == "school.snapshot" and e.school == SIP.schools[1].id]
    snapshot = snapshot.model_copy(update={"event_id": "e-as-of-2999", "as_of": dt.date(2999, 1, 1)})
    good = sim.next_event()
    send_records(settings, [(e.district, e.model_dump_json().encode()) for e in (change, snapshot, good)])
    worker.wait_handled(handled + 3)
    ids = {"e-year-2999", "e-as-of-2999"}
    letters = _read_until(settings, settings.dead_letter_topic,
                          lambda records: ids <= {_event_id(r.value) for r in records})
    reasons = {_event_id(r.value): dict(r.headers)["junheng-reason"].decode()
               for r in letters if _event_id(r.value) in ids}
    assert reasons["e-year-2999"].startswith("occurred_at 2999-01-01T00:00:00+00:00 is more than 1 day ahead of the "
                                             "worker's clock (")
    assert "请检查发送系统的时钟" in reasons["e-year-2999"]
    assert reasons["e-as-of-2999"].startswith("as_of 2999-01-01 ends more than 1 day after the worker's clock (")
    metrics = worker.metrics()
    assert f'junheng_events_total{{outcome="rejected",type="{change.type}"}}' in metrics
    assert 'junheng_events_total{outcome="rejected",type="school.snapshot"} 1.0' in metrics
    assert f'outcome="applied",type="{good.type}"' in metrics
    # The newest applied event is of 2023: the lag is years, not 0.
    [lag] = metric_samples(metrics, "junheng_event_lag_seconds").values()
    assert lag > 365 * 24 * 3600


def _event_id(value: bytes) -> str | None:
    """The event id of a dead letter that holds one event."""
    try:
        event = json.loads(value)
    except ValueError:
        return None
    return event.get("event_id") if isinstance(event, dict) else None


def _end_offsets(settings, topic: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def ends():
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
        finally:
            await consumer.stop()

    return asyncio.run(ends())


def _read_until(settings, topic: str, done, timeout: float = 60) -> list:
    """The records of `topic` from its start, read until `done(records)` holds (or the test fails)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read():
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()])
            found: list = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.extend(records)
                if done(found):
                    return found
            raise AssertionError(f"{topic}: not found within {timeout:.0f} s among {len(found)} records")
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_status_command_prints_the_live_report(worker):
    run = subprocess.run([sys.executable, "-m", "junheng", "status", "--url", worker.url, "--district", "431299",
                          "--format", "json"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr  # the rural county has violations
    report = Report.model_validate_json(run.stdout)
    assert [d.id for d in report.districts] == ["431299"]
    table = subprocess.run([sys.executable, "-m", "junheng", "status", "--url", worker.url], capture_output=True,
                           text=True, timeout=60)
    assert "青岚县" in table.stdout and "苏州工业园区" in table.stdout


def test_status_refuses_a_district_no_worker_holds_and_names_an_http_error(worker):
    # A mistyped district printed "violations: none ✓" with exit code 0.
    run = subprocess.run([sys.executable, "-m", "junheng", "status", "--url", worker.url, "--district", "431299",
                          "--district", "43129"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout
    assert run.stderr.startswith("junheng: --district 43129: no worker holds it"), run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    # The same worker twice (as 127.0.0.1 and localhost in the helper's run): every violation counted twice.
    run = subprocess.run([sys.executable, "-m", "junheng", "status", "--url", worker.url, "--url", worker.url],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "answered by two --url: the same worker given twice?" in run.stderr, run.stderr
    # The worker answered 404 here: "not reachable (Not Found)" sent the user looking for a network fault.
    run = subprocess.run([sys.executable, "-m", "junheng", "status", "--url", worker.url + "/junheng"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.startswith(f"junheng: {worker.url}/junheng: answered HTTP 404 Not Found instead of a report"), run.stderr


def test_the_worker_listens_on_its_web_host_only(worker):
    # 127.0.0.2 is this machine too (all of 127/8 is loopback), but not the address it was given.
    port = worker.settings.web_port
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=5).close()


def test_status_of_an_unreachable_worker_is_a_clear_error():
    run = subprocess.run([sys.executable, "-m", "junheng", "status", "--url", "http://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.startswith("junheng: http://127.0.0.1:9: worker not reachable") and "Traceback" not in run.stderr


def test_rocksdb_store_keeps_state_across_a_restart(broker, tmp_path):
    """The production store (RocksDB through rocksdict): a restarted worker answers with the same
    report, from its local store and the changelog."""
    settings = worker_settings(broker, tmp_path, SIP.as_of, store="rocksdb", app_id="junheng-rocks",
                               topic="rocks.events", dead_letter_topic="rocks.dead-letter")
    first = Worker(settings, tmp_path / "first.log").ready()
    try:
        publish(settings, snapshot_events(RURAL))
        first.wait_handled(len(RURAL.schools) + 1)
        before = first.report()
    finally:
        first.stop()
    assert list((settings.data_dir / "v1" / "tables").glob("schools-*.db")), "RocksDB files on disk"
    second = Worker(settings, tmp_path / "second.log").ready()
    try:
        # Causes are kept in the states: after a restart each violation still names its event.
        assert second.report() == before
        assert without_causes(before) == without_causes(expected_for(RURAL))
        assert all(v["cause"]["type"] in ("school.snapshot", "district.snapshot") for v in before["violations"])
    finally:
        second.stop()


def test_a_worker_restarted_with_nothing_new_to_read_reports_no_consumer_lag(broker, tmp_path):
    """After a clean stop and a restart, the lag counted from offset 0 (no record read yet):
    every record of each partition, a week of them on a real topic, until the next arrived."""
    settings = worker_settings(broker, tmp_path, SIP.as_of, app_id="junheng-lag", topic="lag.events",
                               dead_letter_topic="lag.dead-letter")
    first = Worker(settings, tmp_path / "first.log").ready()
    try:
        loaded = snapshot_events(SIP) + snapshot_events(RURAL)
        # One event a record, so that the partitions hold many records.
        send_records(settings, [(e.district, e.model_dump_json().encode()) for e in loaded])
        first.wait_handled(len(loaded))
    finally:
        first.stop()
    assert first.process.returncode == 0
    second = Worker(settings, tmp_path / "second.log").ready()
    try:
        lag = metric_samples(second.metrics(), "junheng_consumer_lag")
        assert len(lag) == settings.partitions and set(lag.values()) == {0.0}, lag
        assert second.events_handled() == 0  # nothing was read again
    finally:
        second.stop()


@contextlib.contextmanager
def _worker_loaded_with(settings, log, snapshot):
    """A worker of its own, ready, with `snapshot` loaded and folded; stopped on leaving."""
    worker = Worker(settings, log).ready()
    try:
        loaded = snapshot_events(snapshot)
        publish(settings, loaded)
        worker.wait_handled(len(loaded))
        yield worker
    finally:
        worker.stop()


def test_a_worker_not_pinned_to_a_date_takes_the_day_in_china_and_each_schools_money_year(broker, tmp_path):
    """Unpinned, a worker follows China's calendar day (its evaluation timer asks every round,
    tests/test_days.py has what a new day does). The rural county's snapshot of 2024 reports that
    year's money: a year gone, judged on the whole 5% of Q4, not on this year's time progress."""
    from schemas.china_time import china_today

    settings = worker_settings(broker, tmp_path, None, app_id="junheng-today", topic="today.events",
                               dead_letter_topic="today.dead-letter")
    before = china_today(time.time())
    with _worker_loaded_with(settings, tmp_path / "worker.log", RURAL) as worker:
        report = worker.report()
    assert dt.date.fromisoformat(report["as_of"]) in {before, china_today(time.time())}
    q4 = [(v["school"], v["value"], v["limit"]) for v in report["violations"] if v["rule"] == "Q4"]
    assert q4 == [("431299-021", 0.03, 0.05)]
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


def _libfaketime() -> str:
    """libfaketime, from the Debian package `faketime` that `make test` installs."""
    import glob

    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    assert found, "libfaketime is missing: install the Debian package faketime (make test does)"
    return found[0]


def test_a_worker_takes_the_rules_of_a_new_day_in_china_at_its_midnight(broker, tmp_path, monkeypatch):
    """The worker's clock (libfaketime, for its process alone) starts at 23:59:45 on 2027-12-31 in
    China. SIP's key-teacher target rises from 40% to 50% on 2028-01-01: at midnight the worker
    takes the new day's rules with no event sent, and its report is then the batch assessment of
    that day (five more schools below the target)."""
    from schemas.china_time import china_today

    packs = ["national-2017", "suzhou-sip-2023"]
    settings = worker_settings(broker, tmp_path, None, app_id="junheng-midnight", topic="midnight.events",
                               dead_letter_topic="midnight.dead-letter", rules=packs)
    monkeypatch.setenv("LD_PRELOAD", _libfaketime())
    monkeypatch.setenv("FAKETIME", "@2027-12-31 15:59:45")  # UTC: 23:59:45 in China, ready in about 3 s
    with _worker_loaded_with(settings, tmp_path / "worker.log", SIP) as worker:
        before = worker.report()
        wait_until(lambda: worker.report()["as_of"] == "2028-01-01", timeout=60, what="the worker's new day")
        after = worker.report()
    assert china_today(time.time()) < dt.date(2027, 12, 31)  # the test's own clock was not moved
    assert before["as_of"] == "2027-12-31", "the worker was not ready before its midnight"

    def key_teachers(report):
        return sorted((v["rule"], v["school"]) for v in report["violations"] if v["rule"].startswith("SIP."))

    assert key_teachers(before) == [("SIP.key_teachers.2025", school)
                                    for _, school in key_teachers(_batch_report(packs, dt.date(2027, 12, 31)))]
    assert without_causes(after) == without_causes(_batch_report(packs, dt.date(2028, 1, 1)))
    assert len(key_teachers(after)) == len(key_teachers(before)) + 5
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


def _batch_report(packs: list[str], day: dt.date) -> dict:
    """The SIP example assessed by `packs` on `day`, as JSON."""
    return json.loads(assess(SIP, load_packs(packs), day).model_dump_json())


def expected_for(snapshot) -> dict:
    return json.loads(assess(snapshot, PACK, SIP.as_of).model_dump_json())
