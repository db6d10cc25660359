"""Records a worker's pipeline meets from school systems that do not quite follow the contract:
each event is applied or dead-lettered with its reason, and none stops the record."""

from __future__ import annotations

import copy
import json

import pytest

from junheng.examples import rural_county
from pipelines import loaded
from schemas.booleans import NOT_TRUE_OR_FALSE_MESSAGE
from schemas.numbers import BOOLEAN_MESSAGE
from streams.load import snapshot_events
from streams.simulate import Simulator
from streams.state import school_record

COUNTY = rural_county()


def _batch(events: list[dict]) -> bytes:
    return json.dumps({"events": events}, ensure_ascii=False).encode()


def _changes(count: int, seed: int = 5) -> list[dict]:
    sim = Simulator(COUNTY, seed=seed)
    return [json.loads(sim.next_event().model_dump_json()) for _ in range(count)]


def test_a_batch_mixing_timestamps_with_and_without_an_offset_is_applied_whole():
    # A TypeError comparing the two stopped the agent mid-record: the events folded before it
    # were not written, the ones after it neither applied nor dead-lettered.
    events = _changes(3)
    events[1]["occurred_at"] = events[1]["occurred_at"][:19]  # "2026-09-02T08:00:37", local time
    pipeline = loaded(COUNTY)
    result = pipeline.handle(_batch(events), 0, key=COUNTY.districts[0].id)
    assert result.applied == 3 and result.dead_letters == []


def test_an_event_of_another_district_than_its_key_is_dead_lettered():
    # Folded into the key's partition, a school's state had a second, stale copy there, which a
    # restart brought back over the newer one.
    event = _changes(1)[0]
    pipeline = loaded(COUNTY)
    for key, says in (("110101", "the record's key '110101' is not the event's district '431299'"),
                      ("", "a record without a key is not the event's district '431299'")):
        result = pipeline.handle(json.dumps(event).encode(), 0, key=key)
        assert result.applied == 0 and [d.reason.split(":")[0] for d in result.dead_letters] == [says]
        assert result.dead_letters[0].original == json.dumps(event).encode()
    assert pipeline.handle(json.dumps(event).encode(), 0, key="431299").applied == 1


def test_a_rotation_to_the_school_itself_is_dead_lettered():
    # Applied, each took a teacher out of the school and counted a rotation.
    rotation = next(e for e in _changes(400) if e["type"] == "teacher.rotated")
    rotation["to_school"] = rotation["school"]
    pipeline = loaded(COUNTY)
    before = pipeline.school(rotation["school"])["sums"]
    result = pipeline.handle(json.dumps(rotation).encode(), 0, key=rotation["district"])
    assert result.applied == 0 and "a rotation goes to another school" in result.dead_letters[0].reason
    assert pipeline.school(rotation["school"])["sums"] == before


def test_a_rotation_corrected_to_another_school_is_taken_back_from_the_school_first_named():
    # The correction names the school left and the school now reached, not the school the
    # teacher was first sent to: the worker loads that one too, takes her back from it, and
    # marks it to be written and evaluated. Not loaded, the event failed to fold.
    first, corrected, school = (s.id for s in COUNTY.schools[:3])
    pipeline = loaded(COUNTY)
    for version, to_school in ((5, first), (6, corrected)):
        rotation = {"type": "teacher.rotated", "event_id": f"rotation-{version}", "source": "test",
                    "district": "431299", "school": school, "occurred_at": "2024-10-09T08:00:00+08:00",
                    "version": version, "teacher": "T9", "to_school": to_school, "year": 2024,
                    "image": {"level": "primary", "degree_above_required": True}}
        result = pipeline.handle(json.dumps(rotation).encode(), 0, key="431299")
        assert result.applied == 1 and result.dead_letters == []
    assert set(pipeline.dirty_schools) == {school, first, corrected}
    figures = {s.id: s.full_time_teachers for s in COUNTY.schools}
    assert {s: school_record(pipeline.school(s)).full_time_teachers - figures[s] for s in (school, first, corrected)} == {
        school: -1, first: 0, corrected: 1}



def test_a_correction_loads_and_marks_a_school_two_rotations_away():
    # Version 7 corrects version 6, which brought the teacher to school A: A's rotation of
    # version 5 is then corrected by its rotation of version 8, and school D, which version 5
    # reached, takes her back. The correction names neither A nor D: the worker finds A from
    # school B's rotations, D from A's, loads both and marks them to be written and evaluated.
    a, b, c, d = (s.id for s in COUNTY.schools[:4])
    pipeline = loaded(COUNTY)
    image = {"level": "primary", "degree_above_required": True}
    hired = {"type": "teacher.hired", "event_id": "hired-4", "source": "test", "district": "431299", "school": a,
             "occurred_at": "2024-10-09T08:00:00+08:00", "version": 4, "teacher": "T9", "after": image}
    assert pipeline.handle(json.dumps(hired).encode(), 0, key="431299").applied == 1
    for version, school, to_school in ((5, a, d), (6, b, a), (8, a, c), (7, b, c)):
        pipeline.flush()
        rotation = {"type": "teacher.rotated", "event_id": f"rotation-{version}", "source": "test",
                    "district": "431299", "school": school, "occurred_at": "2024-10-09T08:00:00+08:00",
                    "version": version, "teacher": "T9", "to_school": to_school, "year": 2024, "image": image}
        result = pipeline.handle(json.dumps(rotation).encode(), 0, key="431299")
        assert result.applied == 1 and result.dead_letters == []
    assert set(pipeline.dirty_schools) == {a, b, c, d}
    figures = {s.id: s.full_time_teachers for s in COUNTY.schools}
    assert school_record(pipeline.school(d)).full_time_teachers == figures[d]

