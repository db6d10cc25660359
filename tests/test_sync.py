"""A worker's live assessment when its partitions change: districts of partitions it keeps are
neither evaluated nor rendered again, those it loses are dropped, those it gains (or that Faust
recovered anew) are built from the tables, and the result equals a fresh build, the causes of
violations included (they are kept in the states)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import zlib

import orjson
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.metrics import MetricsText
from junheng.examples import country, rural_county, suzhou_sip
from kafka_env import without_causes
from rules.evaluate import Assessor
from schemas import events as ev
from schemas.china_time import CHINA_STANDARD_TIME
from rules.pack import load_packs
from streams.live import LiveAssessment, LiveSource
from streams.load import snapshot_events
from streams.pipeline import Pipeline
from streams.simulate import Simulator

PACK = load_packs(["national-2017"])
PARTITIONS = 4
COUNTRY = country(8, 1)
ALL = frozenset(range(PARTITIONS))


class Worker:
    """A pipeline over tables it stores into, as a worker's writer does, and the changelogs the
    writes go to."""

    def __init__(self, as_of=COUNTRY.as_of, changelogs: dict | None = None):
        self.as_of = as_of
        self.tables = {"schools": {}, "districts": {}}
        for name, records in (changelogs or {}).items():  # a restart: the tables recovered
            self.tables[name].update((key, orjson.loads(value)) for key, value in records.items())
        self.changelogs = {"schools": {}, "districts": {}}
        self.pipeline = Pipeline(self.tables["schools"], self.tables["districts"],
                                 LiveAssessment(Assessor(PACK, as_of)))

    def fold(self, events) -> None:
        for event in events:
            self.pipeline.handle(event.model_dump_json().encode(), partition_of(event.district))
        for write in self.pipeline.take_writes():
            self.tables[write.table][write.key] = write.state
            # As the broker holds it: what was written then, not what the state became since.
            self.changelogs[write.table][write.key] = orjson.dumps(write.state)

    def fresh(self, assigned: frozenset[int]) -> Pipeline:
        """Another worker's pipeline, its tables recovered from the changelogs, for `assigned`."""
        other = Worker(self.as_of, self.changelogs).pipeline
        other.sync(assigned)
        return other


def partition_of(district_id: str) -> int:
    return zlib.crc32(district_id.encode()) % PARTITIONS


def loaded() -> Worker:
    worker = Worker()
    worker.pipeline.sync(ALL)  # as a worker, which builds its state before it folds records
    worker.fold(snapshot_events(COUNTRY))
    return worker


def test_the_country_spreads_over_every_partition():
    assert {partition_of(d.id) for d in COUNTRY.districts} == set(ALL)


def test_kept_districts_are_not_evaluated_again_and_lost_ones_are_dropped():
    worker = loaded()
    live = worker.pipeline.live
    versions = {d: live.districts[d].version for d in live.districts}
    evaluations = live.evaluations
    worker.pipeline.sync(frozenset({0, 1}))
    assert {partition_of(d) for d in live.districts} == {0, 1}
    assert live.evaluations == evaluations
    assert {d: live.districts[d].version for d in live.districts} == {d: v for d, v in versions.items() if d in live.districts}
    assert all(partition_of(key[1]) in (0, 1) for key in live.causes)
    assert live.report() == worker.fresh(frozenset({0, 1})).live.report()


def test_gained_partitions_alone_are_built():
    worker = loaded()
    worker.pipeline.sync(frozenset({0, 1}))
    live = worker.pipeline.live
    kept = {d: live.districts[d].version for d in live.districts}
    worker.pipeline.sync(frozenset({0, 1, 2}))
    assert {d: live.districts[d].version for d in kept} == kept
    assert {partition_of(d) for d in live.districts} == {0, 1, 2}
    assert live.report() == worker.fresh(frozenset({0, 1, 2})).live.report()


