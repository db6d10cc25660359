"""The quantities rules compare: what each one observes at a place, and how.

A quantity returns an Observation (its value, and for some its own limit), an Observation with
no value and the names of the missing figures when the data was not reported, or None when it
does not apply to the place at all (a room rule for a school with no classes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from rules.compare import comparison
from rules.indicators import BY_ID, IDS


class Scope(str, Enum):
    section = "section"
    school = "school"
    district_section = "district_section"
    district = "district"


# Plain slotted dataclasses for the objects built at every evaluation (about 25 per school):
# a frozen one pays object.__setattr__ per field, more than twice the cost of building it.
@dataclass(slots=True)
class Observation:
    value: float | None
    limit: float | None = None
    missing: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)
    #: Places the value should cover that did not report `missing`: the value, if any, is over
    #: the others only, and a rule it passes is not thereby met.
    unreported: int = 0


Measure = Callable[..., Observation | None]
#: A quantity's value alone at a place, or None where its measure has more to say (a missing
#: figure, a place it does not apply to): see `Quantity.value`.
Value = Callable[..., float | None]


@dataclass(frozen=True)
class Param:
    """A figure a rule gives its quantity (`params`), and the values it may take."""

    required: bool = False
    minimum: float = 0.0
    #: Whether the minimum itself is refused: a divisor, or a figure at which the rule says nothing.
    above_minimum: bool = False
    maximum: float | None = None
    whole: bool = False

    def problem(self, value: float) -> str | None:
        """Why `value` cannot be used, in English and Chinese; None when it can."""
        if not math.isfinite(value):
            return "must be a finite number / 应为有限数值"
        if self.whole and not value.is_integer():
            return "must be a whole number / 应为整数"
        if self.above_minimum and value <= self.minimum:
            return f"must be greater than {self.minimum:g} / 应大于 {self.minimum:g}"
        if value < self.minimum:
            return f"must be at least {self.minimum:g} / 应不小于 {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum:g} / 应不大于 {self.maximum:g}"
        return None


@dataclass(frozen=True)
class Quantity:
    scope: Scope
    measure: Measure
    carries_limit: bool = False
    #: The district sums (`DistrictBalance.total` keys) a district-scope quantity reads besides
    #: the district's record: its rules are evaluated again only when these or the record change.
    reads: tuple[tuple[str, ...], ...] = ()
    #: The params its measure reads; a rule's are checked against these when its pack loads,
    #: because a measure meeting a bad one fails at every school, in a worker at every event.
    params: Mapping[str, Param] = field(default_factory=dict)
    #: For a quantity compared with the rule's own threshold, its value at a place when its
    #: measure would give an Observation of that value and nothing more (no limit of its own, no
    #: unreported places), else None. A rule that holds on it needs nothing else, and most rules
    #: hold: a school's indicators and ratios are checked this way at every evaluation, without
    #: the Observation and details a violation's message needs (tests/test_rules.py checks that
    #: it agrees with the measure).
    value: Value | None = None
    #: Whether it is a figure of the fiscal year so far (spending against the year's budget),
    #: which a rule may prorate over the year (`Rule.prorate`).
    of_year: bool = False

    def __post_init__(self) -> None:
        if self.value is not None and self.carries_limit:
            raise ValueError("a quantity carrying its own limit has no value alone")

    def params_problem(self, params: Mapping[str, float]) -> str | None:
        """What is wrong with a rule's params for this quantity, naming the param; None if nothing."""
        for name in params:
            if name not in self.params:
                known = f"known: {', '.join(sorted(self.params))}" if self.params else "its quantity takes none"
                return f"params: unknown param {name!r} ({known}) / 未知参数 {name}"
        for name, param in self.params.items():
            if name not in params:
                if param.required:
                    return f"params: {name} is required / 缺少参数 {name}"
                continue
            problem = param.problem(params[name])
            if problem:
                return f"params.{name}: {params[name]!r} {problem}"
        return None


def _ratio(numerator: float | None, denominator: float | None, names: tuple[str, str], **detail) -> Observation | None:
    missing = tuple(n for n, v in zip(names, (numerator, denominator)) if v is None)
    if missing:
        return Observation(None, missing=missing)
    if denominator == 0:
        return None
    return Observation(numerator / denominator, detail={"numerator": numerator, "denominator": denominator, **detail})


# --- section scope -----------------------------------------------------------------------------

def _indicator(indicator: str) -> Quantity:
    def value(section, params, standards) -> float | None:
        return section.indicators[indicator]

    def measure(section, params, standards) -> Observation:
        figure = value(section, params, standards)
        if figure is None:
            return Observation(None, missing=(section.missing[indicator],))
        return Observation(figure, detail={"students": section.students})
    return Quantity(Scope.section, measure, value=value)


