"""Change events from school information systems (JSON on the wire).

Every event is an upsert or a removal of one entity, identified by its kind and id, and carries
that entity's version. An entity's state is therefore a function of the set of events about it,
not of their order or number: a replayed, duplicated or late event changes nothing it should not.
A version names one content: an event at a version already applied that says something else is
rejected (dead-lettered), so a correction must carry a higher version.
Counted entities (teachers, classes) carry their whole image before and after the change, in the
manner of change-data-capture, so that a change to a teacher already counted in a snapshot can be
undone from the snapshot's counts without knowing that teacher individually.

A Kafka record carries one event, or a batch `{"events": [...]}` (a nightly sync, a snapshot
load); the record key is the district id, so that a district's schools share one partition.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, create_model, model_validator

from schemas.booleans import Boolean
from schemas.china_time import CHINA_STANDARD_TIME
from schemas.numbers import NotBoolean
from schemas.snapshot import Amount, Count, District, Identifier, Level, Location, Name, School, SchoolKind


def _with_offset(moment: dt.datetime) -> dt.datetime:
    # Compared with each other in a batch and against the newest seen: one naive timestamp
    # among offset ones stopped the agent mid-record (TypeError) and lost the record's events.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA_STANDARD_TIME)


class Event(BaseModel):
    """Fields every event has."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event_id: Identifier
    source: Annotated[str, Field(min_length=1, max_length=100)]
    district: Identifier
    occurred_at: Annotated[dt.datetime, AfterValidator(_with_offset),
                           Field(description="ISO 8601; without an offset it is China Standard Time (+08:00). "
                                             "A worker dead-letters an event dated more than "
                                             "JUNHENG_FUTURE_TOLERANCE (1 day) ahead of its clock")]
    version: Annotated[int, Field(ge=0, le=2**62, description=(
        "The entity's version: a higher one replaces a lower. The same version with the same content is a duplicate"
        " (ignored); with other content it is rejected to the dead-letter topic: send a correction with a higher"
        " version / 同一版本号只对应一种内容：更正须使用更高版本号")), NotBoolean()]


class SchoolEvent(Event):
    school: Identifier


# --- snapshots: the baseline a district and its schools start from -----------------------------

#: A snapshot's date. The worker's check of it against its clock is in streams/future.py: the
#: schemas read no clock.
AsOf = Annotated[dt.date, Field(description="the snapshot counts every change dated up to the end of this day "
                                            "(China Standard Time); a worker dead-letters a snapshot whose day ends "
                                            "more than JUNHENG_FUTURE_TOLERANCE (1 day) ahead of its clock")]


class SchoolSnapshot(SchoolEvent):
    """A school's whole record as of a statistical snapshot; replaces any older snapshot of it."""

    type: Literal["school.snapshot"] = "school.snapshot"
    as_of: AsOf
    record: School


class DistrictSnapshot(Event):
    type: Literal["district.snapshot"] = "district.snapshot"
    as_of: AsOf
    record: District


# District-wide figures (migrant children, cohort retention, pay) and the name, as in the
# snapshot's district record but each optional: absent fields keep their value. Built from
# District so that a figure added to the snapshot contract can be updated by events too.
DistrictUpdated = create_model(
    "DistrictUpdated",
    __base__=Event,
    __doc__="District-wide figures; absent fields keep their value.",
    type=(Literal["district.updated"], "district.updated"),
    **{name: (field.rebuild_annotation() | None, None) for name, field in District.model_fields.items() if name != "id"},
)


# --- schools -------------------------------------------------------------------------------------

class SchoolRegistered(SchoolEvent):
    type: Literal["school.registered", "school.updated"] = "school.registered"
    name: Name
    kind: SchoolKind
    location: Location
    public: Boolean = True
    boarding: Boolean = False


class SchoolClosed(SchoolEvent):
    type: Literal["school.closed"] = "school.closed"


# --- teachers ------------------------------------------------------------------------------------

class KeyLevel(str, Enum):
    none = "none"
    school = "school"
    county = "county"
    city = "city"
    province = "province"
    national = "national"


class Subject(str, Enum):
    pe = "pe"
    music = "music"
    art = "art"
    other = "other"


