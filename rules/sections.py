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
    shares = {figure: _split(school, figure) for figure in SHARED_FIGURES}
    facts = []
    for level, section in sorted(school.sections.items(), key=lambda kv: kv[0].value):
        if section.students <= 0:
            continue
        figures = {i.figure: getattr(section, i.figure, None) for i in INDICATORS}
        split = []
        for figure in SHARED_FIGURES:
            if figures[figure] is None and shares[figure].get(level) is not None:
                figures[figure] = shares[figure][level]
                split.append(figure)
        indicators = {i.id: indicator_value(i, figures[i.figure], section.students) for i in INDICATORS}
        missing = {i.id: i.figure for i in INDICATORS if indicators[i.id] is None}
        sizes = tuple(section.class_sizes) if section.class_sizes is not None else None
        facts.append(SectionFacts(level.value, section.students, sizes, indicators, missing, tuple(split)))
    return facts


def _split(school: School, figure: str) -> dict:
    """The part of a whole-school figure each section without its own figure receives."""
    whole = getattr(school, figure)
    if whole is None:
        return {}
    own = {lvl: getattr(s, figure) for lvl, s in school.sections.items()}
    remaining = whole - sum(v for v in own.values() if v is not None)
    sharing = {lvl: s.students for lvl, s in school.sections.items() if own[lvl] is None}
    students = sum(sharing.values())
    if students <= 0:
        return {}
    return {lvl: remaining * (n / students) for lvl, n in sharing.items()}
