"""A worker's day: a worker not pinned to a date takes the rules in force on China's calendar
day as it turns, and ends as a worker started on that day would be."""

from __future__ import annotations

import collections
import datetime as dt
import zlib

from junheng.examples import suzhou_sip
from kafka_env import without_causes
from rules.evaluate import Assessor
from rules.pack import load_packs
from schemas.china_time import china_today
from streams.live import LiveAssessment
from streams.load import snapshot_events
from streams.pipeline import Pipeline

# The park's key-teacher target rises from 40% to 50% on 2028-01-01 (two dated rules).
PACK = load_packs(["suzhou-sip-2023"])
PARTITIONS = 4
ALL = frozenset(range(PARTITIONS))
LAST_DAY_OF_2027, FIRST_DAY_OF_2028 = dt.date(2027, 12, 31), dt.date(2028, 1, 1)


def started_on(day: dt.date) -> Pipeline:
    """A worker's pipeline started on `day`, that has folded the park's snapshot."""
    tables = {"schools": {}, "districts": {}}
    pipeline = Pipeline(tables["schools"], tables["districts"], LiveAssessment(Assessor(PACK, day)))
    pipeline.sync(ALL)
    for event in snapshot_events(suzhou_sip()):
        pipeline.handle(event.model_dump_json().encode(), zlib.crc32(event.district.encode()) % PARTITIONS)
    for write in pipeline.take_writes():  # stored, as a worker's writer does
        tables[write.table][write.key] = write.state
    pipeline.sync(ALL)
    return pipeline


def violations_by_rule(pipeline: Pipeline) -> dict[str, int]:
    return dict(collections.Counter(v.rule for v in pipeline.live.report().violations))


def test_the_day_bringing_other_rules_into_force_ends_as_a_worker_started_that_day():
    pipeline = started_on(LAST_DAY_OF_2027)
    assert violations_by_rule(pipeline) == {"SIP.key_teachers.2025": 37, "G4": 20}
    g4_causes = causes(pipeline.live.report(), "G4")
    assert pipeline.take_day(FIRST_DAY_OF_2028)
    assert not pipeline.holds(ALL)  # every partition is built again by the next sync
    pipeline.sync(ALL)
    assert pipeline.holds(ALL)
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


def causes(report, rule: str) -> dict:
    return {(v.school, v.section): v.cause for v in report.violations if v.rule == rule}


def test_a_day_under_the_same_rules_moves_the_reports_date_and_evaluates_nothing_again():
    pipeline = started_on(dt.date(2027, 6, 1))
    before, evaluations = pipeline.live.report(), pipeline.live.evaluations
    assert not pipeline.take_day(dt.date(2027, 6, 2))
    assert pipeline.holds(ALL)
    pipeline.sync(ALL)
    assert pipeline.live.evaluations == evaluations
    after = pipeline.live.report()
    assert after.as_of == dt.date(2027, 6, 2)
    assert after.model_copy(update={"as_of": before.as_of}) == before


def test_the_day_is_chinas():
    # 16:00 UTC on New Year's Eve is already midnight in China.
    new_year_in_china = dt.datetime(2027, 12, 31, 16, 0, tzinfo=dt.timezone.utc).timestamp()
    assert china_today(new_year_in_china - 1) == LAST_DAY_OF_2027
    assert china_today(new_year_in_china) == FIRST_DAY_OF_2028
