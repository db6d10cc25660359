"""The school snapshot: the statistical picture of a district's schools (contracts.md §1).

A snapshot is what `junheng assess` reads and what `junheng load` publishes as events. Every
count is a non-negative integer and every area or amount a non-negative number (neither is ever a
boolean), and every flag (`public`, `boarding`) is true or false, never 1 or "yes"; a field that is
absent means "not reported", never zero.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from schemas.booleans import Boolean
from schemas.numbers import NotBoolean

# NotBoolean: pydantic would read `true` as 1 (schemas/numbers.py); flags are `Boolean`, which
# refuses 1 and "yes" (schemas/booleans.py).
Count = Annotated[int, Field(ge=0, le=10_000_000), NotBoolean()]
Amount = Annotated[float, Field(ge=0, le=1e13, allow_inf_nan=False), NotBoolean()]
# Ids appear in messages, metric labels and Kafka keys: no control or bidi-format characters.
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Level(str, Enum):
    """A stage of compulsory education; each section of a school is of one level."""

    primary = "primary"
    junior = "junior"


class SchoolKind(str, Enum):
    primary = "primary"
    junior = "junior"
    nine_year = "nine_year"
    twelve_year = "twelve_year"
    special = "special"
    teaching_point = "teaching_point"


class Location(str, Enum):
    urban = "urban"
    town = "town"
    village = "village"


class Strict(BaseModel):
    """Base for wire models: unknown fields are errors, so a typo never passes as 'not reported'."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Section(Strict):
    """One level's part of a school. A nine-year school has a primary and a junior section."""

    students: Count
    class_sizes: list[Count] | None = None
    teachers_above_required_degree: Count | None = None
    key_teachers: Count | None = None
    pe_arts_teachers: Count | None = None
    multimedia_classrooms: Count | None = None
    teaching_aux_area_m2: Amount | None = None
    sports_area_m2: Amount | None = None
    equipment_value_cny: Amount | None = None


#: Figures a school may report for the whole school, split between sections by students.
SHARED_FIGURES = ("teaching_aux_area_m2", "sports_area_m2", "equipment_value_cny")


class School(Strict):
    id: Identifier
    name: Name
    district: Identifier
    kind: SchoolKind
    location: Location
    public: Boolean = True
    boarding: Boolean = False
    sections: dict[Level, Section] = Field(default_factory=dict)
    teaching_aux_area_m2: Amount | None = None
    sports_area_m2: Amount | None = None
    equipment_value_cny: Amount | None = None
    music_rooms_m2: list[Amount] | None = None
    art_rooms_m2: list[Amount] | None = None
    full_time_teachers: Count | None = None
    certified_teachers: Count | None = None
    training_360h_completed: Count | None = None
    # Annual figures: of the year of the snapshot's `as_of` (China's fiscal year is the calendar
    # year). The event fold reads them so (streams/state.py `school_record`).
    rotation_eligible: Annotated[Count | None, Field(
        description="teachers eligible to rotate (交流轮岗) in the year of the snapshot's as_of")] = None
    rotated: Annotated[Count | None, Field(
        description="teachers who rotated out of the school in the year of the snapshot's as_of")] = None
    rotated_key: Annotated[Count | None, Field(description="key teachers among `rotated`")] = None
    public_funds_budget_cny: Annotated[Amount | None, Field(
        description="the annual public-funds budget (年度公用经费预算总额) of the fiscal year (calendar year) "
                    "of the snapshot's as_of")] = None
    training_spend_cny: Annotated[Amount | None, Field(
        description="teacher-training spending of the fiscal year (calendar year) of the snapshot's as_of, "
                    "up to its end")] = None

    @model_validator(mode="after")
    def _sections_fit_school(self) -> "School":
        for figure in SHARED_FIGURES:
            whole = getattr(self, figure)
            if whole is None:  # most schools report their figures by section (or not at all)
                continue
            parts = [getattr(s, figure) for s in self.sections.values()]
            own = [p for p in parts if p is not None]
            if own and len(own) < len(parts) and sum(own) > whole:
                raise ValueError(
                    f"sections report more {figure} ({sum(own)}) than the whole school ({whole}) / "
                    f"各学段{figure}之和超过全校数"
                )
        return self

    @property
    def students(self) -> int:
        """Compulsory-education students of the school, all sections together."""
        return sum(s.students for s in self.sections.values())

    @property
    def classes(self) -> int | None:
        """Number of classes, or None when any section did not report its classes."""
        sizes = [s.class_sizes for s in self.sections.values()]
        if not sizes or any(c is None for c in sizes):
            return None
        return sum(len(c) for c in sizes)


class District(Strict):
    id: Identifier
    name: Name
    migrant_children_eligible: Count | None = None
    migrant_children_in_public: Count | None = None
    junior_cohort_entered: Count | None = None
    junior_cohort_retained: Count | None = None
    disabled_children: Count | None = None
    disabled_children_enrolled: Count | None = None
    teacher_avg_pay_cny: Amount | None = None
    civil_servant_avg_pay_cny: Amount | None = None


def _date_as_written(value):
    """A snapshot's date is written 2026-09-01. Statistics systems also write 20260901, which
    pydantic read as seconds since 1970 and refused with "Datetimes provided to dates should have
    zero time"; a number of seconds was taken as a date without a word."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        raise ValueError(f"{value!r} is not a date written YYYY-MM-DD, such as 2026-09-01 / 日期应写作 YYYY-MM-DD，如 2026-09-01")
    return value


class Snapshot(Strict):
    """A whole statistical snapshot: districts and their schools at one date."""

    as_of: Annotated[dt.date, BeforeValidator(_date_as_written)]
    districts: list[District]
    schools: list[School]

    @model_validator(mode="after")
    def _references_hold(self) -> "Snapshot":
        _unique("districts", [d.id for d in self.districts])
        _unique("schools", [s.id for s in self.schools])
        declared = {d.id for d in self.districts}
        for i, school in enumerate(self.schools):
            if school.district not in declared:
                raise ValueError(
                    f"schools.{i}.district: district {school.district!r} of school {school.id!r} "
                    f"is not declared in districts / 学校所属区县未在 districts 中声明"
                )
        return self


def _unique(where: str, ids: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, ident in enumerate(ids):
        if ident in seen:
            raise ValueError(
                f"{where}.{i}.id: id {ident!r} is used twice (also at {where}.{seen[ident]}) / "
                f"编号重复"
            )
        seen[ident] = i