class TeacherImage(BaseModel):
    """A full-time teacher as the indicators count them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    level: Level
    degree_above_required: Boolean
    subject: Subject = Subject.other
    key_level: KeyLevel = KeyLevel.none
    certified: Boolean = True
    training_360h_completed: Boolean = False


class TeacherChanged(SchoolEvent):
    """Hired (before absent), updated (both), left (after absent)."""

    type: Literal["teacher.hired", "teacher.updated", "teacher.left"]
    teacher: Identifier
    before: TeacherImage | None = None
    after: TeacherImage | None = None


class TeacherRotated(SchoolEvent):
    """A teacher rotating (交流轮岗) from `school` to `to_school` of the same district. It counts on
    the school's rotation figures (`rotated`, `rotated_key`) only when `year` is the year of the
    school's snapshot's `as_of`, the one year whose teachers eligible to rotate are known; a
    rotation of another year moves the teacher but is kept uncounted."""

    type: Literal["teacher.rotated"] = "teacher.rotated"
    teacher: Identifier
    to_school: Identifier
    year: Annotated[int, Field(ge=2000, le=2100, description=(
        "the rotation year; counted on the school's rotation figures when it is the year of its snapshot's as_of")),
                    NotBoolean()]
    image: TeacherImage

    @model_validator(mode="after")
    def _to_another_school(self) -> "TeacherRotated":
        # Folded, a rotation to the school itself took the teacher out of it and counted a
        # rotation: five of them left a school with -5 full-time teachers.
        if self.to_school == self.school:
            raise ValueError(f"to_school {self.to_school} is the school itself: a rotation goes to another school"
                             " / 交流轮岗须调往其他学校")
        return self


# --- classes, enrolment, facilities, money -------------------------------------------------------

class ClassImage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    level: Level
    students: Count


class ClassChanged(SchoolEvent):
    """Opened (before absent), resized (both), closed (after absent)."""

    type: Literal["class.opened", "class.resized", "class.closed"]
    class_id: Identifier
    before: ClassImage | None = None
    after: ClassImage | None = None


class EnrolmentReported(SchoolEvent):
    """A section's enrolment; the count replaces the previous one."""

    type: Literal["enrolment.reported"] = "enrolment.reported"
    level: Level
    students: Count


class FacilitiesUpdated(SchoolEvent):
    """Areas, equipment and rooms, for the whole school or one section; absent fields keep their value."""

    type: Literal["facilities.updated"] = "facilities.updated"
    level: Level | None = None
    teaching_aux_area_m2: Amount | None = None
    sports_area_m2: Amount | None = None
    equipment_value_cny: Amount | None = None
    multimedia_classrooms: Count | None = None
    music_rooms_m2: list[Amount] | None = None
    art_rooms_m2: list[Amount] | None = None


class BudgetSet(SchoolEvent):
    """The school's annual public-funds budget (年度公用经费预算总额) for a fiscal year. Budgets are
    kept by fiscal year: the school's budget is that of the newest fiscal year known (its
    snapshot's counting as known), so a late correction of an earlier year does not replace it."""

    type: Literal["budget.set"] = "budget.set"
    fiscal_year: Annotated[int, Field(ge=2000, le=2100, description=(
        "the fiscal year, China's: the calendar year. A snapshot's budget is of the year of its as_of")),
                           NotBoolean()]
    public_funds_budget_cny: Amount


class TrainingSpent(SchoolEvent):
    """A teacher-training expense posted against the school's budget of the fiscal year of its
    `occurred_at` (the calendar year, China Standard Time); `amount_cny` absent (null) withdraws
    the posting. Postings of a year count once that year's budget is the school's newest known."""

    type: Literal["training.spent"] = "training.spent"
    posting: Identifier
    amount_cny: Amount | None


EVENT_MODELS = (SchoolSnapshot, DistrictSnapshot, DistrictUpdated, SchoolRegistered, SchoolClosed,
                TeacherChanged, TeacherRotated, ClassChanged, EnrolmentReported, FacilitiesUpdated,
                BudgetSet, TrainingSpent)
AnyEvent = Annotated[Union[EVENT_MODELS], Field(discriminator="type")]


class Batch(BaseModel):
    """Many events in one Kafka record."""

    model_config = ConfigDict(extra="forbid")
    events: Annotated[list[AnyEvent], Field(max_length=100_000)]


# Tried in this order, not pydantic's "smart" mode, which validates a record against both: a
# single event is decoded at the event union's cost (7 µs against 11 µs here; a national worker
# spent a tenth of its in-process time on decoding single events). No record is both, since a
# batch has no "type" and forbids fields beside "events".
Record = Annotated[Union[AnyEvent, Batch], Field(union_mode="left_to_right")]
RECORD = TypeAdapter(Record)
EVENT_ADAPTER = TypeAdapter(AnyEvent)
EVENT_TYPES = tuple(sorted(t for m in EVENT_MODELS for t in m.model_fields["type"].annotation.__args__))