def test_a_partition_recovered_anew_is_built_again_though_it_was_kept():
    worker = loaded()
    live = worker.pipeline.live
    before = {d: live.districts[d].version for d in live.districts}
    worker.pipeline.recovered_anew({3})
    worker.pipeline.sync(ALL)  # the same partitions as before
    after = {d: live.districts[d].version for d in live.districts}
    assert {d for d in before if after[d] != before[d]} == {d for d in before if partition_of(d) == 3}


def test_the_pipeline_holds_its_partitions_only_once_they_are_built():
    """What /ready reads: not before the first build, nor while one runs, nor with a partition
    recovered anew and not yet built again; and only for the partitions built."""
    worker = Worker(changelogs=loaded().changelogs)  # a restart: the tables recovered
    pipeline = worker.pipeline
    assert not pipeline.holds(ALL)
    steps = pipeline.syncing(ALL)
    next(steps)
    assert not pipeline.holds(ALL)  # building
    for _ in steps:
        pass
    assert pipeline.holds(ALL) and not pipeline.holds(frozenset({0, 1}))
    pipeline.recovered_anew({2})
    assert not pipeline.holds(ALL)
    pipeline.sync(ALL)
    assert pipeline.holds(ALL)


def test_causes_outlive_a_restart_from_the_tables():
    rural = rural_county()  # its district breaks coefficient-of-variation rules
    worker = Worker(rural.as_of)
    worker.pipeline.sync(ALL)
    worker.fold(snapshot_events(rural))
    worker.fold(Simulator(rural, seed=3).events(200))
    worker.pipeline.sync(ALL)
    before = worker.pipeline.live.report()
    assert any(v.cause is not None and v.school is None for v in before.violations)  # a district's own
    assert any(v.cause is not None and v.cause.type != "school.snapshot" for v in before.violations)
    assert worker.fresh(ALL).live.report() == before


def test_a_district_violation_moved_by_a_school_keeps_its_cause_across_a_restart():
    sip = suzhou_sip()  # every coefficient of variation within its limit
    worker = Worker(sip.as_of)
    worker.pipeline.sync(ALL)
    worker.fold(snapshot_events(sip))
    # A corrected snapshot of one school with ten times the sports area: the district's R5
    # coefficient of variation crosses its line because of that school's event, while the
    # district's own state does not change.
    school = sip.schools[0]
    big = school.model_copy(update={"sports_area_m2": (school.sports_area_m2 or 0) * 10 + 100_000})
    corrected = [e for e in snapshot_events(sip.model_copy(update={"schools": [big]}), revision=1)
                 if e.type == "school.snapshot"]
    worker.fold(corrected)
    worker.pipeline.sync(ALL)
    moved = [v for v in worker.pipeline.live.report().violations if v.rule == "R5.cv"]
    assert moved and all(v.cause.event_id == corrected[0].event_id for v in moved)
    assert [v for v in worker.fresh(ALL).live.report().violations if v.rule == "R5.cv"] == moved


@pytest.mark.parametrize("folded", ["before the first sync", "during the first build"])
def test_records_folded_at_a_start_do_not_take_over_the_causes_of_older_violations(folded):
    worker = loaded()
    sim = Simulator(COUNTRY, seed=5)
    worker.fold(sim.events(50))
    before = {key(v): v.cause for v in worker.pipeline.live.report().violations}
    restarted = Worker(COUNTRY.as_of, worker.changelogs)
    event = next(e for e in sim.events(50) if e.type == "teacher.hired")
    if folded == "before the first sync":
        restarted.fold([event])  # a record may come before the worker's first evaluation round
        restarted.pipeline.sync(ALL)
    else:
        steps = restarted.pipeline.syncing(ALL)
        next(steps)  # one district built, no school yet
        restarted.fold([event])  # and its write, which would flush first: the flush waits
        for _ in steps:
            pass
        restarted.fold([])
    after = {key(v): v.cause for v in restarted.pipeline.live.report().violations}
    kept = [k for k in after if k in before and k[2] == event.school]
    assert kept and all(after[k] == before[k] for k in kept)