def _class_size_max(section, params, standards) -> Observation | None:
    if section.class_sizes is None:
        return Observation(None, missing=("class_sizes",))
    if not section.class_sizes:
        return None
    return Observation(float(max(section.class_sizes)), detail={"classes": len(section.class_sizes)})


_reaches = comparison(">=")


def _compliance(section, params, standards) -> Observation | None:
    """School (section) compliance: at least `min_reached` indicators reach their standard and
    every other one is at least `floor_ratio` of it. The value is the number reached (limit
    `min_reached`) when too few reach, otherwise the weakest short indicator's fraction of its
    standard (limit `floor_ratio`); with none short, the number reached."""
    level_standards = standards.by_level.get(section.level, {})
    if not level_standards:
        return None
    min_reached = int(params.get("min_reached", len(level_standards) - 1))
    floor_ratio = params.get("floor_ratio", 0.85)
    ratios = {ind: section.indicators[ind] / std for ind, std in level_standards.items()
              if section.indicators.get(ind) is not None and std > 0}
    unknown = [ind for ind in level_standards if ind not in ratios]
    short = sorted((r, ind) for ind, r in ratios.items() if not _reaches(r, 1.0))
    reached = len(ratios) - len(short)
    weakest_ratio, weakest = short[0] if short else (1.0, "-")
    detail = {"reached": reached, "of": len(level_standards), "min_reached": min_reached,
              "floor_ratio": floor_ratio, "short": ",".join(sorted(ind for _, ind in short)) or "-",
              "weakest": weakest, "weakest_ratio": weakest_ratio}
    if reached + len(unknown) < min_reached:
        return Observation(float(reached), limit=float(min_reached), detail=detail)
    if short and not _reaches(weakest_ratio, floor_ratio):
        return Observation(weakest_ratio, limit=floor_ratio, detail=detail)
    if unknown:
        return Observation(None, missing=tuple(section.missing.get(i, i) for i in unknown), detail=detail)
    if short:
        return Observation(weakest_ratio, limit=floor_ratio, detail=detail)
    return Observation(float(reached), limit=float(min_reached), detail=detail)


# --- school scope ------------------------------------------------------------------------------

def _school_size(place, params, standards) -> Observation | None:
    return Observation(float(place.students))


def _rooms(kind: str) -> Measure:
    field = f"{kind}_rooms_m2"

    def measure(place, params, standards) -> Observation | None:
        classes = place.classes
        rooms = getattr(place.school, field)
        if classes is None or rooms is None:
            return Observation(None, missing=tuple(n for n, v in (("class_sizes", classes), (field, rooms)) if v is None))
        if classes == 0:
            return None
        needed = math.ceil(classes / params.get("classes_per_room", 12))
        min_area = params.get("min_area_m2", 0)
        qualifying = sum(1 for area in rooms if area >= min_area)
        return Observation(float(qualifying), limit=float(needed),
                           detail={"classes": classes, "rooms": len(rooms), "min_area_m2": min_area})
    return measure


def _small_school_funds(place, params, standards) -> Observation | None:
    floor_students = params.get("funded_students", 100)
    if place.students >= floor_students:
        return None
    budget = place.school.public_funds_budget_cny
    if budget is None:
        return Observation(None, missing=("public_funds_budget_cny",))
    limit = floor_students * params["per_student_cny"]
    return Observation(budget, limit=limit, detail={"students": place.students, "funded_students": floor_students})


def _funds_per_student(place, params, standards) -> Observation | None:
    if place.students == 0:
        return None
    return _ratio(place.school.public_funds_budget_cny, place.students, ("public_funds_budget_cny", "students"))


def _school_ratio(numerator: str, denominator: str, of_year: bool = False) -> Quantity:
    def value(place, params, standards) -> float | None:
        school = place.school
        top, bottom = getattr(school, numerator), getattr(school, denominator)
        return top / bottom if top is not None and bottom else None

    def measure(place, params, standards) -> Observation | None:
        school = place.school
        return _ratio(getattr(school, numerator), getattr(school, denominator), (numerator, denominator))
    return Quantity(Scope.school, measure, value=value, of_year=of_year)


def _key_teacher_share(place, params, standards) -> Observation | None:
    keys = [s.key_teachers for s in place.school.sections.values()]
    if not keys:
        return None
    total = None if any(k is None for k in keys) else sum(keys)
    return _ratio(total, place.school.full_time_teachers, ("key_teachers", "full_time_teachers"))


# --- district scope ----------------------------------------------------------------------------

