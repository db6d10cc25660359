"""A worker's live assessment when its partitions change: districts of partitions it keeps are
neither evaluated nor rendered again, those it loses are dropped, those it gains (or that Faust
recovered anew) are built from the tables, and the result equals a fresh build."""

from __future__ import annotations

import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.metrics import MetricsText
from junheng.examples import country
from rules.evaluate import Assessor
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
    """A pipeline over tables it stores into, as a worker's writer does."""

    def __init__(self, schools: dict | None = None, districts: dict | None = None):
        self.schools = {} if schools is None else schools
        self.districts = {} if districts is None else districts
        self.pipeline = Pipeline(self.schools, self.districts, LiveAssessment(Assessor(PACK, COUNTRY.as_of)))

    def fold(self, events) -> None:
        for event in events:
            self.pipeline.handle(event.model_dump_json().encode(), partition_of(event.district))
        for write in self.pipeline.take_writes():
            (self.schools if write.table == "schools" else self.districts)[write.key] = write.state

    def fresh(self, assigned: frozenset[int]) -> Pipeline:
        """Another worker's pipeline built from the same tables for `assigned`."""
        other = Worker(self.schools, self.districts).pipeline
        other.sync(assigned)
        return other


def partition_of(district_id: str) -> int:
    return zlib.crc32(district_id.encode()) % PARTITIONS


def without_causes(report):
    for violation in report.violations:
        violation.cause = None
    return report


def loaded() -> Worker:
    worker = Worker()
    worker.fold(snapshot_events(COUNTRY))
    worker.pipeline.sync(ALL)
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
    assert without_causes(live.report()) == worker.fresh(frozenset({0, 1})).live.report()


def test_gained_partitions_alone_are_built():
    worker = loaded()
    worker.pipeline.sync(frozenset({0, 1}))
    live = worker.pipeline.live
    kept = {d: live.districts[d].version for d in live.districts}
    worker.pipeline.sync(frozenset({0, 1, 2}))
    assert {d: live.districts[d].version for d in kept} == kept
    assert {partition_of(d) for d in live.districts} == {0, 1, 2}
    assert without_causes(live.report()) == worker.fresh(frozenset({0, 1, 2})).live.report()


def test_a_partition_recovered_anew_is_built_again_though_it_was_kept():
    worker = loaded()
    live = worker.pipeline.live
    before = {d: live.districts[d].version for d in live.districts}
    worker.pipeline.recovered_anew({3})
    worker.pipeline.sync(ALL)  # the same partitions as before
    after = {d: live.districts[d].version for d in live.districts}
    assert {d for d in before if after[d] != before[d]} == {d for d in before if partition_of(d) == 3}


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
        assert without_causes(worker.pipeline.live.report()) == fresh.live.report()
        # The same lines; districts come in another order (kept ones first).
        assert sorted(kept.render().splitlines()) == sorted(
            MetricsText(LiveSource(fresh.live), clock=lambda: 1_000.0).render().splitlines())
