"""The live report read in steps, as a worker serves `/report`: the same report as one read at
once, with the event loop given back between districts."""

from __future__ import annotations

import asyncio

from junheng.examples import country
from pipelines import fold, loaded
from streams.live import LiveAssessment
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