def _cv(indicator: str) -> Measure:
    missing = (BY_ID[indicator].figure,)

    def measure(place, params, standards) -> Observation | None:
        figures = place.balance.indicator(indicator, place.level)
        # The standard measures the spread across every school of the level: a school that did
        # not report the figure is left out of the sums, and the CV of the others is not the
        # district's. Two counts kept in the sums tell it, whatever the district's size.
        unreported = place.schools - figures.schools
        detail = {"mean": figures.mean, "schools": figures.schools, "students": figures.students,
                  "unreported": unreported}
        if figures.cv is None:
            return Observation(None, missing=missing, detail=detail, unreported=unreported) if unreported else None
        return Observation(figures.cv, missing=missing if unreported else (), detail=detail, unreported=unreported)
    return measure


def _district_ratio(numerator: str, denominator: str) -> Measure:
    def measure(place, params, standards) -> Observation | None:
        district = place.district
        return _ratio(getattr(district, numerator), getattr(district, denominator), (numerator, denominator))
    return measure


def _teacher_pay(place, params, standards) -> Observation | None:
    pay, civil = place.district.teacher_avg_pay_cny, place.district.civil_servant_avg_pay_cny
    missing = tuple(n for n, v in (("teacher_avg_pay_cny", pay), ("civil_servant_avg_pay_cny", civil)) if v is None)
    if missing:
        return Observation(None, missing=missing)
    return Observation(pay, limit=civil)


def _rotation(part: int, whole: int, names: tuple[str, str]) -> Measure:
    def measure(place, params, standards) -> Observation | None:
        totals = place.balance.total("rotation")
        if totals is None:
            return Observation(None, missing=names)
        reporting = totals[3]
        return _ratio(totals[part], totals[whole], names, reporting_schools=reporting)
    return measure


#: The section quantities of the resource-allocation area (indicators.md §1), which the schools
#: it leaves out are not measured on; their other section rules (class size) still apply.
RESOURCE_QUANTITIES = frozenset((*IDS, "compliance"))

COMPLIANCE_PARAMS = {
    # Reached indicators are counted; a short one is below its standard, so a floor above 1
    # would refuse every short indicator, which min_reached says more plainly.
    "min_reached": Param(whole=True, maximum=len(IDS)),
    "floor_ratio": Param(maximum=1.0),
}
ROOM_PARAMS = {"classes_per_room": Param(above_minimum=True), "min_area_m2": Param()}
# At 0 either figure makes a rule that never finds anything.
SMALL_SCHOOL_PARAMS = {"funded_students": Param(above_minimum=True, whole=True),
                       "per_student_cny": Param(required=True, above_minimum=True)}

QUANTITIES: dict[str, Quantity] = {
    **{ind: _indicator(ind) for ind in IDS},
    "class_size_max": Quantity(Scope.section, _class_size_max),
    "compliance": Quantity(Scope.section, _compliance, carries_limit=True, params=COMPLIANCE_PARAMS),
    "school_size": Quantity(Scope.school, _school_size),
    "music_rooms": Quantity(Scope.school, _rooms("music"), carries_limit=True, params=ROOM_PARAMS),
    "art_rooms": Quantity(Scope.school, _rooms("art"), carries_limit=True, params=ROOM_PARAMS),
    "small_school_funds": Quantity(Scope.school, _small_school_funds, carries_limit=True,
                                   params=SMALL_SCHOOL_PARAMS),
    "funds_per_student": Quantity(Scope.school, _funds_per_student),
    "training_360h_share": _school_ratio("training_360h_completed", "full_time_teachers"),
    "certified_share": _school_ratio("certified_teachers", "full_time_teachers"),
    "training_budget_share": _school_ratio("training_spend_cny", "public_funds_budget_cny", of_year=True),
    "key_teacher_share": Quantity(Scope.school, _key_teacher_share),
    **{f"{ind}.cv": Quantity(Scope.district_section, _cv(ind)) for ind in IDS},
    "teacher_pay": Quantity(Scope.district, _teacher_pay, carries_limit=True),
    "rotation_share": Quantity(Scope.district, _rotation(1, 0, ("rotated", "rotation_eligible")), reads=(("rotation",),)),
    "rotation_key_share": Quantity(Scope.district, _rotation(2, 1, ("rotated_key", "rotated")), reads=(("rotation",),)),
    "migrant_public_share": Quantity(Scope.district, _district_ratio("migrant_children_in_public", "migrant_children_eligible")),
    "junior_retention": Quantity(Scope.district, _district_ratio("junior_cohort_retained", "junior_cohort_entered")),
    "disabled_enrolment": Quantity(Scope.district, _district_ratio("disabled_children_enrolled", "disabled_children")),
}
