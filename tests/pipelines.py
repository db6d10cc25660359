"""In-process pipelines for tests: in-memory tables, the national pack, and events folded one
record each, as single-event records reach a worker."""

from __future__ import annotations

from rules.evaluate import Assessor
from rules.pack import load_packs
from streams.live import LiveAssessment
from streams.load import snapshot_events
from streams.pipeline import Pipeline

PACK = load_packs(["national-2017"])


def loaded(snapshot, **options) -> Pipeline:
    """A pipeline, with its live assessment, that has folded and evaluated `snapshot`; `options`
    go to the Pipeline (`clock`, `future_tolerance`)."""
    pipeline = Pipeline({}, {}, LiveAssessment(Assessor(PACK, snapshot.as_of)), **options)
    fold(pipeline, snapshot_events(snapshot))
    return pipeline


def fold(pipeline: Pipeline, events) -> None:
    """Fold events one record each, as single-event records arrive, then evaluate."""
    for event in events:
        pipeline.handle(event.model_dump_json().encode(), 0)
    pipeline.flush()
