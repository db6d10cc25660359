"""A school's sections as the resource assessment sees them.

Each section is treated as a school of its level. Figures reported only for the whole school
(building areas, equipment value) are split between its sections in proportion to their students;
a section that reports its own figure keeps it, and the others share what remains of the whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rules.indicators import INDICATORS, indicator_value
from schemas.snapshot import SHARED_FIGURES, School, SchoolKind

#: Teaching points below this many students are left out of the resource assessment.
TEACHING_POINT_MIN_STUDENTS = 50


@dataclass(slots=True)  # built at every evaluation: see rules/quantities.py Observation
class SectionFacts:
    """One section with its indicators; `missing` names the figures that were not reported."""

    level: str
    students: int
    class_sizes: tuple[int, ...] | None
    indicators: dict[str, float | None]
    missing: dict[str, str] = field(default_factory=dict)
    split_by_students: tuple[str, ...] = ()


def excluded_reason(school: School) -> str | None:
    """Why a school is outside the resource-allocation area, or None when it is inside."""
    if school.kind is SchoolKind.special:
        return "special_education"
    if school.kind is SchoolKind.teaching_point and school.students < TEACHING_POINT_MIN_STUDENTS:
        return "small_teaching_point"
    return None


def school_sections(school: School) -> list[SectionFacts]:
    """The sections of a school inside the resource assessment, with students > 0."""
    if excluded_reason(school) is not None:
        return []
    return _sections(school)


def sections_outside_resources(school: School) -> list[SectionFacts]:
    """A small teaching point's sections (students > 0): left out of the resource area only
    (indicators.md §1), its classes are primary classes all the same, and the class-size limit
    (G5, §2: every primary class at most 45) holds for them. Special-education schools are not
    primary or junior schools, and stay out of section rules altogether."""
    if excluded_reason(school) != "small_teaching_point":
        return []
    return _sections(school)


def _sections(school: School) -> list[SectionFacts]:
    # Built at every evaluation of a changed school: a whole-school figure is split between the
    # sections only when one of them lacks its own, and then once.
    shares: dict[str, dict] = {}
    return [_section_facts(school, level, section, shares)
            for level, section in sorted(school.sections.items(), key=_level_name) if section.students > 0]


def _section_facts(school: School, level, section, shares: dict[str, dict]) -> SectionFacts:
    """One section's indicators; a figure the section lacks is its share of the whole school's."""
    students = section.students
    indicators, missing, split = {}, {}, []
    for indicator in INDICATORS:
        figure = getattr(section, indicator.figure, None)
        if figure is None and indicator.figure in SHARED_FIGURES:
            share = shares.get(indicator.figure)
            if share is None:
                share = shares[indicator.figure] = _split(school, indicator.figure)
            figure = share.get(level)
            if figure is not None:
                split.append(indicator.figure)
        value = indicator_value(indicator, figure, students)
        indicators[indicator.id] = value
        if value is None:
            missing[indicator.id] = indicator.figure
    sizes = tuple(section.class_sizes) if section.class_sizes is not None else None
    return SectionFacts(level.value, students, sizes, indicators, missing,
                        tuple(f for f in SHARED_FIGURES if f in split))


def _level_name(item) -> str:
    return item[0].value


def _split(school: School, figure: str) -> dict:
    """The part of a whole-school figure each section without its own figure receives."""
    whole = getattr(school, figure)
    if whole is None:
        return {}
    # One pass over the sections (asked for at nearly every evaluation of a school that reports
    # the figure whole); what the others own is summed apart, as the total they take from it.
    own, sharing, students = [], [], 0
    for level, section in school.sections.items():
        figure_of_section = getattr(section, figure)
        if figure_of_section is None:
            sharing.append((level, section.students))
            students += section.students
        else:
            own.append(figure_of_section)
    if students <= 0:
        return {}
    remaining = whole - sum(own)
    return {level: remaining * (n / students) for level, n in sharing}
