"""A district's CV over part of its schools, as a worker keeps it: the live report equals the
batch assessment at every step while schools without the figure come and go. Such a school adds
nothing to the indicator's sums, so the figures a re-evaluation keeps are the same object as
before it: only the count of the level's schools says the CV is no longer the district's. The
worker's /metrics marks such a CV with that count, and drops the mark once every school reports."""

from __future__ import annotations

import datetime as dt

from alerts.metrics import MetricsText
from make import school, snapshot
from pipelines import PACK, fold, loaded
from rules.evaluate import assess
from schemas import events as ev
from streams.live import LiveSource
from streams.load import snapshot_events
from streams.pipeline import Pipeline


def sports(ident: str, per_student: float) -> dict:
    """A primary school of 1000 students with `per_student` m² of sports area each."""
    return school(ident, sections={"primary": {"sports_area_m2": per_student * 1000}})


def unreported(ident: str) -> dict:
    made = school(ident)
    del made["sections"]["primary"]["sports_area_m2"]
    return made


def sent(pipeline: Pipeline, doc: dict, revision: int = 0) -> None:
    """A school's whole record, as a school.snapshot of it (a new school, or a corrected one)."""
    fold(pipeline, [e for e in snapshot_events(snapshot(doc), revision=revision) if e.type == "school.snapshot"])


def closed(pipeline: Pipeline, ident: str) -> None:
    at = dt.datetime(2026, 9, 2, 9, tzinfo=ev.CHINA_STANDARD_TIME)
    fold(pipeline, [ev.SchoolClosed(event_id=f"closed:{ident}", source="test", district="320571", school=ident,
                                    occurred_at=at, version=1)])


def same_as_batch(pipeline: Pipeline, *schools: dict):
    """The live report, checked against the batch assessment of `schools`; returned for more checks."""
    report = pipeline.live.report()
    for violation in report.violations:
        violation.cause = None
    assert report == assess(snapshot(*schools), PACK)
    return report


def r5(report):
    return report.districts[0].sections["primary"].indicators["R5"]


def r5_cv_findings(report) -> list:
    return [n for n in report.not_evaluated if n.rule == "R5.cv"]


def test_a_school_without_the_figure_arriving_and_leaving_moves_the_cv_to_undetermined_and_back():
    # X = 10 and 29.9 m² for 1000 students each: X̄ = 19.95, S = 9.95, CV = 0.49875 ≤ 0.50.
    a, b, c = sports("320571-001", 10), sports("320571-002", 29.9), unreported("320571-003")
    pipeline = loaded(snapshot(a, b))
    assert r5(same_as_batch(pipeline, a, b)).ok is True

    sent(pipeline, c)  # adds nothing to R5's sums: its figures are those of before
    report = same_as_batch(pipeline, a, b, c)
    assert (r5(report).value, r5(report).cv, r5(report).ok) == (19.95, 0.4987, None)
    assert [(n.section, n.schools_unreported, n.missing) for n in r5_cv_findings(report)] == \
        [("primary", 1, ["sports_area_m2"])]

    # Another indicator moves: the district is evaluated again, R5's outcome and finding are kept.
    a = {**a, "sections": {"primary": {**a["sections"]["primary"], "teachers_above_required_degree": 60}}}
    sent(pipeline, a, revision=1)
    assert len(r5_cv_findings(same_as_batch(pipeline, a, b, c))) == 1

    closed(pipeline, "320571-003")
    report = same_as_batch(pipeline, a, b)
    assert r5(report).ok is True and r5_cv_findings(report) == []


def test_a_cv_over_its_limit_on_part_of_the_schools_stays_a_violation_and_says_so_until_all_report():
    # X = 10 and 30.1: X̄ = 20.05, S = 10.05, CV = 0.50125 > 0.50.
    a, b, c = sports("320571-001", 10), sports("320571-002", 30.1), unreported("320571-003")
    pipeline = loaded(snapshot(a, b, c))
    report = same_as_batch(pipeline, a, b, c)
    cv = next(v for v in report.violations if v.rule == "R5.cv")
    assert (cv.value, cv.limit, r5(report).ok) == (0.5012, 0.5, False)
    assert cv.message_en.endswith(" (1 of 3 primary schools did not report sports_area_m2; "
                                  "computed over the other 2 only)")
    assert r5_cv_findings(report) == []  # violated on what is known: one outcome per rule and place

    closed(pipeline, "320571-003")  # the same violation, over every school now
    report = same_as_batch(pipeline, a, b)
    cv = next(v for v in report.violations if v.rule == "R5.cv")
    assert cv.value == 0.5012 and "did not report" not in cv.message_en


def unreported_lines(text: bytes) -> list[bytes]:
    """The samples of `junheng_district_indicator_schools_unreported` in a /metrics text."""
    return [line for line in text.splitlines() if line.startswith(b"junheng_district_indicator_schools_unreported{")]


R5_ONE_UNREPORTED = b'junheng_district_indicator_schools_unreported{district="320571",indicator="R5",section="primary"} 1.0'


def test_metrics_mark_the_cv_over_part_of_the_schools_until_the_school_reports():
    a, b, c = sports("320571-001", 10), sports("320571-002", 29.9), unreported("320571-003")
    pipeline = loaded(snapshot(a, b))
    metrics = MetricsText(LiveSource(pipeline.live))
    assert unreported_lines(metrics.render()) == []

    sent(pipeline, c)  # R5 within its limit on 001 and 002: undetermined, and so marked
    assert r5(same_as_batch(pipeline, a, b, c)).ok is None
    assert unreported_lines(metrics.render()) == [R5_ONE_UNREPORTED]

    # 003 reports its sports area: 10, 29.9 and 20 m² for 1000 students each, X̄ = 19.9667,
    # S² = (9.9667² + 9.9333² + 0.0333²) / 3 = 66.002, S = 8.1242, CV = 0.4069 over all three, a
    # pass; the mark goes with the next scrape.
    c = sports("320571-003", 20)
    sent(pipeline, c, revision=1)
    report = same_as_batch(pipeline, a, b, c)
    assert (r5(report).cv, r5(report).ok) == (0.4069, True)
    assert unreported_lines(metrics.render()) == []


def test_metrics_mark_a_violated_cv_over_part_of_the_schools_too():
    # Over its limit on 001 and 002 (CV 0.50125): violated, and partial all the same.
    a, b, c = sports("320571-001", 10), sports("320571-002", 30.1), unreported("320571-003")
    pipeline = loaded(snapshot(a, b, c))
    metrics = MetricsText(LiveSource(pipeline.live))
    text = metrics.render()
    assert b'junheng_rule_violation{district="320571",rule="R5.cv",school="",section="primary",severity="critical"} 1.0' \
        in text.splitlines()
    assert unreported_lines(text) == [R5_ONE_UNREPORTED]

    closed(pipeline, "320571-003")  # the same violation, over every school now: no mark
    assert r5(same_as_batch(pipeline, a, b)).ok is False
    assert unreported_lines(metrics.render()) == []
