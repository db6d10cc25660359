"""Folding change events into per-school and per-district state (pure: no Kafka, no Faust).

State is plain JSON-able data so it can live in a Faust table and its changelog. Each entity an
event names is kept as either
- a register (last version wins): school attributes, enrolment, facilities, budget, postings,
  rotations, district figures; or
- an image pair (teachers, classes): the image before the entity's earliest known change and the
  image after its latest, so that the school's counts are the snapshot's counts plus
  (after − before) for every such entity. A pair whose changes fall on several days (China
  Standard Time) keeps the image before each day's first change too, so that a newer snapshot
  dated between them starts it again from the first change after its date (`_restarted`).
A school also keeps, per teacher, her rotations out of it by version and the versions at which a
rotation brought her to it, which tell a rotation's correction from a second rotation (see
"rotations" below).
All of it depends only on the set of events seen, so duplicates, replays and reordering change
nothing.
An event at a version already applied to an entity is a duplicate when it says the same, and is
rejected (a dead letter) when it says something else: a correction must carry a higher version,
or it would be dropped silently (see `_set_register`, `_set_images`, `_check_rotation` and
`_take_baseline`).
A snapshot is the truth as of the end of its date: events that happened on or before it are
already counted in it and are taken as stale.

Money and rotations are kept by year (see `school_record`): budgets by fiscal year (China's is
the calendar year), training postings by the year of their `occurred_at` in China Standard Time,
rotations by their `year`. A snapshot's budget and spend are of the fiscal year of its `as_of`,
its rotation figures of that year's rotations; a budget of a later fiscal year is the one thing
a snapshot cannot already count, whatever its date.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from schemas import events as ev
from schemas.snapshot import SHARED_FIGURES, District, School

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
            "registers": {}, "images": {}, "sums": {}}


def new_district_state(district: str) -> State:
    return {"district": district, "as_of": None, "baseline": None, "registers": {}}


def apply(event: ev.Event, schools: dict[str, State], districts: dict[str, State]) -> Outcome:
    """Apply one event to the states it touches, in place.

    `schools` must hold every school the event names that has state; absent ones are unknown.
    Raises Rejected, leaving every state as it was, for events that contradict what is known (an
    unknown school, a school of another district, a record that would not validate). Any other
    exception (a fault of junheng's own) also leaves every state as it was before it propagates.
    """
    undo = _Undo()
    try:
        if isinstance(event, ev.DistrictSnapshot | ev.DistrictUpdated):
            return _apply_district(event, districts, undo)
        return _apply_school(event, schools, undo)
    except BaseException:
        # A fault halfway through an event (a KeyError once left every district.updated half
        # applied) must not leave part of it in states the worker goes on folding into.
        undo.rollback()
        raise


class _Undo:
    """Every change to a state goes through `set`, so that a rejected event can be taken back
    without copying states (a school's state grows with every teacher and class it has seen)."""

    _MISSING = object()

    def __init__(self):
        self.entries: list[tuple[dict, str, Any]] = []

    def set(self, mapping: dict, key: str, value: Any) -> None:
        self.entries.append((mapping, key, mapping.get(key, self._MISSING)))
        mapping[key] = value

    def delete(self, mapping: dict, key: str) -> None:
        if key in mapping:
            self.entries.append((mapping, key, mapping.pop(key)))

    def rollback(self) -> None:
        for mapping, key, old in reversed(self.entries):
            if old is self._MISSING:
                mapping.pop(key, None)
            else:
                mapping[key] = old


# --- districts -----------------------------------------------------------------------------------

def _apply_district(event, districts: dict[str, State], undo: _Undo) -> Outcome:
    state = districts.get(event.district)
    if state is None:
        state = new_district_state(event.district)
        undo.set(districts, event.district, state)
    if isinstance(event, ev.DistrictSnapshot):
        if event.record.id != event.district:
            raise Rejected(f"district.snapshot for {event.district} carries district {event.record.id}")
        outcome = _take_baseline(state, event, event.record, undo)
    else:
        if _covered(state, event):
            return Outcome(STALE)
        fields = event.model_dump(mode="json", exclude_none=True, exclude=set(ev.Event.model_fields) | {"type"})
        outcome = _merge([_set_register(state, k, v, event, undo) for k, v in fields.items()])
    return Outcome(outcome, district_changed=outcome == APPLIED)


# --- schools -------------------------------------------------------------------------------------

def _apply_school(event, schools: dict[str, State], undo: _Undo) -> Outcome:
    state = schools.get(event.school)
    if state is None:
        if not isinstance(event, ev.SchoolSnapshot | ev.SchoolRegistered):
            raise Rejected(f"unknown school {event.school} / 未知学校")
        state = new_school_state(event.school, event.district)
        undo.set(schools, event.school, state)
    _upgrade(state, undo)
    if state["district"] != event.district:
        raise Rejected(f"school {event.school} belongs to district {state['district']}, not {event.district}")
    touched = [event.school]
    if isinstance(event, ev.TeacherRotated):
        target = schools.get(event.to_school)
        if target is None:
            raise Rejected(f"unknown school {event.to_school} to rotate to / 未知学校")
        if target["district"] != event.district:
            raise Rejected(f"rotation to {event.to_school} of another district / 不可跨区县交流")
        _upgrade(target, undo)
        touched.append(event.to_school)
    outcome = _fold_school(event, schools, undo, touched)
    # Only a facilities event can make the record invalid (sections reporting more area than the
    # whole school): counts are clamped at zero and every figure was validated with its event.
    if outcome == APPLIED and isinstance(event, ev.FacilitiesUpdated):
        _check_shared_figures(state)
    # A rotation may also change the schools earlier rotations of the teacher reached (`_rotate`).
    return Outcome(outcome, tuple(dict.fromkeys(touched)) if outcome == APPLIED else ())


def _fold_school(event, schools: dict[str, State], undo: _Undo, touched: list[str]) -> str:
    state = schools[event.school]
    if isinstance(event, ev.SchoolSnapshot):
        if event.record.id != event.school or event.record.district != event.district:
            raise Rejected(f"school.snapshot for {event.school} carries school {event.record.id}")
        return _take_baseline(state, event, event.record, undo)
    if isinstance(event, ev.TeacherRotated):
        return _rotate(state, schools[event.to_school], event, schools, undo, touched)
    if _covered(state, event) and not _after_snapshot_year(state, event):
        return STALE
    if isinstance(event, ev.SchoolRegistered):
        attrs = event.model_dump(mode="json", include={"name", "kind", "location", "public", "boarding"})
        return _set_register(state, "school", {**attrs, "closed": False}, event, undo)
    if isinstance(event, ev.SchoolClosed):
        return _set_register(state, "school", {"closed": True}, event, undo)
    if isinstance(event, ev.TeacherChanged):
        return _set_images(state, f"teacher:{event.teacher}", _image(event.before), _image(event.after), event, undo)
    if isinstance(event, ev.ClassChanged):
        return _set_images(state, f"class:{event.class_id}", _image(event.before), _image(event.after), event, undo)
    if isinstance(event, ev.EnrolmentReported):
        return _set_register(state, f"enrolment:{event.level.value}", event.students, event, undo)
    if isinstance(event, ev.FacilitiesUpdated):
        scope = event.level.value if event.level else "school"
        fields = event.model_dump(mode="json", exclude_none=True,
                                  exclude=set(ev.SchoolEvent.model_fields) | {"type", "level"})
        return _merge([_set_register(state, f"facilities:{scope}:{k}", v, event, undo) for k, v in fields.items()])
    if isinstance(event, ev.BudgetSet):
        return _set_register(state, f"budget:{event.fiscal_year}", event.public_funds_budget_cny, event, undo)
    if isinstance(event, ev.TrainingSpent):
        return _set_register(state, f"spend:{event.posting}", event.amount_cny, event, undo)
    raise Rejected(f"event type {event.type} is not handled")  # unreachable while the union is covered


def _rotate(left: State, reached: State, event, schools: dict[str, State], undo: _Undo, touched: list[str]) -> str:
    """A rotation changes two schools, and each may already count it in a snapshot of its own
    (the two need not be of the same date): each school's part is stale under its own snapshot.
    Checking the school left alone counted the teacher twice at a school reached whose newer
    snapshot already had her, and lost her arrival where only the school left was newer.

    A later rotation out of the same school may replace it (see "rotations" below): the school
    reached then takes the teacher as arriving as nobody, which changes its count of her only
    while its image of her is the one this rotation gave (see `_settle_arrival`).

    Both schools keep the rotation first, and her images there are set after, from what they
    then decide: what one keeps can change what the other decided (an arrival that no longer
    counts changes which rotations out of that school are replaced)."""
    image = _image(event.image)
    leaves, arrives = not _covered(left, event), not _covered(reached, event)
    outcomes = []
    if leaves:
        outcomes.append(_rotate_out(left, event, image, schools, undo, touched))
    if arrives:
        outcomes.append(_rotate_in(reached, event, _counted(left, reached, event, leaves), schools, undo, touched))
    return _merge(outcomes + _move(left, reached, event, image, leaves, arrives, undo))


def _counted(left: State, reached: State, event, leaves: bool) -> bool:
    """Whether the rotation counts (is not replaced), as the school left decides. Under a
    snapshot of the school left, only the school reached can tell: it was told when it was
    replaced (`_settle_return`)."""
    if leaves:
        return event.version not in _replaced(_history(left, event.teacher))
    return str(event.version) not in _history(reached, event.teacher).get("in_replaced", {})


def _move(left: State, reached: State, event, image: dict, leaves: bool, arrives: bool, undo: _Undo) -> list[str]:
    """Her images at both schools, as the rotation gives them: out of the school left, and into
    the school reached unless it is replaced (then she arrives as nobody)."""
    teacher, outcomes, corrected = f"teacher:{event.teacher}", [], None
    if leaves:
        history = _history(left, event.teacher)
        replaced = _replaced(history)
        corrected = _corrections(history, replaced)[event.version]
        corrected = history["out"][str(corrected)] if corrected is not None else None
        # Where a snapshot counts the rotation corrected, it has her gone already: counted out
        # again, she was counted out twice.
        before = None if corrected is not None and corrected.get("snapshot") else image
        outcomes.append(_set_images(left, teacher, before, None, event, undo))
    if arrives:
        counted = event.version not in replaced if leaves else _counted(left, reached, event, leaves)
        if not counted and leaves and history["out"][str(event.version)]["image"] not in (None, image):
            # Arriving as nobody, she leaves nothing at the school reached to compare: what the
            # school left keeps is compared, and the reason is the one the school reached gives
            # for a rotation not replaced.
            raise _reused(reached, teacher, event)
        # Her image there before the rotation is the school's to say, not the event's: it depends
        # on the school's snapshot, which may have come since the rotation was first folded.
        outcomes.append(_set_images(reached, teacher, _image_there(reached, corrected, event.to_school),
                                    image if counted else None, event, undo, before_sent=False))
    return outcomes


# --- rotations -----------------------------------------------------------------------------------
#
# A school keeps, per teacher, her rotations out of it by version and the versions at which a
# rotation brought her to it: state["rotations"][teacher] is {"out": {version: rotation}, "in":
# {version: occurred_at}, "in_replaced": {version: occurred_at}} (as JSON text; "in_replaced"
# only when not empty), until a snapshot of the school counts them.
#
# A rotation out is *replaced* by the next rotation out of the same school (the next higher
# version) unless a rotation brought her back to the school at a version in between: without a
# way back, she cannot have left twice, and the later one is a correction of the earlier, sent
# with a higher version as the README asks. What a replaced rotation did is undone: its year's
# register no longer counts it, and its school reached takes her as arriving as nobody (see
# `_settle_arrival`) and keeps its arrival apart, in "in_replaced": a rotation that did not bring
# her there is no way back (`_settle_return`). Which rotations are replaced is worked out afresh
# from all those kept, so that the outcome depends only on the set of rotations seen: a
# correction folded before the rotation it corrects, or the rotation back folded last, ends as
# folded in order. Telling a school reached that an arrival no longer counts can change which of
# its own rotations out are replaced, and so on: each step is about lower versions, so it ends.
#
# A snapshot of the school drops the rotations and arrivals it counts, as it drops registers (a
# school cannot keep every rotation for ever), except what tells a later rotation from a
# correction: the rotations out it counts of years from its own on, kept as counted ("snapshot"),
# and her arrival by rotation if it came after them (`_rotations_kept`). A correction of one of
# them does not take her out of the school again (`_move`), and a school reached whose snapshot
# counts her arrival by the rotation corrected does not count her in again (`_image_there`).
#
# The registers "rotation:<teacher>:<year>" stay what is counted on top of the snapshot: each
# holds the newest rotation of its year that is not replaced, less the newest one the snapshot
# counts of that year ("less": whether that one was of a key teacher). A school written before
# rotations were kept by version has the registers alone; they are taken as its rotations
# (`_history`), each as not replacing an earlier one (the rotations back between them were not
# kept), and can be replaced by a later.

def _rotate_out(left: State, event, image: dict, schools: dict[str, State], undo: _Undo,
                touched: list[str]) -> str:
    """Keeps the rotation at the school left. A version of the teacher's rotation names one
    content: re-sent with another school reached, it was new there and the teacher was counted at
    both schools, and re-sent with another year, it made a second register."""
    history = _history(left, event.teacher)
    sent = {"year": event.year, "to": event.to_school, "key": image["key_level"] in KEY_LEVELS, "image": image,
            "at": event.occurred_at.isoformat()}
    held = history["out"].get(str(event.version))
    if held is not None:
        _check_rotation(left, event, held, sent)
        return DUPLICATE
    new = {**history, "out": {**history["out"], str(event.version): sent}}
    _change_history(left, event.teacher, history, new, schools, undo, touched)
    return APPLIED


def _image_there(reached: State, corrected: dict | None, to_school: str) -> dict | None:
    """Her image at the school reached before the rotation: none, unless it corrects a rotation to
    the same school whose arrival the school's snapshot counts (a year or key level sent wrong):
    the snapshot has her there already, as that rotation brought her (counted in again, she was
    counted twice)."""
    if (corrected is None or corrected["to"] != to_school or corrected["image"] is None
            or reached["as_of"] is None or _china_day(corrected["at"]) > reached["as_of"]):
        return None
    return corrected["image"]


def _rotate_in(reached: State, event, counted: bool, schools: dict[str, State], undo: _Undo,
               touched: list[str]) -> str:
    """Keeps the rotation's arrival at the school reached: a rotation out of that school before
    it and one after it are two rotations, not a rotation and its correction. The arrival of a
    rotation replaced at its school left is kept apart: it did not bring her there, and is no
    way back (`_settle_return` moves it when that changes)."""
    history = _history(reached, event.teacher)
    version = str(event.version)
    if version in history["in"] or version in history.get("in_replaced", {}):
        return DUPLICATE
    kept = "in" if counted else "in_replaced"
    new = {**history, kept: {**history.get(kept, {}), version: event.occurred_at.isoformat()}}
    _change_history(reached, event.teacher, history, new, schools, undo, touched)
    return APPLIED


def _check_rotation(left: State, event, held: dict, sent: dict) -> None:
    """Rejects a rotation at a version the school left holds that says another thing. One kept
    from a register written before the school reached was kept holds only the key-teacher flag,
    and only the flag (and the year) can be compared. The image is compared where the teacher
    arrived (`_set_images`), or, when she arrived as nobody, by `_rotate`."""
    key = f"rotation:{event.teacher}:{held['year']}"
    if held["year"] != sent["year"]:
        raise _rotation_reused(left, key, event, ("year", "年度"), (held["year"],) * 2, (sent["year"],) * 2)
    if held["to"] is not None and held["to"] != sent["to"]:
        raise _rotation_reused(left, key, event, ("to_school", "调入学校"), (held["to"],) * 2, (sent["to"],) * 2)
    if held["key"] != sent["key"]:
        raise _rotation_reused(left, key, event, ("key teacher", "骨干教师"),
                               _YES_NO[held["key"]], _YES_NO[sent["key"]])


def _history(state: State, teacher: str) -> dict:
    """The teacher's rotations out of the school and arrivals at it by rotation (not stored: see
    `_store_history`). For a school that has not kept them yet, her rotation registers."""
    stored = state.get("rotations", {}).get(teacher)
    if stored is not None:
        return orjson.loads(stored)
    out = {}
    # The sums hold "rotated|<year>" for each year the school holds a rotation of: a few dozen
    # keys to look through, where the registers grow with every posting and rotation. The first
    # character passes over most of them without a method call (this runs on every rotation).
    for sum_key in state["sums"]:
        if sum_key[0] == "r" and sum_key.startswith("rotated|"):
            register = state["registers"].get(f"rotation:{teacher}:{sum_key[8:]}")
            if register is not None:
                value = register["value"]
                # A bare bool: a register written before the school reached was kept.
                to, key = (None, value) if isinstance(value, bool) else (value["to"], value["key"])
                out[str(register["version"])] = {"year": int(sum_key[8:]), "to": to, "key": key, "image": None,
                                                 "at": register["at"], "kept_before": True}
    return {"out": out, "in": {}}


def _replaced(history: dict) -> set[int]:
    """The versions of the rotations out that a later one replaces: those followed by another
    rotation out with no arrival at the school in between (an arrival by a replaced rotation is
    none: it is not in "in"). One kept from a register written before arrivals were kept
    (`kept_before`), or one a snapshot counts (`snapshot`), replaces none: the arrival that would
    tell was not kept."""
    outs = sorted(int(version) for version in history["out"])
    arrivals = sorted(int(version) for version in history["in"])
    replaced = set()
    for earlier, later in zip(outs, outs[1:]):
        rotation = history["out"][str(later)]
        if rotation.get("kept_before") or rotation.get("snapshot"):
            continue
        first_arrival = bisect.bisect_right(arrivals, earlier)
        if first_arrival == len(arrivals) or arrivals[first_arrival] >= later:
            replaced.add(earlier)
    return replaced


def _change_history(state: State, teacher: str, old: dict, new: dict, schools: dict[str, State], undo: _Undo,
                    touched: list[str]) -> None:
    """Store `new` as the teacher's rotations at the school, and undo or redo what each rotation
    it replaces, or no longer replaces, had done: at its school reached and in its year's
    register. Every year's register is counted again: which rotation replaces the one a snapshot
    counts dates it (`_rotation_register`), and a teacher has rotations of a year or two.

    Stored first, and read again after: settling an arrival can lead back to this school (its
    school reached tells this one of an arrival that no longer counts, `_settle_return`), which
    then changes the rotations of lower versions than the one being settled, ascending."""
    was, now = _replaced(old), _replaced(new)
    text = _store_history(state, teacher, new, undo)
    corrected_was, corrected_now = _corrections(old, was), _corrections(new, now)
    for version in sorted(v for v in corrected_now if corrected_was.get(v) != corrected_now[v]):
        _settle_correction(state, teacher, new, version, corrected_now[version], schools, undo, touched)
    for version in sorted((was ^ now) & {int(v) for v in old["out"]}):
        rotation = new["out"][str(version)]
        withdrawn = _settle_arrival(schools, teacher, version, rotation, version not in now, undo, touched)
        if withdrawn is not None and rotation["image"] is None:
            # One kept from a register: its image is known only now, and needed to redo it.
            stored = _history(state, teacher)
            stored["out"][str(version)] = {**rotation, "image": withdrawn}
            _store_history(state, teacher, stored, undo)
    # Read again only if settling changed it (`_settle_return` back here, an image kept).
    stored, replaced = (new, now) if state["rotations"][teacher] is text else (_history(state, teacher), None)
    replaced = _replaced(stored) if replaced is None else replaced
    for year in {rotation["year"] for rotation in stored["out"].values()}:
        _count_rotation(state, teacher, year, stored, replaced, undo)


def _settle_arrival(schools: dict[str, State], teacher: str, version: int, rotation: dict, counted: bool,
                    undo: _Undo, touched: list[str]) -> dict | None:
    """The teacher's arrival by `rotation` at its school reached, as it is now counted or not
    (replaced: she arrives as nobody). Only while that school's latest image of her is this
    rotation's: after a later version there (she left, or came again) her image there is that
    version's, and what this rotation said is no longer held. Returns the image withdrawn, if any.
    A register written before the school reached was kept does not say where she went."""
    if rotation["to"] is None:
        return None
    state = _reached_state(schools, teacher, version, rotation, undo)
    _settle_return(state, teacher, version, counted, schools, undo, touched)
    after = rotation["image"] if counted else None
    if counted and after is None:
        return None
    withdrawn = _set_after(state, f"teacher:{teacher}", version, after, undo)
    if withdrawn is _UNCHANGED:
        return None
    touched.append(rotation["to"])
    return withdrawn


def _corrections(history: dict, replaced: set[int]) -> dict[int, int | None]:
    """For each rotation out, the version of the one it replaces (corrects), if any."""
    corrections, earlier = {}, None
    for version in sorted(int(v) for v in history["out"]):
        corrections[version] = earlier if earlier in replaced else None
        earlier = version
    return corrections


def _settle_correction(left: State, teacher: str, history: dict, version: int, corrected: int | None,
                       schools: dict[str, State], undo: _Undo, touched: list[str]) -> None:
    """Her images before the rotation of `version`, which now corrects that of `corrected` (or
    none), as `_rotate` gives them (`_image_there`): at the school left, none when its snapshot
    counts the rotation corrected, and at the school reached, the image the rotation corrected
    brought her there with when that school's snapshot counts it. Only while that school's
    earliest version of her since is this rotation's: the image before it is then its to say."""
    rotation = history["out"][str(version)]
    earlier = history["out"][str(corrected)] if corrected is not None else None
    if rotation["image"] is not None:  # one kept from a register: its image is not known
        _set_before(left, teacher, version, None if earlier and earlier.get("snapshot") else rotation["image"],
                    undo, touched)
    if rotation["to"] is not None:
        reached = _reached_state(schools, teacher, version, rotation, undo)
        _set_before(reached, teacher, version, _image_there(reached, earlier, rotation["to"]), undo, touched)


def _reached_state(schools: dict[str, State], teacher: str, version: int, rotation: dict, undo: _Undo) -> State:
    state = schools.get(rotation["to"])
    if state is None:
        # `other_schools` names it to the caller, who must pass its state.
        raise LookupError(f"school {rotation['to']}, reached by rotation {version} of teacher {teacher}, "
                          f"was not passed to the fold")
    _upgrade(state, undo)
    return state


def _set_before(state: State, teacher: str, version: int, before: dict | None, undo: _Undo,
                touched: list[str]) -> None:
    """Her image before the change of `version`, where a day of the school's pair of her starts
    with it. Every day, not only the pair's first: a snapshot dated between two days makes a
    later day the first, and the day must then hold what it would hold had the snapshot been
    folded first."""
    key = f"teacher:{teacher}"
    current = _pair(state["images"].get(key))
    if current is None:
        return
    days = _days(current)
    day = next((d for d, (lo, _, _) in days.items() if lo == version), None)
    if day is None or days[day][2] == before:
        return
    _store_pair(state, key, current, _joined({**days, day: [version, days[day][1], before]}, current["at"],
                                             current["after"]), undo)
    touched.append(state["school"])


_UNCHANGED = object()


def _set_after(state: State, key: str, version: int, after: dict | None, undo: _Undo):
    """Her image after the change of `version`, where the pair ends with it; returns the image it
    replaced, or `_UNCHANGED` when the pair does not end with it or holds that image already."""
    current = _pair(state["images"].get(key))
    if current is None or current["hi"] != version or current["after"] == after:
        return _UNCHANGED
    _store_pair(state, key, current, {**current, "after": after}, undo)
    return current["after"]


def _settle_return(reached: State, teacher: str, version: int, counted: bool, schools: dict[str, State],
                   undo: _Undo, touched: list[str]) -> None:
    """Moves the rotation's arrival at the school reached to "in" or "in_replaced" as it now
    counts or not: only a rotation not replaced brought her back to a school, and a rotation out
    of it after one that did not is the correction of the one before. Nothing when the school
    keeps no arrival of that version (its snapshot counts it)."""
    history = _history(reached, teacher)
    source, target = ("in_replaced", "in") if counted else ("in", "in_replaced")
    at = history.get(source, {}).get(str(version))
    if at is None:
        return
    new = {**history, source: {v: a for v, a in history[source].items() if v != str(version)},
           target: {**history.get(target, {}), str(version): at}}
    _change_history(reached, teacher, history, new, schools, undo, touched)
    touched.append(reached["school"])


def _store_history(state: State, teacher: str, history: dict, undo: _Undo) -> str:
    """Kept as JSON text, like image pairs: read again only when the teacher rotates again."""
    rotations = state.get("rotations")
    if rotations is None:
        rotations = {}
        undo.set(state, "rotations", rotations)
    text = _history_text(history)
    undo.set(rotations, teacher, text)
    return text


def _history_text(history: dict) -> str:
    """The same rotations as the same text, whatever order they came in: versions in order, and
    no "in_replaced" when it is empty. Not every key sorted: an image redone at a school reached
    must be the image as the event gave it (`_image`), or the same image pair would be other text
    there."""
    text = {"out": _by_version(history["out"]), "in": _by_version(history["in"])}
    if history.get("in_replaced"):
        text["in_replaced"] = _by_version(history["in_replaced"])
    return orjson.dumps(text).decode()


def _by_version(kept: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(kept.items(), key=lambda item: int(item[0])))


def _count_rotation(state: State, teacher: str, year: int, history: dict, replaced: set[int], undo: _Undo) -> None:
    """The register of the teacher's rotation of `year`: the newest one of that year not
    replaced, less the one the school's snapshot counts, none if they are the same or there are
    neither. So a teacher is counted once a year across a snapshot, and a correction of the
    rotation a snapshot counts takes that one off. A register of the same version that counts
    the same is left as written (one written with the key-teacher flag alone stays so)."""
    key = f"rotation:{teacher}:{year}"
    of_year = {int(v): rotation for v, rotation in history["out"].items() if rotation["year"] == year}
    counted = max((v for v in of_year if v not in replaced), default=None)
    in_snapshot = max((v for v, rotation in of_year.items() if rotation.get("snapshot")), default=None)
    new = None if counted == in_snapshot else _rotation_register(history, of_year, counted, in_snapshot)
    current = state["registers"].get(key)
    if (new is not None and current is not None and current["version"] == new["version"]
            and _register_terms(key, current) == _register_terms(key, new)):
        return
    if new is not None:
        undo.set(state["registers"], key, new)
    elif current is not None:
        undo.delete(state["registers"], key)
    _update_sums(state, _register_terms(key, current), _register_terms(key, new), undo)


def _rotation_register(history: dict, of_year: dict[int, dict], counted: int | None, in_snapshot: int | None) -> dict:
    """The register of a year's rotations: that of version `counted`, less that of version
    `in_snapshot`, the newest the snapshot counts. Dated as the rotation counted, or, where that
    one is counted by the snapshot too or there is none, as the rotation that replaced the one
    the snapshot counts: a later snapshot, dated after it, counts it in its stead."""
    if in_snapshot is None:
        rotation = of_year[counted]
        # One kept from a register written with the key-teacher flag alone is written so again.
        value = rotation["key"] if rotation["to"] is None else {"key": rotation["key"], "to": rotation["to"]}
        return {"version": counted, "at": rotation["at"], "value": value}
    value = {"less": of_year[in_snapshot]["key"]}
    if counted is not None:
        value = {"key": of_year[counted]["key"], "to": of_year[counted]["to"], **value}
    if counted is not None and not of_year[counted].get("snapshot"):
        dated = counted
    else:
        dated = min(int(v) for v in history["out"] if int(v) > in_snapshot)
    return {"version": dated, "at": history["out"][str(dated)]["at"], "value": value}


def other_schools(event: ev.Event, schools: dict[str, State]) -> set[str]:
    """The schools besides those `event` names that folding it may change, as far as the states
    of those in `schools` tell: for a rotation, those the teacher's rotations out of either of
    its schools reached, and those theirs reached, and so on. A correction takes her back from
    one; a rotation back to the school she left makes a rotation counted again; an arrival that
    no longer counts changes which rotations out of that school are replaced. `apply` needs
    their states in `schools` too: a caller loads those named and asks again, until no school
    named is missing."""
    if not isinstance(event, ev.TeacherRotated):
        return set()
    found, unread = set(), [event.school, event.to_school]
    while unread:
        state = schools.get(unread.pop())
        if state is None:
            continue
        reached = {r["to"] for r in _history(_upgraded(state), event.teacher)["out"].values() if r["to"]}
        unread += reached - found
        found |= reached
    return found - {event.school, event.to_school}


def _keep_rotations(state: State, as_of: str, undo: _Undo) -> None:
    """What a school keeps of its rotations under a new snapshot as of `as_of` (`_rotations_kept`),
    and its rotation registers counted again on it (its registers dated on or before `as_of` are
    already dropped: the snapshot counts them)."""
    kept = {}
    for teacher, stored in state["rotations"].items():
        history = _rotations_kept(orjson.loads(stored), as_of)
        if history["out"] or history["in"] or history["in_replaced"]:
            kept[teacher] = _history_text(history)
    if not kept:
        undo.delete(state, "rotations")
        return
    undo.set(state, "rotations", kept)
    for teacher, stored in kept.items():
        history = orjson.loads(stored)
        replaced = _replaced(history)
        for year in {rotation["year"] for rotation in history["out"].values()}:
            _count_rotation(state, teacher, year, history, replaced, undo)


def _settle_corrections_counted(state: State, undo: _Undo) -> None:
    """Her image before each rotation out of the school kept after a new snapshot, as `_move`
    gives it: none where the rotation it corrects is one the snapshot counts (she is gone from
    its count already). A correction folded before the snapshot took her out of the school again,
    as the rotation it corrected was not counted then."""
    for teacher, stored in state["rotations"].items():
        history = orjson.loads(stored)
        corrections = _corrections(history, _replaced(history))
        for version, corrected in corrections.items():
            rotation = history["out"][str(version)]
            if corrected is not None and history["out"][str(corrected)].get("snapshot") and rotation["image"]:
                _set_before(state, teacher, version, None, undo, [])


def _rotations_kept(history: dict, as_of: str) -> dict:
    """What a school keeps of a teacher's rotations under a snapshot as of `as_of`: those after
    it, and of those on or before it what tells a later rotation from a correction. Her rotations
    out of years from the snapshot's on that were not replaced as of then, which the snapshot
    counts, are kept as counted ("snapshot"): a correction of the last sent later replaces it
    without taking her out of the school a second time, and a second rotation of their year does
    not count her twice. Her arrival by rotation after them is kept too: a rotation out after it
    is no correction. Those of earlier years are settled: the snapshot's figures are of its year."""
    on_or_before = {"out": {v: r for v, r in history["out"].items() if _china_day(r["at"]) <= as_of},
                    "in": {v: at for v, at in history["in"].items() if _china_day(at) <= as_of}}
    replaced = _replaced(on_or_before)
    counted = [v for v, r in on_or_before["out"].items() if int(v) not in replaced and r["year"] >= int(as_of[:4])]
    out = {v: r for v, r in history["out"].items() if _china_day(r["at"]) > as_of}
    out.update({v: {**on_or_before["out"][v], "snapshot": True} for v in counted})
    arrivals = {v: at for v, at in history["in"].items() if _china_day(at) > as_of}
    replaced_arrivals = {v: at for v, at in history.get("in_replaced", {}).items() if _china_day(at) > as_of}
    # Her last arrival on or before the date is kept even while a later rotation out of the
    # school she came from replaces it: that rotation may be taken back as a correction (a
    # rotation between them folded late), and her arrival then counts again here.
    last = max((v for kind in ("in", "in_replaced") for v, at in history.get(kind, {}).items()
                if _china_day(at) <= as_of), key=int, default=None)
    if counted and last is not None and int(last) > max(int(v) for v in counted):
        if last in history["in"]:
            arrivals[last] = history["in"][last]
        else:
            replaced_arrivals[last] = history["in_replaced"][last]
    return {"out": out, "in": arrivals, "in_replaced": replaced_arrivals}


_YES_NO = {True: ("yes", "是"), False: ("no", "否")}


def _rotation_reused(left: State, key: str, event, field: tuple, applied: tuple, sent: tuple) -> Rejected:
    """`_reused`, saying what differs (each in English and Chinese): the register's value is not
    all that the rotation said, so the sender is told which part it changed."""
    return _reused(left, key, event, f"{field[0]}: {applied[0]} applied, {sent[0]} sent",
                   f"{field[1]}：已应用 {applied[1]}，本次 {sent[1]}")


# --- registers and images ------------------------------------------------------------------------

def _take_baseline(state: State, event, record, undo: _Undo) -> str:
    current = (state["as_of"], state.get("baseline_version", -1))
    incoming = (event.as_of.isoformat(), event.version)
    if state["as_of"] is not None and incoming == current:
        # The same snapshot loaded again (a replay, a second `junheng load`) is a duplicate; a
        # different record under the same date and revision is a correction that needed a higher
        # revision, and is rejected rather than dropped.
        if not _same_record(state["baseline"], record):
            what = f"the {event.type} as of {incoming[0]}"
            raise Rejected(f"{_owner(state)}: version {event.version} of {what} was already loaded with another "
                           f"record; load the correction with a higher version (junheng load --revision) / "
                           f"{incoming[0]} 的快照版本号 {event.version} 已用于不同内容，请以更高版本号（--revision）重新载入")
        return DUPLICATE
    if state["as_of"] is not None and incoming < current:
        return STALE
    undo.set(state, "as_of", incoming[0])
    undo.set(state, "baseline_version", event.version)
    # Kept as JSON text: a tenth of the memory of the same record as Python dicts, and read
    # only when the school is evaluated.
    undo.set(state, "baseline", record.model_dump_json(exclude_none=True))
    # What the new snapshot already counts is dropped; later changes stay on top of it.
    undo.set(state, "registers", {k: v for k, v in state["registers"].items()
                                  if _china_day(v["at"]) > incoming[0] or _budget_after(k, incoming[0])})
    if "images" in state:  # schools only: districts have no counted entities
        # A pair with changes on both sides of the date starts again from the snapshot's view.
        restarted = {k: _restarted(v, incoming[0]) for k, v in state["images"].items()}
        undo.set(state, "images", {k: v for k, v in restarted.items() if v is not None})
        if "rotations" in state:
            _keep_rotations(state, incoming[0], undo)
        undo.set(state, "sums", _recompute_sums(state))
        if "rotations" in state:
            _settle_corrections_counted(state, undo)
    return APPLIED


def _same_record(stored: str, record) -> bool:
    """Whether a stored baseline (JSON text) is the record a snapshot event carries. Only asked of
    a snapshot whose date and version are already applied."""
    if stored == record.model_dump_json(exclude_none=True):
        return True
    # The same record can be stored as other text: one stored before a field was added to the
    # contract lacks that field's default. Compared as records (pydantic compares field values,
    # dicts regardless of key order); a stored text the model no longer accepts is not the same.
    try:
        return type(record).model_validate_json(stored) == record
    except ValueError:  # pydantic's ValidationError is a ValueError
        return False


def _owner(state: State) -> str:
    return f"school {state['school']}" if "school" in state else f"district {state['district']}"


def _reused(state: State, key: str, event, differs: str = "", differs_zh: str = "") -> Rejected:
    """The dead-letter reason for an event that reuses an applied version with other content;
    `differs` (and `differs_zh`) say what differs where the stored value alone would not."""
    return Rejected(f"{_owner(state)}: version {event.version} of {key} was already applied with other content; "
                    f"send the correction with a higher version{f' ({differs})' if differs else ''} / "
                    f"{key} 的版本号 {event.version} 已用于不同内容，请以更高版本号重发更正"
                    f"{f'（{differs_zh}）' if differs_zh else ''}")


def _covered(state: State, event) -> bool:
    return state["as_of"] is not None and _china_date(event.occurred_at) <= state["as_of"]


_CHINA_OFFSET = dt.timedelta(hours=8)


def _china_date(moment: dt.datetime) -> str:
    """The date of `moment` in China Standard Time, the time zone a snapshot's as_of is a day of.
    Read in the event's own offset, 2023-09-01T20:00Z (04:00 on the 2nd in China) was taken as
    counted in a snapshot as of the 1st and dropped."""
    if moment.utcoffset() != _CHINA_OFFSET:  # most events are sent in China time: no conversion
        moment = moment.astimezone(ev.CHINA_STANDARD_TIME)
    return moment.date().isoformat()


def _china_day(at: str) -> str:
    """The date (China Standard Time) of a stored `occurred_at`, as `_china_date`."""
    if at.endswith("+08:00"):  # most events: no parsing
        return at[:10]
    return _china_date(dt.datetime.fromisoformat(at))


def _after_snapshot_year(state: State, event) -> bool:
    """A budget of a fiscal year after the snapshot's: the snapshot holds only its own year's
    budget, so it cannot count one of the next year set before its date (a budget approved in
    December for January). Kept, like `_budget_after` keeps it when the snapshot comes later."""
    return isinstance(event, ev.BudgetSet) and event.fiscal_year > int(state["as_of"][:4])


def _budget_after(key: str, as_of: str) -> bool:
    """Whether a register is the budget of a fiscal year after that of a snapshot as of `as_of`."""
    return key.startswith("budget:") and int(key[7:]) > int(as_of[:4])


def _year(at: str) -> int:
    """The year (China Standard Time) of a stored `occurred_at`."""
    return int(_china_day(at)[:4])


def _upgrade(state: State, undo: _Undo) -> None:
    """A school's state as written before budgets, postings and rotations were kept by year (one
    "budget" register, sums "spend", "rotated", "rotated_key"), brought to the current form: the
    budget taken as of the fiscal year of its `at` (the event's fiscal year was not kept), the
    sums recomputed once. A current state is left alone at the cost of three lookups."""
    if not _older_form(state):
        return
    registers, old = state["registers"], state["registers"].get("budget")
    if old is not None:
        upgraded = {k: v for k, v in registers.items() if k != "budget"}
        upgraded.setdefault(f"budget:{_year(old['at'])}", old)
        undo.set(state, "registers", upgraded)
    if "sums" in state:
        undo.set(state, "sums", _recompute_sums(state))


def _older_form(state: State) -> bool:
    sums = state.get("sums")
    return "budget" in state["registers"] or bool(sums) and ("spend" in sums or "rotated" in sums
                                                             or "rotated_key" in sums)


def _upgraded(state: State) -> State:
    """`state` in the current form, without changing it (a copy when it is in an older one)."""
    if not _older_form(state):
        return state
    copy = dict(state)
    _upgrade(copy, _Undo())  # replaces the copy's registers and sums, not the state's
    return copy


def _set_register(state: State, key: str, value: Any, event, undo: _Undo) -> str:
    current = state["registers"].get(key)
    if current is not None:
        if event.version == current["version"]:
            # Only the value is the register's content. `at` (occurred_at) only says which
            # snapshot already counts the change, and a sender re-sending its nightly sync may
            # stamp the same change with the time of the sync: the same value at another time is
            # a duplicate (the first time seen is kept), another value is a conflict.
            if current["value"] != value:
                raise _reused(state, key, event)
            return DUPLICATE
        if event.version < current["version"]:
            return STALE
    new = {"version": event.version, "at": event.occurred_at.isoformat(), "value": value}
    undo.set(state["registers"], key, new)
    _update_sums(state, _register_terms(key, current), _register_terms(key, new), undo)
    return APPLIED


def _set_images(state: State, key: str, before: dict | None, after: dict | None, event, undo: _Undo,
                before_sent: bool = True) -> str:
    current = _pair(state["images"].get(key))
    days = _days(current) if current is not None else {}
    held = next((d for d in days.values() if event.version in (d[0], d[1])), None)
    if held is not None:
        # A pair keeps only what the ends of its days' changes said: the image before the change
        # at each day's `lo`, and the image after its latest change (at `hi`). An event there
        # must say the same; what it said elsewhere (its `after` at a day's end short of `hi`,
        # its `before` at a day's `hi` > `lo`) was not kept and cannot be compared. Versions
        # between a day's lo and hi are stale below, whatever they carry. As for registers, `at`
        # is not content: a change re-sent on another day is held.
        if (event.version == held[0] and before_sent and held[2] != before
                or event.version == current["hi"] and current["after"] != after):
            raise _reused(state, key, event)
        return DUPLICATE
    if any(lo < event.version < hi for lo, hi, _ in days.values()):
        return STALE
    version, at = event.version, event.occurred_at.isoformat()
    if current is None:
        new = {"lo": version, "hi": version, "at": at, "before": before, "after": after}
    else:
        day = _china_day(at)
        lo, hi, was_before = days.get(day, (version, version, before))
        if version < lo:
            lo, was_before = version, before
        new = _joined({**days, day: [lo, max(hi, version), was_before]}, max(at, current["at"]),
                      after if version > current["hi"] else current["after"])
    _store_pair(state, key, current, new, undo)
    return APPLIED


def _store_pair(state: State, key: str, current: dict | None, new: dict, undo: _Undo) -> None:
    # Kept as JSON text, like the baseline: a school keeps a pair for every teacher and class a
    # change has named until its next snapshot, and as text a pair takes half the memory it
    # takes as Python dicts; it is read again only when the same entity changes again.
    undo.set(state["images"], key, _pair_text(new))
    _update_sums(state, _image_terms(key, current), _image_terms(key, new), undo)


def _pair(stored: str | dict | None) -> dict | None:
    """An image pair as stored: JSON text (dicts in states written before pairs were kept as text).
    One whose changes fall on more than one day is stored as its days, `at` and `after` alone
    (`_pair_text`)."""
    pair = orjson.loads(stored) if isinstance(stored, str) else stored
    if pair is not None and "days" in pair:
        return _joined(pair["days"], pair["at"], pair["after"], in_order=True)
    return pair


def _days(pair: dict) -> dict[str, list]:
    """A pair's changes by day (China Standard Time): for each day, [lo, hi, image before lo],
    that day's changes merged as a pair merges them. A snapshot is dated by a day, so the image
    before each day's first change is all it needs to start the pair again after its date
    (`_restarted`); the image after is the pair's, after its latest change. A pair of one day,
    and one written before days were kept, is one day: the day of its latest change."""
    if "days" in pair:
        return pair["days"]
    return {_china_day(pair["at"]): [pair["lo"], pair["hi"], pair["before"]]}


def _joined(days: dict[str, list], at: str, after: dict | None, in_order: bool = False) -> dict:
    """The pair the days make, ending in `after`: the image before the earliest change of all;
    with the days themselves, in date order (`in_order`: they are already), when there are
    several."""
    if len(days) == 1:
        (lo, hi, before), = days.values()
        return {"lo": lo, "hi": hi, "at": at, "before": before, "after": after}
    first, hi = None, -1
    for changes in days.values():
        if first is None or changes[0] < first[0]:
            first = changes
        hi = max(hi, changes[1])
    return {"lo": first[0], "hi": hi, "at": at, "before": first[2], "after": after,
            "days": days if in_order else dict(sorted(days.items()))}


def _pair_text(pair: dict) -> str:
    """A pair of several days is stored as its days, `at` and `after`: its other ends are read
    from its days. Only the image before each day's first change is kept, not the image after
    each day's last: a teacher or class changed on many days keeps one image a day, not two."""
    if "days" in pair:
        return orjson.dumps({"at": pair["at"], "after": pair["after"], "days": pair["days"]}).decode()
    return orjson.dumps(pair).decode()


def _restarted(stored: str | dict, as_of: str) -> str | dict | None:
    """An image pair under a snapshot as of `as_of`: the changes after its date alone, as if the
    snapshot had come first (those on or before it are then stale); none when there are none.
    Kept whole, a pair with changes on both sides of the date took the image before its earliest
    change off the snapshot's count, which already counts that change: it was counted twice."""
    pair = _pair(stored)
    days = _days(pair)
    kept = {day: changes for day, changes in days.items() if day > as_of}
    if len(kept) == len(days) or not kept:
        return stored if kept else None
    return _pair_text(_joined(kept, pair["at"], pair["after"]))


def _merge(outcomes: list[str]) -> str:
    if APPLIED in outcomes:
        return APPLIED
    return DUPLICATE if outcomes and all(o == DUPLICATE for o in outcomes) else STALE


def _image(image) -> dict | None:
    """An event's image as plain JSON data (enums as their values), cheaper than model_dump."""
    if image is None:
        return None
    # `_value_` is a plain attribute; Enum's `value` property costs a descriptor call per field.
    return {k: (v._value_ if isinstance(v, Enum) else v) for k, v in image.__dict__.items()}


def _check_shared_figures(state: State) -> None:
    """The snapshot rule for figures a school may report whole or per section: sections that
    report their own may not exceed the whole school's figure when others share the rest."""
    record = baseline(state)
    registers = state["registers"]
    levels = set(record.get("sections", {})) | {lvl for lvl in ("primary", "junior") if f"enrolment:{lvl}" in registers}
    for figure in SHARED_FIGURES:
        whole = _figure(registers, record, "school", figure)
        own = [_figure(registers, record.get("sections", {}).get(lvl, {}), lvl, figure) for lvl in levels]
        reported = [v for v in own if v is not None]
        if whole is not None and reported and len(reported) < len(own) and sum(reported) > whole:
            raise Rejected(f"sections would report more {figure} ({sum(reported)}) than the whole school ({whole}) / "
                           f"各学段{figure}之和将超过全校数")


def _figure(registers: dict, source: dict, scope: str, figure: str):
    register = registers.get(f"facilities:{scope}:{figure}")
    return register["value"] if register is not None else source.get(figure)


# --- materializing records -----------------------------------------------------------------------

def school_record(state: State) -> School | None:
    """The school as the events describe it now, or None when it is closed or has no record
    (`school_record_and_year`)."""
    return school_record_and_year(state)[0]


def school_record_and_year(state: State) -> tuple[School | None, int | None]:
    """The school as the events describe it now, or None when it is closed or has no record;
    and the fiscal year of its money (its current period, below), None without a snapshot or a
    budget. A prorated rule holds the school to the share of that year gone (rules/pace.py).

    Costs the same however many teachers and classes the school has seen: counted entities and
    growing registers (postings, rotations) are read from the running sums in `state["sums"]`.

    Its money is that of its current period: the newest fiscal year with a budget known, the
    snapshot's year counting as known (a late correction of an earlier year's budget is kept but
    does not make that year current again). The budget is that year's; the training spend is the
    snapshot's if the snapshot is of that year, plus the postings of that year (postings of other
    years are kept and count once a budget of their year is current). Its rotation figures are
    those of the snapshot's year, the only year whose teachers eligible to rotate are known: the
    snapshot's plus rotations of that year; rotations of other years, and all of them at a school
    with no snapshot, are kept but not counted.
    """
    state = _upgraded(state)
    registers = state["registers"]
    attrs = registers["school"]["value"] if "school" in registers else {}
    if attrs.get("closed"):
        return None, None
    record = baseline(state)
    if not record and "name" not in attrs:
        return None, None
    record.update({k: v for k, v in attrs.items() if k != "closed"})
    record.update(id=state["school"], district=state["district"])
    sections = {lvl: dict(sec) for lvl, sec in record.get("sections", {}).items()}
    record["sections"] = sections
    budgets: dict[int, float] = {}
    for key, register in registers.items():
        kind, _, rest = key.partition(":")
        if kind == "enrolment":
            sections.setdefault(rest, {"students": 0})["students"] = register["value"]
        elif kind == "facilities":
            scope, _, figure = rest.partition(":")
            target = record if scope == "school" else sections.setdefault(scope, {"students": 0})
            target[figure] = register["value"]
        elif kind == "budget":
            budgets[int(rest)] = register["value"]
    sums = state.get("sums", {})
    snapshot_year = int(state["as_of"][:4]) if state["as_of"] else None
    period = _apply_period(record, budgets, sums, snapshot_year)
    _apply_sums(record, sections, sums)
    # Either sum alone may be there: a correction of a rotation the snapshot counts, from a key
    # teacher's to another's, changes rotated_key and not rotated.
    if snapshot_year is not None and (f"rotated|{snapshot_year}" in sums or f"rotated_key|{snapshot_year}" in sums):
        record["rotated"] = record.get("rotated", 0) + int(sums.get(f"rotated|{snapshot_year}", 0))
        record["rotated_key"] = record.get("rotated_key", 0) + int(sums.get(f"rotated_key|{snapshot_year}", 0))
    return School.model_validate(record), period


def _apply_period(record: dict, budgets: dict[int, float], sums: dict, snapshot_year: int | None) -> int | None:
    """The budget and training spend of the school's current period (see `school_record`);
    returns that period's year, None without one."""
    years = budgets.keys() | ({snapshot_year} if snapshot_year is not None else set())
    if not years:  # neither a snapshot nor a budget: no period, and no spend reported
        return None
    period = max(years)
    if period == snapshot_year:
        spent = record.get("training_spend_cny")
    else:
        # The snapshot's figures are of an earlier year. A school whose snapshot reports its
        # training spend has spent nothing of this year's budget until a posting says otherwise.
        spent = 0.0 if "training_spend_cny" in record else None
        record.pop("training_spend_cny", None)
        record.pop("public_funds_budget_cny", None)
    if period in budgets:
        record["public_funds_budget_cny"] = budgets[period]
    posted = sums.get(f"spend|{period}")
    if posted is not None:
        spent = (spent or 0.0) + posted
    if spent is not None:
        record["training_spend_cny"] = spent
    return period


def baseline(state: State) -> dict:
    """The snapshot record a state starts from, as a fresh dict ({} before any snapshot)."""
    return orjson.loads(state["baseline"]) if state["baseline"] else {}


def district_record(state: State) -> District | None:
    """The district as the events describe it now, or None when nothing names it yet."""
    record = baseline(state)
    record.update({k: v["value"] for k, v in state["registers"].items()})
    if "name" not in record:
        return None
    record["id"] = state["district"]
    return District.model_validate(record)


# --- running sums of counted entities and growing registers ---------------------------------------
#
# A sum key is "school|<field>", "section|<level>|<field>", "class|<level>|<size>" (net number of
# classes of that size added) or "spend|<year>" / "rotated|<year>" / "rotated_key|<year>" (a
# posting's year is that of its `occurred_at`, China Standard Time; a rotation's, its `year`).
# States written before sums were kept by year have "spend", "rotated", "rotated_key": `_upgrade`.

TEACHER_SCHOOL_COUNTS = {"full_time_teachers": lambda t: 1, "certified_teachers": lambda t: t["certified"],
                         "training_360h_completed": lambda t: t["training_360h_completed"]}
TEACHER_SECTION_COUNTS = {"teachers_above_required_degree": lambda t: t["degree_above_required"],
                          "key_teachers": lambda t: t["key_level"] in KEY_LEVELS,
                          "pe_arts_teachers": lambda t: t["subject"] in ("pe", "music", "art")}


def _image_terms(key: str, pair: dict | None) -> dict[str, float]:
    """What an entity's image pair adds to the sums: its latest image minus its earliest."""
    terms: dict[str, float] = {}
    if pair is None:
        return terms
    teacher = key.startswith("teacher:")
    for sign, image in ((-1, pair["before"]), (1, pair["after"])):
        if image is None:
            continue
        if teacher:
            for sum_key, counts in _teacher_counts(image["level"]):
                if counts(image):
                    terms[sum_key] = terms.get(sum_key, 0) + sign
        else:
            _bump(terms, f"class|{image['level']}|{image['students']}", sign)
    return {k: v for k, v in terms.items() if v}


_TEACHER_COUNTS: dict[str, tuple] = {}


def _teacher_counts(level: str) -> tuple:
    """(sum key, counts) pairs for a teacher of `level`, built once per level."""
    pairs = _TEACHER_COUNTS.get(level)
    if pairs is None:
        pairs = _TEACHER_COUNTS[level] = (
            *((f"school|{field}", counts) for field, counts in TEACHER_SCHOOL_COUNTS.items()),
            *((f"section|{level}|{field}", counts) for field, counts in TEACHER_SECTION_COUNTS.items()),
        )
    return pairs


def _register_terms(key: str, register: dict | None) -> dict[str, float]:
    if register is None:
        return {}
    if key.startswith("spend:"):
        return {f"spend|{_year(register['at'])}": register["value"]} if register["value"] is not None else {}
    if key.startswith("rotation:"):
        year, value = key.rpartition(":")[2], register["value"]
        # A bare bool: a register written before the school reached was kept with the flag.
        if isinstance(value, bool):
            return {f"rotated|{year}": 1, f"rotated_key|{year}": int(value)}
        # "less": the rotation the snapshot counts, taken off (`_count_rotation`).
        rotated = int("key" in value) - int("less" in value)
        key_teachers = int(value.get("key", False)) - int(value.get("less", False))
        return {f"rotated|{year}": rotated, f"rotated_key|{year}": key_teachers}
    return {}


def _bump(terms: dict, key: str, amount: float) -> None:
    if amount:
        terms[key] = terms.get(key, 0) + amount


def _update_sums(state: State, old: dict, new: dict, undo: "_Undo") -> None:
    """Replace one entity's terms in the running sums."""
    change: dict[str, float] = dict(new)
    for key, amount in old.items():
        _bump(change, key, -amount)
    if not change:  # most registers count nothing; a district's state has no sums to read
        return
    sums = state["sums"]
    for key, amount in change.items():
        total = sums.get(key, 0) + amount
        if total:
            undo.set(sums, key, total)
        else:
            undo.delete(sums, key)


def _recompute_sums(state: State) -> dict:
    sums: dict[str, float] = {}
    for key, pair in state["images"].items():
        for k, v in _image_terms(key, _pair(pair)).items():
            _bump(sums, k, v)
    for key, register in state["registers"].items():
        for k, v in _register_terms(key, register).items():
            _bump(sums, k, v)
    return {k: v for k, v in sums.items() if v}


_SUM_KEY_PARTS: dict[str, list[str]] = {}


def _sum_key_parts(key: str) -> list[str]:
    # Sum keys come from a small set (fields × levels × class sizes) and are read at every
    # evaluation: split each once.
    parts = _SUM_KEY_PARTS.get(key)
    if parts is None:
        parts = _SUM_KEY_PARTS[key] = key.split("|")
    return parts


def _apply_sums(record: dict, sections: dict, sums: dict) -> None:
    classes: dict[str, dict[int, int]] = {}
    for key, amount in sums.items():
        parts = _sum_key_parts(key)
        if parts[0] == "school":
            _add_count(record, parts[1], amount)
        elif parts[0] == "section" and parts[1] in sections:
            _add_count(sections[parts[1]], parts[2], amount)
        elif parts[0] == "class":
            classes.setdefault(parts[1], {})[int(parts[2])] = int(amount)
    for level, net in classes.items():
        section = sections.setdefault(level, {"students": 0})
        sizes = list(section.get("class_sizes") or [])
        for size, count in sorted(net.items()):
            for _ in range(-count):
                if size in sizes:
                    sizes.remove(size)
            sizes.extend([size] * max(0, count))
        section["class_sizes"] = sorted(sizes)


def _add_count(target: dict, field: str, change: float) -> None:
    """Add to reported counts only: a figure that was not reported stays not reported."""
    if change and target.get(field) is not None:
        target[field] = max(0, target[field] + int(change))
