"""Rules a worker could not evaluate for want of data, in its /metrics: counted per district and
rule while the data is missing, whichever of the district's schools changed since the last
scrape, and gone once the data arrives."""

from __future__ import annotations

import datetime as dt

from alerts.metrics import MetricsText
from make import school, snapshot
from pipelines import fold, loaded
from schemas import events as ev
from streams.live import LiveSource
from streams.load import snapshot_events
from streams.pipeline import Pipeline


def sent(pipeline: Pipeline, doc: dict, revision: int) -> None:
    """A school's whole record, as a school.snapshot of it (a correction, at `revision`)."""
    fold(pipeline, [e for e in snapshot_events(snapshot(doc), revision=revision) if e.type == "school.snapshot"])


def teacher_pay_reported(pipeline: Pipeline) -> None:
    fold(pipeline, [ev.DistrictUpdated(event_id="pay", source="test", district="320571", version=1,
                                       occurred_at=dt.datetime(2026, 9, 2, 9, tzinfo=ev.CHINA_STANDARD_TIME),
                                       teacher_avg_pay_cny=198000.0)])


def not_evaluated_lines(text: bytes) -> list[bytes]:
    """The samples of `junheng_rules_not_evaluated` in a /metrics text."""
    return [line for line in text.splitlines() if line.startswith(b"junheng_rules_not_evaluated{")]


def line(rule: str, places: int) -> bytes:
    return f'junheng_rules_not_evaluated{{district="320571",rule="{rule}"}} {places:.1f}'.encode()


def test_rules_not_evaluated_are_counted_until_the_data_arrives():
    # The district did not report its teacher pay (G7, a district rule); 002 and 003 not their
    # music rooms (G3.music, a school rule). 001 reported everything.
    a, b, c = school("320571-001"), school("320571-002", music_rooms_m2=None), school("320571-003", music_rooms_m2=None)
    pipeline = loaded(snapshot(a, b, c, teacher_avg_pay_cny=None))
    metrics = MetricsText(LiveSource(pipeline.live))
    assert not_evaluated_lines(metrics.render()) == [line("G3.music", 2), line("G7", 1)]

    # 001 changes: the district's own lines are rendered again from a report holding 001 alone,
    # and still count 002's and 003's rooms.
    sent(pipeline, {**a, "training_spend_cny": 70_000.0}, revision=1)
    text = metrics.render()
    assert not_evaluated_lines(text) == [line("G3.music", 2), line("G7", 1)]
    assert text == MetricsText(LiveSource(pipeline.live)).render()  # as rendered afresh

    sent(pipeline, school("320571-002"), revision=1)  # 002 reports its music rooms
    assert not_evaluated_lines(metrics.render()) == [line("G3.music", 1), line("G7", 1)]

    teacher_pay_reported(pipeline)
    assert not_evaluated_lines(metrics.render()) == [line("G3.music", 1)]

    sent(pipeline, school("320571-003"), revision=1)
    text = metrics.render()
    assert not_evaluated_lines(text) == [] and pipeline.live.report().not_evaluated == []
    assert b"# TYPE junheng_rules_not_evaluated gauge" in text.splitlines()  # the family stays, empty


def test_no_line_for_a_district_whose_rules_were_all_evaluated():
    pipeline = loaded(snapshot(school("320571-001"), school("320571-002")))
    assert pipeline.live.report().not_evaluated == []
    text = MetricsText(LiveSource(pipeline.live)).render()
    assert b"# TYPE junheng_rules_not_evaluated gauge" in text.splitlines()  # the family, without a sample
    assert not_evaluated_lines(text) == []