def test_causes_that_cannot_be_read_restore_nothing():
    worker = loaded()
    live = worker.pipeline.live
    district_id, school_id = next((v.district, v.school) for v in live.report().violations if v.school)
    live.causes.clear()
    for text in ("not json", "[1, 2]", '[["G4", null, "e", "t", "s", "not a time"]]', "{}"):
        live.restore_causes(district_id, school_id, text)
    assert live.causes == {}


def key(violation):
    return violation.rule, violation.district, violation.school, violation.section


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000),
       steps=st.lists(st.tuples(st.integers(0, 40), st.frozensets(st.integers(0, PARTITIONS - 1)), st.booleans()),
                      min_size=1, max_size=8))
def test_after_any_changes_of_partitions_the_live_state_equals_a_fresh_build(seed, steps):
    worker = loaded()
    sim = Simulator(COUNTRY, seed=seed)
    kept = MetricsText(LiveSource(worker.pipeline.live), clock=lambda: 1_000.0)
    kept.render()
    for events, assigned, anew in steps:
        worker.fold(sim.events(events))
        if anew:
            worker.pipeline.recovered_anew(assigned)
        worker.pipeline.sync(assigned)
        fresh = worker.fresh(assigned)
        assert worker.pipeline.live.report() == fresh.live.report()
        # The same lines; districts come in another order (kept ones first).
        assert sorted(kept.render().splitlines()) == sorted(
            MetricsText(LiveSource(fresh.live), clock=lambda: 1_000.0).render().splitlines())


def metrics_lines(live) -> list[bytes]:
    return sorted(MetricsText(LiveSource(live), clock=lambda: 1_000.0).render().splitlines())


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), before=st.frozensets(st.integers(0, PARTITIONS - 1)),
       after=st.frozensets(st.integers(0, PARTITIONS - 1), min_size=1), every=st.integers(1, 30))
def test_records_folded_between_the_steps_of_a_build_are_evaluated_after_it(seed, before, after, every):
    worker = loaded()
    worker.pipeline.sync(before)
    events = iter(Simulator(COUNTRY, seed=seed).events(300))
    for step, _ in enumerate(worker.pipeline.syncing(after)):
        if step % every == 0:
            worker.fold(itertools.islice(events, 2))  # and its writes, while the flush waits
    worker.fold([])  # the next round: its flush, then the writes it caused
    fresh = worker.fresh(after)
    assert worker.pipeline.live.report() == fresh.live.report()
    assert metrics_lines(worker.pipeline.live) == metrics_lines(fresh.live)


def test_a_build_left_unfinished_is_done_again_by_the_next_sync():
    worker = loaded()
    worker.pipeline.sync(frozenset({0}))
    steps = worker.pipeline.syncing(ALL)
    for _ in itertools.islice(steps, 20):
        pass
    steps.close()  # as when the task building it is cancelled
    assert not worker.pipeline.building
    worker.pipeline.sync(ALL)
    assert worker.pipeline.live.report() == worker.fresh(ALL).live.report()


def test_a_build_in_steps_gives_the_loop_back_and_other_callers_wait_for_its_end():
    worker = loaded()
    worker.pipeline.sync(frozenset({0}))
    fresh = worker.fresh(ALL).live.report()

    calls = []

    def between():
        calls.append(worker.pipeline.building)

    async def main():
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.ensure_future(tick())
        build = asyncio.ensure_future(worker.pipeline.sync_in_steps(ALL, step_seconds=0, between_steps=between))
        await asyncio.sleep(0)
        assert worker.pipeline.building
        await worker.pipeline.sync_in_steps(ALL)  # comes while the build is under way
        seen_then = worker.pipeline.live.report()
        await build
        ticker.cancel()
        return ticks, seen_then

    ticks, seen_then = asyncio.run(main())
    assert seen_then == fresh
    assert ticks > 100  # the loop ran between the build's steps
    assert len(calls) > 100 and all(calls)  # and `between_steps` before each time it did


