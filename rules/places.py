"""The places a rule looks at: a school section, a school, a district's level, a district."""

from __future__ import annotations

from dataclasses import dataclass

from rules.balance import DistrictBalance
from rules.sections import SectionFacts
from schemas.snapshot import District, School


@dataclass(slots=True)
class SchoolPlace:
    school: School
    sections: tuple[SectionFacts, ...]
    # The school's totals, which several rules read: `School` computes them at every access.
    students: int
    classes: int | None


@dataclass(slots=True)
class DistrictLevelPlace:
    district: District
    level: str
    balance: DistrictBalance
    #: The level's school sections, counted in the sums: an indicator's CV over fewer than
    #: these is not the district's.
    schools: int


@dataclass(slots=True)
class DistrictPlace:
    district: District
    balance: DistrictBalance


@dataclass(frozen=True)
class Standards:
    """The per-section standards of R1–R7 in force, by level, as the compliance rule needs them."""

    by_level: dict[str, dict[str, float]]
