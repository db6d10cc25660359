"""Folding change events into per-school and per-district state (pure: no Kafka, no Faust).

State is plain JSON-able data so it can live in a Faust table and its changelog. Each entity an
event names is kept as either
- a register (last version wins): school attributes, enrolment, facilities, budget, postings,
  rotations, district figures; or
- an image pair (teachers, classes): the image before the entity's earliest known change and the
  image after its latest, so that the school's counts are the snapshot's counts plus
  (after − before) for every such entity.
Both depend only on the set of events seen, so duplicates, replays and reordering change nothing.
A snapshot is the truth as of the end of its date: events that happened on or before it are
already counted in it and are taken as stale.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas import events as ev
from schemas.snapshot import District, School

APPLIED, DUPLICATE, STALE, REJECTED = "applied", "duplicate", "stale", "rejected"
KEY_LEVELS = {"county", "city", "province", "national"}

State = dict[str, Any]


class Rejected(Exception):
    """An event that cannot be applied; the message is the dead-letter reason."""


@dataclass
class Outcome:
    outcome: str
    schools: tuple[str, ...] = ()
    district_changed: bool = False


def new_school_state(school_id: str, district: str) -> State:
    return {"school": school_id, "district": district, "as_of": None, "baseline": None,
            "registers": {}, "images": {}}


def new_district_state(district: str) -> State:
    return {"district": district, "as_of": None, "baseline": None, "registers": {}}


def apply(event: ev.Event, schools: dict[str, State], districts: dict[str, State]) -> Outcome:
    """Apply one event to the states it touches (mutated in place only when applied).

    `schools` must hold every school the event names that has state; absent ones are unknown.
    Raises Rejected for events that contradict what is known (an unknown school, a school of
    another district, a record that does not validate once applied).
    """
    if isinstance(event, ev.DistrictSnapshot | ev.DistrictUpdated):
        return _apply_district(event, districts)
    return _apply_school(event, schools)


# --- districts -----------------------------------------------------------------------------------

def _apply_district(event, districts: dict[str, State]) -> Outcome:
    state = districts.setdefault(event.district, new_district_state(event.district))
    if isinstance(event, ev.DistrictSnapshot):
        if event.record.id != event.district:
            raise Rejected(f"district.snapshot for {event.district} carries district {event.record.id}")
        outcome = _take_baseline(state, event, event.record.model_dump(mode="json", exclude_none=True))
    else:
        if _covered(state, event):
            return Outcome(STALE)
        fields = event.model_dump(mode="json", exclude_none=True, exclude=set(ev.Event.model_fields) | {"type"})
        outcome = _merge(_set_registers(state, fields, event))
    return Outcome(outcome, district_changed=outcome == APPLIED)


# --- schools -------------------------------------------------------------------------------------

def _apply_school(event, schools: dict[str, State]) -> Outcome:
    state = schools.get(event.school)
    if state is None:
        if not isinstance(event, ev.SchoolSnapshot | ev.SchoolRegistered):
            raise Rejected(f"unknown school {event.school} / 未知学校")
        state = new_school_state(event.school, event.district)
    if state["district"] != event.district:
        raise Rejected(f"school {event.school} belongs to district {state['district']}, not {event.district}")
    touched = {event.school: _copy(state)}
    if isinstance(event, ev.TeacherRotated):
        if event.to_school not in schools:
            raise Rejected(f"unknown school {event.to_school} to rotate to / 未知学校")
        if schools[event.to_school]["district"] != event.district:
            raise Rejected(f"rotation to {event.to_school} of another district / 不可跨区县交流")
        touched.setdefault(event.to_school, _copy(schools[event.to_school]))
    outcome = _fold_school(event, touched)
    if outcome == APPLIED:
        for school_id, new_state in touched.items():
            _validate(new_state)
        schools.update(touched)
    return Outcome(outcome, tuple(touched) if outcome == APPLIED else ())


def _fold_school(event, touched: dict[str, State]) -> str:
    state = touched[event.school]
    if isinstance(event, ev.SchoolSnapshot):
        if event.record.id != event.school or event.record.district != event.district:
            raise Rejected(f"school.snapshot for {event.school} carries school {event.record.id}")
        return _take_baseline(state, event, event.record.model_dump(mode="json", exclude_none=True))
    if _covered(state, event):
        return STALE
    if isinstance(event, ev.SchoolRegistered):
        attrs = event.model_dump(mode="json", include={"name", "kind", "location", "public", "boarding"})
        return _set_register(state, "school", {**attrs, "closed": False}, event)
    if isinstance(event, ev.SchoolClosed):
        return _set_register(state, "school", {"closed": True}, event)
    if isinstance(event, ev.TeacherChanged):
        return _set_images(state, f"teacher:{event.teacher}", _image(event.before), _image(event.after), event)
    if isinstance(event, ev.TeacherRotated):
        image = _image(event.image)
        outcomes = [
            _set_register(state, f"rotation:{event.teacher}:{event.year}", event.image.key_level.value in KEY_LEVELS, event),
            _set_images(state, f"teacher:{event.teacher}", image, None, event),
            _set_images(touched[event.to_school], f"teacher:{event.teacher}", None, image, event),
        ]
        return _merge(outcomes)
    if isinstance(event, ev.ClassChanged):
        return _set_images(state, f"class:{event.class_id}", _image(event.before), _image(event.after), event)
    if isinstance(event, ev.EnrolmentReported):
        return _set_register(state, f"enrolment:{event.level.value}", event.students, event)
    if isinstance(event, ev.FacilitiesUpdated):
        scope = event.level.value if event.level else "school"
        fields = event.model_dump(mode="json", exclude_none=True,
                                  exclude=set(ev.SchoolEvent.model_fields) | {"type", "level"})
        return _merge(_set_registers(state, {f"{scope}:{k}": v for k, v in fields.items()}, event, "facilities"))
    if isinstance(event, ev.BudgetSet):
        return _set_register(state, "budget", event.public_funds_budget_cny, event)
    if isinstance(event, ev.TrainingSpent):
        return _set_register(state, f"spend:{event.posting}", event.amount_cny, event)
    raise Rejected(f"event type {event.type} is not handled")  # unreachable while the union is covered


# --- registers and images ------------------------------------------------------------------------

def _take_baseline(state: State, event, record: dict) -> str:
    current = (state["as_of"], state.get("baseline_version", -1))
    incoming = (event.as_of.isoformat(), event.version)
    if state["as_of"] is not None and incoming == current:
        return DUPLICATE
    if state["as_of"] is not None and incoming < current:
        return STALE
    state["as_of"], state["baseline_version"], state["baseline"] = incoming[0], event.version, record
    # What the new snapshot already counts is dropped; later changes stay on top of it.
    cutoff = incoming[0]
    for table in ("registers", "images"):
        if table in state:
            state[table] = {k: v for k, v in state[table].items() if v["at"][:10] > cutoff}
    return APPLIED


def _covered(state: State, event) -> bool:
    return state["as_of"] is not None and event.occurred_at.date().isoformat() <= state["as_of"]


def _set_register(state: State, key: str, value: Any, event) -> str:
    current = state["registers"].get(key)
    if current is not None:
        if event.version == current["version"]:
            return DUPLICATE
        if event.version < current["version"]:
            return STALE
    state["registers"][key] = {"version": event.version, "at": event.occurred_at.isoformat(), "value": value}
    return APPLIED


def _set_registers(state: State, fields: dict, event, prefix: str = "") -> list[str]:
    return [_set_register(state, f"{prefix}:{k}" if prefix else k, v, event) for k, v in fields.items()]


def _set_images(state: State, key: str, before: dict | None, after: dict | None, event) -> str:
    current = state["images"].get(key)
    at = event.occurred_at.isoformat()
    if current is None:
        state["images"][key] = {"lo": event.version, "hi": event.version, "at": at, "before": before, "after": after}
        return APPLIED
    if event.version in (current["lo"], current["hi"]):
        return DUPLICATE
    if current["lo"] < event.version < current["hi"]:
        return STALE
    if event.version < current["lo"]:
        current.update(lo=event.version, before=before)
    else:
        current.update(hi=event.version, after=after, at=max(at, current["at"]))
    return APPLIED


def _merge(outcomes: list[str]) -> str:
    if APPLIED in outcomes:
        return APPLIED
    return DUPLICATE if outcomes and all(o == DUPLICATE for o in outcomes) else STALE


def _image(image) -> dict | None:
    return image.model_dump(mode="json") if image is not None else None


def _copy(state: State) -> State:
    return {**state, "registers": dict(state["registers"]),
            "images": {k: dict(v) for k, v in state["images"].items()}}


def _validate(state: State) -> None:
    try:
        school_record(state)
    except ValidationError as exc:
        from schemas.loading import describe

        raise Rejected(f"the school's record would not validate: {describe(exc, '学校记录校验失败')}") from None


# --- materializing records -----------------------------------------------------------------------

def school_record(state: State) -> School | None:
    """The school as the events describe it now, or None when it is closed or has no record."""
    registers = {k: v["value"] for k, v in state["registers"].items()}
    attrs = registers.get("school", {})
    if attrs.get("closed"):
        return None
    record = dict(state["baseline"] or {})
    if not record and "name" not in attrs:
        return None
    record.update({k: v for k, v in attrs.items() if k != "closed"})
    record.update(id=state["school"], district=state["district"])
    sections = {lvl: dict(sec) for lvl, sec in record.get("sections", {}).items()}
    record["sections"] = sections
    for key, value in registers.items():
        kind, _, rest = key.partition(":")
        if kind == "enrolment":
            sections.setdefault(rest, {"students": 0})["students"] = value
        elif kind == "facilities":
            scope, _, figure = rest.partition(":")
            target = record if scope == "school" else sections.setdefault(scope, {"students": 0})
            target[figure] = value
        elif kind == "budget":
            record["public_funds_budget_cny"] = value
    _apply_postings(record, registers)
    _apply_rotations(record, registers)
    _apply_images(record, sections, state["images"])
    return School.model_validate(record)


def district_record(state: State) -> District | None:
    """The district as the events describe it now, or None when nothing names it yet."""
    record = dict(state["baseline"] or {})
    record.update({k: v["value"] for k, v in state["registers"].items()})
    if "name" not in record:
        return None
    record["id"] = state["district"]
    return District.model_validate(record)


def _apply_postings(record: dict, registers: dict) -> None:
    postings = [v for k, v in registers.items() if k.startswith("spend:") and v is not None]
    if postings:
        record["training_spend_cny"] = record.get("training_spend_cny", 0.0) + sum(postings)


def _apply_rotations(record: dict, registers: dict) -> None:
    rotations = [v for k, v in registers.items() if k.startswith("rotation:")]
    if rotations:
        record["rotated"] = record.get("rotated", 0) + len(rotations)
        record["rotated_key"] = record.get("rotated_key", 0) + sum(1 for key in rotations if key)


TEACHER_SCHOOL_COUNTS = {"full_time_teachers": lambda t: 1, "certified_teachers": lambda t: t["certified"],
                         "training_360h_completed": lambda t: t["training_360h_completed"]}
TEACHER_SECTION_COUNTS = {"teachers_above_required_degree": lambda t: t["degree_above_required"],
                          "key_teachers": lambda t: t["key_level"] in KEY_LEVELS,
                          "pe_arts_teachers": lambda t: t["subject"] in ("pe", "music", "art")}


def _apply_images(record: dict, sections: dict, images: dict) -> None:
    school_delta: Counter = Counter()
    section_delta: dict[str, Counter] = {}
    class_changes: dict[str, tuple[list[int], list[int]]] = {}
    for key, pair in images.items():
        for sign, image in ((-1, pair["before"]), (1, pair["after"])):
            if image is None:
                continue
            if key.startswith("teacher:"):
                for field, counts in TEACHER_SCHOOL_COUNTS.items():
                    school_delta[field] += sign * int(counts(image))
                level_delta = section_delta.setdefault(image["level"], Counter())
                for field, counts in TEACHER_SECTION_COUNTS.items():
                    level_delta[field] += sign * int(counts(image))
            else:
                removed, added = class_changes.setdefault(image["level"], ([], []))
                (removed if sign < 0 else added).append(image["students"])
    _add_counts(record, school_delta)
    for level, delta in section_delta.items():
        if level in sections:
            _add_counts(sections[level], delta)
    for level, (removed, added) in class_changes.items():
        section = sections.setdefault(level, {"students": 0})
        sizes = list(section.get("class_sizes") or [])
        for size in removed:
            if size in sizes:
                sizes.remove(size)
        section["class_sizes"] = sorted(sizes + added)


def _add_counts(target: dict, delta: Counter) -> None:
    """Add to reported counts only: a figure that was not reported stays not reported."""
    for field, change in delta.items():
        if change and target.get(field) is not None:
            target[field] = max(0, target[field] + change)