def test_while_a_build_drops_lost_districts_only_those_of_owned_partitions_are_renderable():
    worker = loaded()
    steps = worker.pipeline.syncing(frozenset({0}))
    next(steps)  # the first lost district dropped, the others not yet
    assert any(partition_of(d) != 0 for d in worker.pipeline.live.districts)
    renderable = {district_id for district_id, *_ in worker.pipeline.renderable()}
    assert renderable and {partition_of(d) for d in renderable} == {0}
    for _ in steps:
        pass
    assert {district_id for district_id, *_ in worker.pipeline.renderable()} == set(worker.pipeline.live.districts)


def _handled(worker: Worker, events) -> None:
    """Fold `events` without the round's flush and writes, as records between two rounds."""
    for event in events:
        worker.pipeline.handle(event.model_dump_json().encode(), partition_of(event.district))


def test_a_read_of_one_district_evaluates_its_changes_alone():
    worker = loaded()
    events = Simulator(COUNTRY, seed=3).events(400)
    changed = sorted({e.district for e in events})
    assert len(changed) >= 2
    _handled(worker, events)
    live = worker.pipeline.live
    versions = {d: live.districts[d].version for d in live.districts}
    worker.pipeline.sync(ALL, districts=[changed[0]])
    moved = {d for d in live.districts if live.districts[d].version != versions[d]}
    assert moved == {changed[0]}
    assert set(worker.pipeline.dirty_schools.values()) | worker.pipeline.dirty_districts == set(changed[1:])
    # What was read is what a whole flush gives that district.
    whole = loaded()
    whole.fold(events)
    assert live.report([changed[0]]) == whole.pipeline.live.report([changed[0]])


def test_a_read_of_a_district_evaluates_its_own_update():
    worker = loaded()
    district = COUNTRY.districts[0]
    cut = ev.DistrictUpdated(event_id="pay-cut", source="test", district=district.id,
                             occurred_at=dt.datetime(2023, 9, 2, 9, tzinfo=CHINA_STANDARD_TIME), version=1,
                             teacher_avg_pay_cny=district.civil_servant_avg_pay_cny - 1000)
    _handled(worker, [cut])
    worker.pipeline.sync(ALL, districts=[district.id])
    assert [v.rule for v in worker.pipeline.live.report([district.id]).violations if v.rule == "G7"] == ["G7"]
    assert not worker.pipeline.dirty_districts


DISTRICTS = sorted(d.id for d in COUNTRY.districts)


def _without_causes(report) -> dict:
    # Which event a violation is put down to depends on when its place was evaluated: a district
    # read later than in whole rounds may find a later event of the same school.
    return without_causes(json.loads(report.model_dump_json()))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000),
       reads=st.lists(st.tuples(st.integers(0, 60), st.lists(st.sampled_from(DISTRICTS), max_size=3)),
                      min_size=1, max_size=8))
def test_reads_of_some_districts_between_rounds_leave_the_state_a_fresh_build_gives(seed, reads):
    worker, rounds = loaded(), loaded()
    sim = Simulator(COUNTRY, seed=seed)
    for count, districts in reads:
        events = sim.events(count)
        _handled(worker, events)
        worker.pipeline.sync(ALL, districts=districts)
        rounds.fold(events)
        assert _without_causes(worker.pipeline.live.report(districts)) == _without_causes(
            rounds.pipeline.live.report(districts))
    worker.fold([])  # the next round: its flush, then the writes it caused
    assert worker.pipeline.live.report() == worker.fresh(ALL).live.report()
    assert metrics_lines(worker.pipeline.live) == metrics_lines(worker.fresh(ALL).live)
