"""The live assessment, re-evaluated change by change as a worker does, equals the batch
assessment of the same moment: whatever a re-evaluation keeps from the last one (a district's
coefficient-of-variation outcomes whose figures did not move, a school's rendered /metrics lines)
must be what a fresh one finds."""

from __future__ import annotations


from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.metrics import MetricsText
from junheng.examples import country, rural_county
from pipelines import PACK, fold, loaded
from rules.evaluate import assess
from streams.live import LiveSource
from streams.simulate import Simulator

RURAL = rural_county()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), chunks=st.lists(st.integers(1, 12), min_size=1, max_size=25))
def test_live_results_after_every_flush_equal_the_batch_assessment(seed, chunks):
    sim = Simulator(RURAL, seed=seed)
    pipeline = loaded(RURAL)
    for size in chunks:
        fold(pipeline, sim.events(size))
        report = pipeline.live.report()
        for violation in report.violations:
            violation.cause = None
        assert report == assess(sim.snapshot(), PACK, RURAL.as_of)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), chunks=st.lists(st.integers(1, 30), min_size=1, max_size=8),
       school_series=st.sampled_from(["all", "violations"]))
def test_metrics_kept_across_flushes_equal_a_fresh_render(seed, chunks, school_series):
    snapshot = country(3, 1)
    sim = Simulator(snapshot, seed=seed)
    pipeline = loaded(snapshot)
    kept = MetricsText(LiveSource(pipeline.live), school_series=school_series, clock=lambda: 1_000.0)
    kept.render()
    for size in chunks:
        fold(pipeline, sim.events(size))
        fresh = MetricsText(LiveSource(pipeline.live), school_series=school_series, clock=lambda: 1_000.0)
        assert kept.render() == fresh.render()
