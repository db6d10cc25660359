"""Events dated ahead of the worker's clock (streams/future.py): a school system with a wrong clock,
a year typed wrong. Accepted, one held the event lag at 0, and outlived every later snapshot (a
snapshot supersedes only changes dated up to its as_of). The clock is given to the pipeline, so
that each limit is exact."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from junheng.errors import UserError
from junheng.examples import rural_county
from pipelines import PACK, loaded
from rules.evaluate import Assessor
from schemas.events import CHINA_STANDARD_TIME as CST
from streams.live import LiveAssessment
from streams.load import snapshot_events
from streams.pipeline import Pipeline
from streams.settings import load_settings
from streams.simulate import Simulator

COUNTY = rural_county()
KEY = COUNTY.districts[0].id
#: The worker's clock in these tests.
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=CST)
EXAMPLES = Path(__file__).parent.parent / "deploy" / "examples"


def clock(moment: dt.datetime):
    return lambda: moment.timestamp()


def _changes(count: int) -> list[dict]:
    sim = Simulator(COUNTY, seed=5)
    return [json.loads(sim.next_event().model_dump_json()) for _ in range(count)]


def _change(occurred_at: str) -> dict:
    return {**_changes(1)[0], "occurred_at": occurred_at}


@pytest.mark.parametrize("limit,past", [
    ("2026-11-28T10:00:00+08:00", "2026-11-28T10:00:00.000001+08:00"),
    ("2026-11-28T10:00:00", "2026-11-28T10:00:01"),  # China Standard Time, without an offset
    ("2026-11-28T02:00:00Z", "2026-11-28T02:00:00.000001Z"),
])
def test_an_event_a_day_ahead_of_the_clock_is_applied_and_one_past_that_is_refused(limit, past):
    # A day: the default tolerance.
    pipeline = loaded(COUNTY, clock=clock(NOW))
    refused = pipeline.handle(json.dumps(_change(past)).encode(), 0, key=KEY)
    assert (refused.applied, len(refused.dead_letters)) == (0, 1)
    applied = pipeline.handle(json.dumps(_change(limit)).encode(), 0, key=KEY)
    assert (applied.applied, applied.dead_letters) == (1, [])


def test_the_quick_pass_on_an_events_date_refuses_exactly_what_comparing_times_refuses():
    # Most events pass on their date alone (streams/future.py); any offset, however large.
    from streams import future

    event = Simulator(COUNTY, seed=5).next_event()
    for tolerance in (90.0, 24 * 3600.0):
        horizon = future.Horizon(NOW.timestamp(), tolerance)
        for minutes in (-(23 * 60 + 59), -12 * 60, -8 * 60, 0, 8 * 60, 14 * 60, 23 * 60 + 59):
            zone = dt.timezone(dt.timedelta(minutes=minutes))
            for step in range(-4 * 24 * 4, 2 * 24 * 4):  # quarter hours from four days before to two after
                moment = (horizon.latest + dt.timedelta(minutes=15 * step, seconds=step % 3 - 1)).astimezone(zone)
                dated = event.model_copy(update={"occurred_at": moment})
                assert (horizon.refuses(dated) is not None) == (moment > horizon.latest), (tolerance, moment)


def test_the_dead_letter_says_why_in_english_and_chinese_and_keeps_the_events_bytes():
    pipeline = loaded(COUNTY, clock=clock(NOW))
    event = _change("2026-11-28T10:00:00.000001+08:00")
    before = copy.deepcopy(pipeline.school(event["school"]))
    for write in pipeline.take_writes():  # the snapshot's, stored
        (pipeline.schools if write.table == "schools" else pipeline.districts)[write.key] = write.state
    value = json.dumps(event).encode()
    [letter] = pipeline.handle(value, 0, key=KEY).dead_letters
    assert letter.reason == (
        "occurred_at 2026-11-28T10:00:00.000001+08:00 is more than 1 day ahead of the worker's clock "
        "(2026-11-27T10:00:00+08:00): check the sending system's clock (JUNHENG_FUTURE_TOLERANCE) "
        "/ 事件时间 occurred_at 超前于工作进程时钟逾 1 天，请检查发送系统的时钟")
    assert letter.original == value and letter.event_type == event["type"]
    assert pipeline.health.events[(event["type"], "rejected")] == 1 and pipeline.health.dead_lettered == 1
    assert pipeline.school(event["school"]) == before and pipeline.take_writes() == []


def test_the_tolerance_is_the_pipelines_own():
    pipeline = loaded(COUNTY, clock=clock(NOW), future_tolerance=90)
    result = pipeline.handle(json.dumps(_change("2026-11-27T10:01:30.5+08:00")).encode(), 0, key=KEY)
    assert result.applied == 0 and result.dead_letters[0].reason.startswith(
        "occurred_at 2026-11-27T10:01:30.500000+08:00 is more than 90 s ahead of the worker's clock")
    assert "逾 90 秒" in result.dead_letters[0].reason
    assert pipeline.handle(json.dumps(_change("2026-11-27T10:01:30+08:00")).encode(), 0, key=KEY).applied == 1


def test_one_future_event_in_a_batch_is_dead_lettered_alone():
    events = _changes(3)
    events[1]["occurred_at"] = "2999-01-01T00:00:00+08:00"
    result = loaded(COUNTY, clock=clock(NOW)).handle(json.dumps({"events": events}).encode(), 0, key=KEY)
    assert result.applied == 2
    assert [json.loads(d.original) for d in result.dead_letters] == [events[1]]


def test_an_event_a_little_ahead_does_not_hold_the_event_lag_at_zero():
    # Applied (within the tolerance), it set the newest event time ten hours ahead: the event lag
    # read 0 for ten hours, however long the worker then stood still.
    pipeline = loaded(COUNTY, clock=clock(NOW))
    assert pipeline.handle(json.dumps(_change("2026-11-27T20:00:00+08:00")).encode(), 0, key=KEY).applied == 1
    assert pipeline.health.newest_event_time == NOW.timestamp()


def test_a_snapshot_dated_today_is_taken_from_the_first_second_of_the_day_and_one_dated_tomorrow_never():
    # China Standard Time, as `junheng load` dates its events (the last second of the as_of day).
    midnight = dt.datetime(2026, 11, 27, tzinfo=CST)
    today = snapshot_events(COUNTY.model_copy(update={"as_of": midnight.date()}))
    pipeline = Pipeline({}, {}, LiveAssessment(Assessor(PACK, midnight.date())), clock=clock(midnight))
    results = [pipeline.handle(e.model_dump_json().encode(), 0, key=e.district) for e in today]
    assert [r.applied for r in results] == [1] * len(today)

    # Dated now, so that only the as_of is ahead.
    last_second = midnight + dt.timedelta(hours=23, minutes=59, seconds=59)
    tomorrow = [e.model_copy(update={"occurred_at": last_second, "version": 1})
                for e in snapshot_events(COUNTY.model_copy(update={"as_of": midnight.date() + dt.timedelta(days=1)}))]
    pipeline.clock = clock(last_second)
    results = [pipeline.handle(e.model_dump_json().encode(), 0, key=e.district) for e in tomorrow]
    assert [r.applied for r in results] == [0] * len(tomorrow)
    assert {r.dead_letters[0].reason for r in results} == {
        "as_of 2026-11-28 ends more than 1 day after the worker's clock (2026-11-27T23:59:59+08:00): a snapshot "
        "counts every change dated up to the end of its as_of, so one dated ahead would drop real changes still "
        "to come (JUNHENG_FUTURE_TOLERANCE) / 快照日期 as_of 的结束时刻晚于工作进程时钟逾 1 天，"
        "其后的真实变更将被当作已计入而忽略"}
    assert {r.dead_letters[0].event_type for r in results} == {"district.snapshot", "school.snapshot"}


@pytest.mark.parametrize("as_of", [dt.date(2027, 9, 1), dt.date.max])
def test_a_refused_future_snapshot_leaves_the_changes_after_it_applied(as_of):
    # Applied, a snapshot as of 2027-09-01 took every change dated before then as counted in it.
    pipeline = loaded(COUNTY, clock=clock(NOW))
    change = _change("2026-11-27T09:00:00+08:00")
    [snapshot] = [e for e in snapshot_events(COUNTY) if e.type == "school.snapshot" and e.school == change["school"]]
    ahead = snapshot.model_copy(update={"as_of": as_of, "occurred_at": NOW})
    result = pipeline.handle(ahead.model_dump_json().encode(), 0, key=KEY)
    assert result.applied == 0
    assert result.dead_letters[0].reason.startswith(f"as_of {as_of} ends more than 1 day after the worker's clock")
    assert pipeline.handle(json.dumps(change).encode(), 0, key=KEY).applied == 1


@pytest.mark.parametrize("value,should", [
    ("0", "Input should be greater than 0 / 环境变量 JUNHENG_FUTURE_TOLERANCE 应大于 0"),
    ("-3600", "Input should be greater than 0 / 环境变量 JUNHENG_FUTURE_TOLERANCE 应大于 0"),
    ("nan", "Input should be a finite number / 环境变量 JUNHENG_FUTURE_TOLERANCE 应为有限数值"),
    ("inf", "Input should be a finite number / 环境变量 JUNHENG_FUTURE_TOLERANCE 应为有限数值"),
    ("1e300", "Input should be less than or equal to 31622400 / 环境变量 JUNHENG_FUTURE_TOLERANCE 应不大于 31622400"),
    ("a day", "Input should be a valid number, unable to parse string as a number / 环境变量 JUNHENG_FUTURE_TOLERANCE 应为数字"),
])
def test_the_tolerance_setting_is_checked(monkeypatch, value, should):
    monkeypatch.setenv("JUNHENG_FUTURE_TOLERANCE", value)
    with pytest.raises(UserError) as raised:
        load_settings()
    assert str(raised.value) == f"JUNHENG_FUTURE_TOLERANCE='{value}': {should}"


def test_a_worker_folds_with_the_tolerance_it_is_given(monkeypatch):
    from streams.app import create_app

    monkeypatch.delenv("JUNHENG_FUTURE_TOLERANCE", raising=False)
    assert load_settings().future_tolerance == 24 * 3600
    monkeypatch.setenv("JUNHENG_FUTURE_TOLERANCE", "3600")
    app = create_app(load_settings(broker="kafka://127.0.0.1:9", as_of=COUNTY.as_of))
    assert app.junheng_pipeline.future_tolerance == 3600


def test_the_simulator_never_dates_an_event_after_the_wall_clock():
    # `junheng simulate` starts at the clock and steps 37 s per event whatever its rate; at 5
    # events a second it ran three minutes ahead of the clock each second.
    start = dt.datetime(2026, 11, 27, 8, tzinfo=CST)
    wall = [start + dt.timedelta(seconds=100)]
    sim = Simulator(COUNTY, seed=5, start=start, now=lambda: wall[0])

    def seconds(count: int) -> list[float]:
        return [(sim.next_event().occurred_at - start).total_seconds() for _ in range(count)]

    assert seconds(5) == [0, 37, 74, 100, 100]  # steps until they reach the clock, then the clock
    wall[0] += dt.timedelta(seconds=30)
    assert seconds(2) == [100, 130]
    wall[0] += dt.timedelta(hours=1)
    assert seconds(3) == [130, 167, 204]  # behind the clock again: steps
    assert sim.clock.utcoffset() == dt.timedelta(hours=8)
    # A start ahead of the clock is brought back to it.
    assert Simulator(COUNTY, start=NOW + dt.timedelta(days=400), now=lambda: NOW).next_event().occurred_at == NOW


def test_load_refuses_a_snapshot_dated_after_today_before_sending_anything(tmp_path):
    day = dt.date.today() + dt.timedelta(days=3)
    snapshot = json.loads((EXAMPLES / "rural-county.json").read_text(encoding="utf-8"))
    path = tmp_path / "ahead.json"
    path.write_text(json.dumps({**snapshot, "as_of": day.isoformat()}), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "junheng", "load", str(path), "--broker", "kafka://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=120, cwd=EXAMPLES.parent.parent,
                         env={**os.environ, "JUNHENG_BROKER_WAIT": "1"})
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(f"junheng: {path}: as_of {day.isoformat()} ends more than 1 day after this "
                                 "machine's clock (")
    assert "快照日期 as_of 的结束时刻晚于本机时钟逾 1 天" in run.stderr and len(run.stderr.splitlines()) == 1