def test_a_batch_item_utf8_cannot_encode_keeps_its_bytes_in_its_dead_letter():
    # A lone surrogate: the item's dead letter was empty, so nothing of it was left to look at.
    event = _changes(1)[0]
    event["source"] = "\ud800"
    pipeline = loaded(COUNTY)
    result = pipeline.handle(json.dumps({"events": [event]}).encode(), 0, key="431299")
    assert result.applied == 0 and len(result.dead_letters) == 1
    assert b"\\ud800" in result.dead_letters[0].original and event["event_id"].encode() in result.dead_letters[0].original


def test_a_batch_past_the_limit_is_dead_lettered_whole():
    # Folded one by one, 100,001 events held the worker's event loop for 4.6 s.
    value = json.dumps({"events": [{}] * 100_001}).encode()
    result = loaded(COUNTY).handle(value, 0, key="431299")
    assert result.applied == 0 and [d.reason for d in result.dead_letters] == [
        "a batch of 100,001 events; at most 100,000 / 批量事件过多"]
    assert result.dead_letters[0].original == value


def test_an_event_reusing_an_applied_version_for_other_content_is_dead_lettered_and_a_redelivery_is_not():
    # A correction sent with the version already applied was taken as a duplicate and dropped:
    # nothing told the sender, and the figures stayed wrong.
    event = next(e for e in _changes(60) if e["type"] == "enrolment.reported")
    pipeline = loaded(COUNTY)
    key = event["district"]
    assert pipeline.handle(json.dumps(event).encode(), 0, key=key).applied == 1
    state = copy.deepcopy(pipeline.school(event["school"]))
    redelivered = pipeline.handle(json.dumps(event).encode(), 0, key=key)
    assert redelivered.applied == 0 and redelivered.dead_letters == []
    correction = json.dumps({**event, "event_id": "fix", "students": event["students"] + 1}).encode()
    other = next(e for e in _changes(60, seed=6) if e["school"] != event["school"])
    result = pipeline.handle(_batch([json.loads(correction), other]), 0, key=key)
    assert result.applied == 1 and [json.loads(d.original) for d in result.dead_letters] == [json.loads(correction)]
    assert result.dead_letters[0].reason == (
        f"school {event['school']}: version {event['version']} of enrolment:{event['level']} was already applied "
        f"with other content; send the correction with a higher version / enrolment:{event['level']} 的版本号 "
        f"{event['version']} 已用于不同内容，请以更高版本号重发更正")
    assert pipeline.school(event["school"]) == state
    assert pipeline.health.events[("enrolment.reported", "rejected")] == 1


def test_a_fault_folding_one_event_dead_letters_that_event_alone_and_takes_its_changes_back(monkeypatch):
    # A fault of junheng's own (a KeyError made every district.updated fail) went out of the
    # pipeline: the events of the record folded before it stayed in memory unmarked for writing,
    # the record was dead-lettered whole, and the faulty event's own changes were left half made.
    import streams.state

    changes = _changes(400)
    facilities = next(e for e in changes if e["type"] == "facilities.updated")
    others = [e for e in changes if e["type"] == "enrolment.reported" and e["school"] != facilities["school"]][:2]
    pipeline = loaded(COUNTY)
    state = copy.deepcopy(pipeline.school(facilities["school"]))

    def fault(_state):  # runs once the facilities update's registers are set
        raise KeyError("sums")

    monkeypatch.setattr(streams.state, "_check_shared_figures", fault)
    result = pipeline.handle(_batch([others[0], facilities, others[1]]), 0, key=facilities["district"])
    assert result.applied == 2 and [json.loads(d.original) for d in result.dead_letters] == [facilities]
    assert result.dead_letters[0].reason == (
        "the worker failed to fold this event (KeyError('sums')) / 工作进程处理该事件失败")
    assert pipeline.school(facilities["school"]) == state
    assert {others[0]["school"], others[1]["school"]} <= set(pipeline.dirty_schools)
    assert pipeline.health.events[("facilities.updated", "rejected")] == 1


