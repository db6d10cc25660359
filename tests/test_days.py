"""A worker's day: a worker not pinned to a date takes the rules in force on China's calendar
day as it turns, evaluates its districts again a few at a time when that day changes what they
are held to, and ends as a worker started on that day would be."""

from __future__ import annotations

import collections
import datetime as dt
import zlib

import pytest

from junheng.examples import country, suzhou_sip
from kafka_env import without_causes
from rules.evaluate import Assessor
from rules.pack import RulePack, load_packs
from schemas.china_time import china_today
from streams import pipeline as pipeline_module
from streams.live import LiveAssessment
from streams.load import snapshot_events
from streams.pipeline import Pipeline

# The park's key-teacher target rises from 40% to 50% on 2028-01-01 (two dated rules).
SIP_PACK = load_packs(["suzhou-sip-2023"])
NATIONAL = load_packs(["national-2017"])
PARTITIONS = 4
ALL = frozenset(range(PARTITIONS))
LAST_DAY_OF_2027, FIRST_DAY_OF_2028 = dt.date(2027, 12, 31), dt.date(2028, 1, 1)


def started_on(day: dt.date, pack: RulePack = SIP_PACK, snapshot=None) -> Pipeline:
    """A worker's pipeline started on `day`, that has folded `snapshot` (the park's)."""
    tables = {"schools": {}, "districts": {}}
    pipeline = Pipeline(tables["schools"], tables["districts"], LiveAssessment(Assessor(pack, day)))
    pipeline.sync(ALL)
    for event in snapshot_events(snapshot or suzhou_sip()):
        pipeline.handle(event.model_dump_json().encode(), zlib.crc32(event.district.encode()) % PARTITIONS)
    for write in pipeline.take_writes():  # stored, as a worker's writer does
        tables[write.table][write.key] = write.state
    pipeline.sync(ALL)
    return pipeline


def violations_by_rule(pipeline: Pipeline) -> dict[str, int]:
    return dict(collections.Counter(v.rule for v in pipeline.live.report().violations))


def causes(report, rule: str) -> dict:
    return {(v.school, v.section): v.cause for v in report.violations if v.rule == rule}


def test_the_day_bringing_other_rules_into_force_ends_as_a_worker_started_that_day():
    pipeline = started_on(LAST_DAY_OF_2027)
    assert violations_by_rule(pipeline) == {"SIP.key_teachers.2025": 37, "G4": 20}
    g4_causes = causes(pipeline.live.report(), "G4")
    assert pipeline.take_day(FIRST_DAY_OF_2028)
    assert list(pipeline.again) == ["320571"]
    pipeline.sync(ALL)
    assert not pipeline.again and pipeline.holds(ALL)
    # Before, a worker kept the rules of the day it started until it was restarted.
    assert violations_by_rule(pipeline) == {"SIP.key_teachers.2028": 42, "G4": 20}
    after = pipeline.live.report()
    assert after.as_of == FIRST_DAY_OF_2028
    fresh = started_on(FIRST_DAY_OF_2028).live.report()
    assert without_causes(after.model_dump()) == without_causes(fresh.model_dump())
    # The violations the day made no event moved across the line: they name no cause, where a
    # worker started that day names the snapshot that brought each school. The others keep theirs.
    assert set(causes(after, "SIP.key_teachers.2028").values()) == {None}
    assert causes(after, "G4") == g4_causes and None not in g4_causes.values()


@pytest.mark.parametrize("day, then", [
    (dt.date(2027, 6, 1), dt.date(2027, 6, 2)),
    (dt.date(2027, 6, 1), dt.date(2027, 6, 30)),  # Q4's time progress moves by month
])
def test_a_day_under_the_same_limits_moves_the_reports_date_and_evaluates_nothing_again(day, then):
    pipeline = started_on(day)
    before, evaluations = pipeline.live.report(), pipeline.live.evaluations
    assert not pipeline.take_day(then)
    assert not pipeline.again
    pipeline.sync(ALL)
    assert pipeline.live.evaluations == evaluations
    after = pipeline.live.report()
    assert after.as_of == then
    assert after.model_copy(update={"as_of": before.as_of}) == before


def test_a_month_of_a_rule_prorated_over_the_year_evaluates_every_district_again_in_steps(monkeypatch):
    monkeypatch.setattr(pipeline_module, "AGAIN_SCHOOLS", 100)
    snapshot = country(6, 1)  # dated 2023-09-01; its training spend is of 2023
    day = dt.date(2023, 9, 1)
    pipeline = started_on(day, NATIONAL, snapshot)
    # Eight months of 2023 gone by September 1: 5% × 8/12 = 3.3333% due.
    assert {v.limit for v in pipeline.live.report().violations if v.rule == "Q4"} == {0.033333}
    schools_of = {d: len(live.schools) for d, live in pipeline.live.districts.items()}
    assert all(n < 100 for n in schools_of.values())
    later = dt.date(2023, 12, 31)
    assert pipeline.take_day(later)
    assert set(pipeline.again) == set(schools_of)
    # A flush takes whole districts until about AGAIN_SCHOOLS schools: 2 at a time here.
    rounds = 0
    while pipeline.again:
        left = len(pipeline.again)
        pipeline.flush()
        rounds += 1
        assert left - len(pipeline.again) == min(2, left)
    assert rounds == 3
    after = pipeline.live.report()
    fresh = started_on(later, NATIONAL, snapshot).live.report()
    assert without_causes(after.model_dump()) == without_causes(fresh.model_dump())
    # Eleven by December 31: 4.5833%.
    assert {v.limit for v in after.violations if v.rule == "Q4"} == {0.045833}


@pytest.mark.parametrize("read", [["not-a-district"], None])
def test_a_read_of_a_district_waiting_to_be_evaluated_again_evaluates_it_first(read):
    pipeline = started_on(LAST_DAY_OF_2027)
    pipeline.take_day(FIRST_DAY_OF_2028)
    districts = ["320571"] if read is None else read
    pipeline.flush(districts)
    assert (list(pipeline.again) == ["320571"]) is (read is not None)


def test_the_day_is_chinas():
    # 16:00 UTC on New Year's Eve is already midnight in China.
    new_year_in_china = dt.datetime(2027, 12, 31, 16, 0, tzinfo=dt.timezone.utc).timestamp()
    assert china_today(new_year_in_china - 1) == LAST_DAY_OF_2027
    assert china_today(new_year_in_china) == FIRST_DAY_OF_2028
