"""The live report read in steps, as a worker serves `/report`: the same report as one read at
once, with the event loop given back between districts; and its JSON, serialized in steps too,
the same bytes as pydantic's in one call."""

from __future__ import annotations

import asyncio

from junheng.examples import country
from pipelines import fold, loaded
from rules.evaluate import merge_reports
from schemas.report import Report
from streams.live import LiveAssessment
from streams.report_json import report_json_in_steps
from streams.simulate import Simulator


def live_country(districts: int = 3) -> LiveAssessment:
    snapshot = country(districts, 1)
    pipeline = loaded(snapshot)
    fold(pipeline, Simulator(snapshot, seed=2).events(300))
    return pipeline.live


def test_a_report_in_steps_equals_one_read_at_once_and_gives_the_loop_back():
    live = live_country()
    at_once = live.report()
    assert len(at_once.districts) == 3 and at_once.violations
    assert any(v.cause is not None for v in at_once.violations)
    turns = []

    async def read_beside_other_work():
        async def other_work():
            for _ in range(50):
                turns.append(1)
                await asyncio.sleep(0)
        other = asyncio.create_task(other_work())
        report = await live.report_in_steps(step_seconds=0)
        steps_taken = len(turns)
        await other
        return report, steps_taken

    report, turns_during = asyncio.run(read_beside_other_work())
    assert report == at_once
    assert turns_during >= 2  # the other task ran between districts


def test_chosen_districts_once_each_and_a_district_dropped_meanwhile_is_left_out():
    live = live_country()
    first, second, third = sorted(live.districts)
    assert asyncio.run(live.report_in_steps([second, second, first, "nowhere"])) == live.report([first, second])

    async def read_while_a_partition_moves():
        read = asyncio.create_task(live.report_in_steps([first, second, third], step_seconds=0))
        await asyncio.sleep(0)  # the first district is built; then its partition moves away
        del live.districts[first]
        return await read

    assert asyncio.run(read_while_a_partition_moves()) == live.report([second, third])


def beside_other_work(work):
    """Runs `work` (a coroutine) beside a task that counts its turns of the loop: `work`'s result,
    and the turns the other task had while `work` ran."""
    turns = []

    async def run():
        async def other_work():
            while True:
                turns.append(1)
                await asyncio.sleep(0)
        other = asyncio.create_task(other_work())
        await asyncio.sleep(0)
        before = len(turns)
        result = await work
        during = len(turns) - before
        other.cancel()
        return result, during

    return asyncio.run(run())


def test_the_json_in_steps_is_pydantics_json_and_gives_the_loop_back(monkeypatch):
    report = live_country().report()
    assert report.not_evaluated and any(v.cause is not None for v in report.violations)
    monkeypatch.setattr("streams.report_json.SLICE", 7)
    text, turns = beside_other_work(report_json_in_steps(report, step_seconds=0))
    assert text == report.model_dump_json().encode()
    # One turn after each slice of 7 of each list at least.
    slices = sum(-(-len(getattr(report, name)) // 7) for name in ("districts", "schools", "violations", "not_evaluated"))
    assert turns >= slices > 20


def test_an_empty_report_in_steps_is_pydantics_json():
    empty = Report(as_of="2026-09-01", rule_pack="national-2017", districts=[], schools=[], violations=[])
    assert asyncio.run(report_json_in_steps(empty)) == empty.model_dump_json().encode()


def test_merged_reports_are_in_the_order_of_one_report_whatever_order_they_come_in():
    live = live_country(4)
    first, second, third, fourth = ids = sorted(live.districts)
    whole = live.report()
    assert merge_reports(live.assessor, [live.report([d]) for d in reversed(ids)]) == whole
    # Reports of two districts each: joined, their violations are out of place order until sorted.
    mixed = [live.report([first, third]), live.report([second, fourth])]
    assert [v.district for r in mixed for v in r.violations] != [v.district for v in whole.violations]
    assert merge_reports(live.assessor, mixed) == whole