# Read as 1 and 0, `"students": true` was an enrolment of one student and `"amount_cny": true` a
# spend of 1 CNY. One field of each kind of number: counts, amounts, years, versions, a district's
# figures, one inside a class image and one inside a snapshot's record.
BOOLEAN_NUMBERS = [("enrolment.reported", ["students"], True), ("enrolment.reported", ["version"], False),
                   ("class.resized", ["after", "students"], False), ("facilities.updated", ["equipment_value_cny"], True),
                   ("budget.set", ["fiscal_year"], True), ("budget.set", ["public_funds_budget_cny"], True),
                   ("training.spent", ["amount_cny"], True), ("teacher.rotated", ["year"], True),
                   ("district.updated", ["teacher_avg_pay_cny"], False),
                   ("school.snapshot", ["record", "sections", "primary", "class_sizes", 0], True)]


def _registered() -> dict:
    """A school.registered of the county's first school, dated after its snapshot (the simulator
    sends none)."""
    school, change = COUNTY.schools[0], _changes(1)[0]
    return {"type": "school.registered", "event_id": "registered-1", "source": "test", "district": school.district,
            "school": school.id, "occurred_at": change["occurred_at"], "version": 1, "name": school.name,
            "kind": school.kind.value, "location": school.location.value, "public": True, "boarding": True}


def _with_value(kind: str, path: list, value) -> dict:
    """The first event of `kind` (simulated, of the county's snapshot, or `_registered`) with
    `value` at `path`."""
    if kind == "school.snapshot":
        event = json.loads(snapshot_events(COUNTY)[len(COUNTY.districts)].model_dump_json())
    elif kind == "school.registered":
        event = _registered()
    else:
        event = copy.deepcopy(next(e for e in _changes(400) if e["type"] == kind))
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event


def _reason(kind: str, path: list, message: str) -> str:
    return f"invalid event: {kind}.{'.'.join(map(str, path))}: {message} / 事件校验失败"


# Read as true, `"certified": 1` or `"boarding": "yes"` gave a flag a meaning the contract
# (`boolean`) does not give it; read as false, 0 and "no" did. Every flag of the events: a
# teacher's three, in each image a teacher event carries, and a school's two, in its registration
# and in its snapshot's record; each with 1, 0, "yes" and "true".
FLAGS = [("teacher.hired", ["after", "certified"]), ("teacher.left", ["before", "degree_above_required"]),
         ("teacher.updated", ["before", "certified"]), ("teacher.updated", ["after", "training_360h_completed"]),
         ("teacher.rotated", ["image", "degree_above_required"]), ("school.registered", ["public"]),
         ("school.registered", ["boarding"]), ("school.snapshot", ["record", "public"])]
# A boolean for a number, and a number or text for a flag, each with the message it is refused with.
WRONG_TYPES = ([(kind, path, value, BOOLEAN_MESSAGE) for kind, path, value in BOOLEAN_NUMBERS]
               + [(kind, path, value, NOT_TRUE_OR_FALSE_MESSAGE) for kind, path in FLAGS
                  for value in (1, 0, "yes", "true")])


@pytest.mark.parametrize("kind, path, value, message", WRONG_TYPES)
def test_an_event_with_a_value_of_the_wrong_type_is_dead_lettered_naming_the_field(kind, path, value, message):
    # The reason is the whole of describe's: an event wrong elsewhere too would add "(and 1 more)".
    event = _with_value(kind, path, value)
    pipeline = loaded(COUNTY)
    before = copy.deepcopy(pipeline.schools), copy.deepcopy(pipeline.districts)
    result = pipeline.handle(json.dumps(event).encode(), 0, key=event["district"])
    assert result.applied == 0 and [d.reason for d in result.dead_letters] == [_reason(kind, path, message)]
    assert result.dead_letters[0].original == json.dumps(event).encode() and result.dead_letters[0].event_type == kind
    assert (pipeline.schools, pipeline.districts) == before
    assert pipeline.health.events[(kind, "rejected")] == 1


@pytest.mark.parametrize("kind, path, value, message", WRONG_TYPES)
def test_a_batch_applies_its_events_around_one_with_a_value_of_the_wrong_type(kind, path, value, message):
    # A batch with a bad event fails pydantic's one call for the whole record; each event is then
    # read alone (streams/pipeline.py `_decode_each`), and only the bad one is dead-lettered.
    event = _with_value(kind, path, value)
    good = _changes(2, seed=9)
    pipeline = loaded(COUNTY)
    result = pipeline.handle(_batch([good[0], event, good[1]]), 0, key=event["district"])
    assert result.applied == 2 and [json.loads(d.original) for d in result.dead_letters] == [event]
    assert [d.reason for d in result.dead_letters] == [_reason(kind, path, message)]


def test_a_school_registration_with_true_or_false_flags_is_applied():
    # The one event of these tests built here rather than simulated: as sent, it is applied.
    event = _registered()
    pipeline = loaded(COUNTY)
    assert pipeline.handle(json.dumps(event).encode(), 0, key=event["district"]).applied == 1
    assert pipeline.school(event["school"])["registers"]["school"]["value"]["boarding"] is True
