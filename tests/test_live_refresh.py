"""A district is evaluated again only when something it reads moved: its record or its sums.

About a third of single events (a class opened or resized, a training posting, a budget) change
a school but not its part of the district's sums; evaluating the district again for them would
find what the last evaluation found."""

from __future__ import annotations

import datetime as dt

from make import school, snapshot
from pipelines import PACK, fold, loaded
from schemas import events as ev
from rules.evaluate import assess
from streams.load import snapshot_events
from streams.pipeline import Pipeline

SNAP = snapshot(school(), school("320571-002", "junior"))


def changed(pipeline: Pipeline, version: int = 2, **fields) -> None:
    """Fold a new snapshot (its `version`) of the first school with `fields` changed, then evaluate."""
    record = SNAP.schools[0].model_copy(update=fields)
    event = next(e for e in snapshot_events(SNAP.model_copy(update={"schools": [record]}))
                 if e.type == "school.snapshot")
    fold(pipeline, [event.model_copy(update={"version": version})])


def test_a_change_that_leaves_the_sums_as_they_were_evaluates_the_school_alone():
    pipeline = loaded(SNAP)
    live = pipeline.live.districts["320571"]
    result, evaluations = live.result, pipeline.live.evaluations
    changed(pipeline, public_funds_budget_cny=900_000.0)  # school rules only: not in the sums
    assert live.result is result
    assert pipeline.live.evaluations == evaluations + 1  # the school


def test_a_change_that_moves_the_sums_evaluates_the_district_again():
    pipeline = loaded(SNAP)
    live = pipeline.live.districts["320571"]
    result, evaluations = live.result, pipeline.live.evaluations
    changed(pipeline, rotated=0, rotated_key=0)  # 3 of 40 eligible: G10 falls under 10%
    assert live.result is not result
    assert pipeline.live.evaluations == evaluations + 2
    assert "G10.rotation" in {v.rule for v in pipeline.live.report().violations}


def test_a_new_district_record_evaluates_the_district_again():
    pipeline = loaded(SNAP)
    live = pipeline.live.districts["320571"]
    result = live.result
    pipeline.live.set_district("320571", pipeline.district("320571"))
    pipeline.live.refresh("320571")
    assert live.result is not result


def test_the_live_report_after_such_changes_is_the_batch_assessment():
    pipeline = loaded(SNAP)
    changed(pipeline, 2, public_funds_budget_cny=900_000.0)
    changed(pipeline, 3, rotated=0, rotated_key=0)  # a snapshot: the budget is as before
    expected = assess(SNAP.model_copy(update={"schools": [
        SNAP.schools[0].model_copy(update={"rotated": 0, "rotated_key": 0}), SNAP.schools[1]]}), PACK)
    report = pipeline.live.report()
    for violation in report.violations:
        violation.cause = None
    assert report == expected


CROWDED = snapshot(school(sections={"primary": {"class_sizes": [40] * 21 + [52]}}), school("320571-002", "junior"))


def district_updated(pipeline: Pipeline, version: int, **fields) -> None:
    fold(pipeline, [ev.DistrictUpdated(event_id=f"d{version}", source="test", district="320571", version=version,
                                       occurred_at=dt.datetime.combine(SNAP.as_of + dt.timedelta(days=1), dt.time(9),
                                                                       tzinfo=dt.timezone.utc), **fields)])


def test_a_district_figure_evaluates_the_district_alone_and_a_new_name_its_schools_too():
    # Every district.updated re-evaluated all the district's schools (68 in the bench's
    # districts), though a school's evaluation reads only the district's id and name.
    pipeline = loaded(CROWDED)
    evaluations = pipeline.live.evaluations
    district_updated(pipeline, 1, teacher_avg_pay_cny=1.0)  # below civil servants': G7 breaks
    assert pipeline.live.evaluations == evaluations + 1  # the district
    assert "G7" in {v.rule for v in pipeline.live.report().violations}
    district_updated(pipeline, 2, name="园区")
    assert pipeline.live.evaluations == evaluations + 1 + 1 + 2  # the district and both schools
    report = pipeline.live.report()  # the schools' messages name the district anew
    assert any("园区" in v.message_zh and v.school for v in report.violations)
    expected = assess(CROWDED.model_copy(update={"districts": [CROWDED.districts[0].model_copy(
        update={"teacher_avg_pay_cny": 1.0, "name": "园区"})]}), PACK)
    for violation in report.violations:
        violation.cause = None
    assert report == expected
