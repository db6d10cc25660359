"""Deterministic example snapshots: one district that passes, one that fails in typical ways.

Both generators draw every random choice from `random.Random(seed)`, so a seed always yields the
same snapshot, byte for byte once serialised with `to_json`. The checked-in files under
`deploy/examples/` are these generators run with their default seeds.

Regenerate the checked-in files with `python -m junheng.examples`.
"""

from __future__ import annotations

import json
import math
import pathlib
import random
from dataclasses import dataclass
from typing import Callable, NamedTuple

from schemas.snapshot import Snapshot

LEVELS = ("primary", "junior")
CLASS_CAP = {"primary": 45, "junior": 50}
MIXED_KINDS = ("nine_year", "twelve_year")

#: Public funds per student a year (Suzhou High-tech zone figures quoted in indicators.md §5).
SIP_FUNDS_PER_STUDENT = {"primary": (1500, 1700), "junior": (1750, 1900)}
#: The 2016 national benchmark (基准定额) for eastern provinces, which the national pack's G6 uses
#: (central and western: 600 and 800); G6 funds small schools as if 100 students.
RURAL_FUNDS_PER_STUDENT = {"primary": 650, "junior": 850}
SMALL_SCHOOL_FLOOR_STUDENTS = 100


# --------------------------------------------------------------------------------------------
# Shared arithmetic
# --------------------------------------------------------------------------------------------


def _split(total: int, weights: list[float]) -> list[int]:
    """Split an integer total in proportion to weights, largest remainder first, exactly."""
    scale = total / sum(weights)
    raw = [w * scale for w in weights]
    counts = [math.floor(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _per_100(rng: random.Random, students: int, rate: float, spread: float = 0.05) -> int:
    """A head count near `rate` per 100 students; at least one, as every school has someone."""
    return max(1, round(students * rate / 100 * rng.uniform(1 - spread, 1 + spread)))


def _class_sizes(
    rng: random.Random, students: int, target: tuple[float, float], cap: int, min_classes: int
) -> list[int]:
    """Classes of near-equal size averaging within `target`, none above `cap`.

    Small schools keep one class per grade (`min_classes`) however few their pupils, which is
    why village classes are tiny.
    """
    count = max(min_classes, math.ceil(students / rng.uniform(*target)))
    base, extra = divmod(students, count)
    sizes = [base + (1 if i < extra else 0) for i in range(count)]
    floor = max(1, base - 4)
    # Real classes are not equal: move a few pupils around without breaking the cap.
    for _ in range(count):
        give, take = rng.randrange(count), rng.randrange(count)
        moved = rng.randint(1, 2)
        if give != take and sizes[take] + moved <= cap and sizes[give] - moved >= floor:
            sizes[give] -= moved
            sizes[take] += moved
    return sizes


def _rooms(rng: random.Random, classes: int, smallest: float) -> list[float]:
    """Enough rooms for G3: one per 12 classes or part, sometimes one spare."""
    count = math.ceil(classes / 12) + rng.choice((0, 0, 1))
    return [float(round(rng.uniform(smallest + 1, smallest + 30))) for _ in range(count)]


def _round_amount(value: float, unit: int = 1) -> float:
    return float(round(value / unit) * unit)


def _drop_none(record: dict) -> dict:
    return {k: v for k, v in record.items() if v is not None}


# --------------------------------------------------------------------------------------------
# Suzhou Industrial Park
# --------------------------------------------------------------------------------------------

SIP_ID = "320571"
SIP_NAME = "苏州工业园区"
SIP_AS_OF = "2023-09-01"
SIP_STUDENTS = {"primary": 98_571, "junior": 36_622}
SIP_SPECIAL_STUDENTS = 220
SIP_TEACHERS = {"primary": 5_987, "junior": 3_380}
SIP_SPECIAL_TEACHERS = 64
SIP_R1 = {"primary": 6.07, "junior": 9.21}
SIP_R2 = {"primary": 1.99, "junior": 3.20}
SIP_ROTATED, SIP_ROTATED_SHARE, SIP_ROTATED_KEY = 393, 0.1661, 197
SIP_SPECIAL_FUNDS_PER_STUDENT = 9_600

SIP_PRIMARY_SCHOOLS = (
    "星海实验小学", "星洲小学", "星港实验小学", "翰林小学", "东沙湖小学", "斜塘实验小学",
    "娄葑实验小学", "唯亭实验小学", "胜浦实验小学", "车坊实验小学", "青剑湖小学",
    "文景实验小学", "华林小学", "钟南小学", "跨塘实验小学", "方洲小学",
)
SIP_JUNIOR_SCHOOLS = (
    "星海实验中学", "独墅湖实验中学", "金鸡湖实验中学", "东沙湖实验中学", "青剑湖实验中学",
    "唯亭实验中学",
)
SIP_NINE_YEAR_SCHOOLS = (
    "金鸡湖学校", "星湾学校", "星洋学校", "星浦学校", "星澄学校", "星汇学校", "星韵学校",
    "星港学校", "景城学校", "莲花学校", "斜塘学校", "新城花园学校", "东延路实验学校",
    "胜浦学校", "独墅湖学校", "青剑湖学校", "海归人才子女学校", "湖东实验学校",
)
SIP_TWELVE_YEAR_SCHOOLS = ("苏州工业园区外国语学校", "西交利物浦大学附属学校")
SIP_SPECIAL_SCHOOL = "苏州工业园区仁爱学校"
#: Former townships of the park; everything else is urban.
SIP_TOWN_MARKERS = ("唯亭", "胜浦", "车坊", "跨塘")
#: Nine-year schools whose statistics office reports building and equipment figures per section.
SIP_PER_SECTION_SCHOOLS = ("星湾学校", "景城学校", "胜浦学校")

#: Per-student ranges for the shared figures, comfortably above the national standards
#: (R4 4.5/5.8 m², R5 7.5/10.2 m², R6 2000/2500 CNY).
SIP_SHARED_RANGES = {
    "primary": {"teaching_aux_area_m2": (5.2, 7.4), "sports_area_m2": (8.6, 12.5),
                "equipment_value_cny": (2500, 4300)},
    "junior": {"teaching_aux_area_m2": (6.7, 9.0), "sports_area_m2": (11.8, 16.0),
               "equipment_value_cny": (3100, 5200)},
}
#: PE and arts teachers per 100 students; the national floor is 0.9 at both levels.
SIP_R3 = {"primary": 1.35, "junior": 1.30}


@dataclass
class _Planned:
    """A school being built: its place in the district and the figures decided so far."""

    name: str
    kind: str
    location: str
    students: dict[str, int]


def suzhou_sip(seed: int = 2023) -> Snapshot:
    """A district shaped like Suzhou Industrial Park in 2023 that passes the national standards.

    43 schools (16 primary, 6 junior, 18 nine-year, 2 twelve-year, 1 special) with the published
    enrolment (98,571 primary, 36,622 junior), 9,431 full-time teachers (5,987 primary, 3,380
    junior, 64 special), district R1 6.07/9.21 and R2 1.99/3.20 per 100 students, 393 rotated
    teachers (16.61% of those eligible, 197 key teachers) and 97.70% of migrant children in
    public places. Every section meets all seven resource standards with a realistic spread.

    Known, unavoidable miss: G4 (school size). 22 single-level schools of at most 2,000 and
    20 nine/twelve-year schools of at most 2,500 hold 94,000 students, fewer than the 135,193
    published, so the nine- and twelve-year schools carry the excess (about 3,000-5,800
    pupils each), as the real park's large schools do. Primary and junior schools stay within 2,000.

    The special school's 220 pupils are written as its primary and junior sections; special
    schools stay outside the resource indicators, and its budget is 9,600 CNY a pupil.
    """
    rng = random.Random(seed)
    plan = _sip_plan()
    _sip_enrol(rng, plan)
    schools = [_sip_skeleton(i, planned) for i, planned in enumerate(plan, start=1)]
    _sip_staff(rng, schools)
    for planned, school in zip(plan, schools):
        _sip_classes_and_rooms(rng, school)
        _sip_shared_figures(rng, planned, school)
        _sip_funds(rng, planned, school)
    _sip_rotation(rng, schools)
    _enrol_special(schools, SIP_SPECIAL_STUDENTS)
    return Snapshot.model_validate(
        {"as_of": SIP_AS_OF, "districts": [_sip_district()], "schools": schools}
    )


def _enrol_special(schools: list[dict], students: int) -> None:
    """A special school's pupils, two thirds of them primary, as sections without other figures
    (special schools are outside the resource indicators; G6 needs their enrolment)."""
    primary = round(students * 2 / 3)
    for school in schools:
        if school["kind"] == "special":
            school["sections"] = {"primary": {"students": primary}, "junior": {"students": students - primary}}


def _sip_plan() -> list[_Planned]:
    def location(name: str) -> str:
        return "town" if any(m in name for m in SIP_TOWN_MARKERS) else "urban"

    groups = (
        ("primary", SIP_PRIMARY_SCHOOLS),
        ("junior", SIP_JUNIOR_SCHOOLS),
        ("nine_year", SIP_NINE_YEAR_SCHOOLS),
        ("twelve_year", SIP_TWELVE_YEAR_SCHOOLS),
        ("special", (SIP_SPECIAL_SCHOOL,)),
    )
    return [_Planned(name, kind, location(name), {}) for kind, names in groups for name in names]


def _sip_enrol(rng: random.Random, plan: list[_Planned]) -> None:
    """Single-level schools take up to 2,000 pupils; mixed schools share the rest exactly."""
    for level in LEVELS:
        for planned in plan:
            if planned.kind == level:
                planned.students[level] = rng.randint(1500, 1960)
        mixed = [p for p in plan if p.kind in MIXED_KINDS]
        # Twelve-year schools spend part of their campus on senior high, so they are smaller.
        weights = [rng.uniform(0.8, 1.2) * (0.6 if p.kind == "twelve_year" else 1.0) for p in mixed]
        taken = sum(p.students.get(level, 0) for p in plan)
        for planned, count in zip(mixed, _split(SIP_STUDENTS[level] - taken, weights)):
            planned.students[level] = count


def _sip_skeleton(number: int, planned: _Planned) -> dict:
    return {
        "id": f"{SIP_ID}-{number:03d}",
        "name": planned.name,
        "district": SIP_ID,
        "kind": planned.kind,
        "location": planned.location,
        "public": True,
        "boarding": False,
        "sections": {level: {"students": n} for level, n in planned.students.items()},
    }


def _sip_staff(rng: random.Random, schools: list[dict]) -> None:
    """Teachers, R1, R2 and R3 per section, with district totals fixed to the published ones."""
    teachers = {id(s): 0 for s in schools}
    for level in LEVELS:
        sections = [(s, s["sections"][level]) for s in schools if level in s["sections"]]
        sizes = [sec["students"] for _, sec in sections]
        staff = _split(SIP_TEACHERS[level], [n * rng.uniform(0.9, 1.1) for n in sizes])
        above = _sip_above_degree(rng, staff, round(SIP_STUDENTS[level] * SIP_R1[level] / 100))
        keys = _split(
            round(SIP_STUDENTS[level] * SIP_R2[level] / 100),
            [n * rng.uniform(0.75, 1.25) for n in sizes],
        )
        for (school, section), n, t, a, k in zip(sections, sizes, staff, above, keys):
            section["teachers_above_required_degree"] = a
            section["key_teachers"] = k
            section["pe_arts_teachers"] = _per_100(rng, n, SIP_R3[level], spread=0.12)
            teachers[id(school)] += t
    for school in schools:
        # Only the special school has no sections, hence no section teachers.
        full_time = teachers[id(school)] or SIP_SPECIAL_TEACHERS
        school["full_time_teachers"] = full_time
        school["certified_teachers"] = full_time
        school["training_360h_completed"] = full_time


def _sip_above_degree(rng: random.Random, staff: list[int], total_above: int) -> list[int]:
    """Nearly every SIP teacher exceeds the required degree; the few who don't are scattered."""
    above = list(staff)
    for i in rng.sample(range(len(staff)), sum(staff) - total_above):
        above[i] -= 1
    return above


def _sip_classes_and_rooms(rng: random.Random, school: dict) -> None:
    sections = school["sections"]
    for level, section in sections.items():
        target = (40.0, 43.5) if level == "primary" else (41.0, 45.0)
        sizes = _class_sizes(rng, section["students"], target, CLASS_CAP[level], min_classes=6)
        section["class_sizes"] = sizes
        section["multimedia_classrooms"] = math.ceil(len(sizes) * rng.uniform(1.2, 1.4))
    classes = sum(len(s["class_sizes"]) for s in sections.values()) or 12
    school["music_rooms_m2"] = _rooms(rng, classes, smallest=96)
    school["art_rooms_m2"] = _rooms(rng, classes, smallest=90)


def _sip_shared_figures(rng: random.Random, planned: _Planned, school: dict) -> None:
    """Buildings and equipment: per section for a few mixed schools, for the school otherwise."""
    if planned.kind == "special":
        return
    if planned.name in SIP_PER_SECTION_SCHOOLS:
        for level, section in school["sections"].items():
            _set_shared(rng, section, section["students"], SIP_SHARED_RANGES[level])
        return
    # A whole-school figure is split by students, so each section gets the same per-student
    # value; a mixed school's value must therefore clear the stricter junior standard.
    level = "junior" if "junior" in school["sections"] else "primary"
    students = sum(planned.students.values())
    _set_shared(rng, school, students, SIP_SHARED_RANGES[level])


def _set_shared(rng: random.Random, target: dict, students: int, ranges: dict) -> None:
    for figure, (low, high) in ranges.items():
        unit = 1000 if figure == "equipment_value_cny" else 1
        target[figure] = _round_amount(students * rng.uniform(low, high), unit)


def _sip_funds(rng: random.Random, planned: _Planned, school: dict) -> None:
    if planned.kind == "special":
        budget = float(SIP_SPECIAL_STUDENTS * SIP_SPECIAL_FUNDS_PER_STUDENT)
    else:
        budget = sum(
            n * rng.uniform(*SIP_FUNDS_PER_STUDENT[level]) for level, n in planned.students.items()
        )
        budget = _round_amount(budget, 1000)
    school["public_funds_budget_cny"] = budget
    school["training_spend_cny"] = _round_amount(budget * rng.uniform(0.055, 0.085), 100)


def _sip_rotation(rng: random.Random, schools: list[dict]) -> None:
    """Rotation counts per school that add up to the park's 2023 figures."""
    staff = [s["full_time_teachers"] for s in schools]
    eligible = _split(
        round(SIP_ROTATED / SIP_ROTATED_SHARE), [t * rng.uniform(0.85, 1.15) for t in staff]
    )
    rotated = _split(SIP_ROTATED, [e * rng.uniform(0.85, 1.15) for e in eligible])
    rotated_key = _split(SIP_ROTATED_KEY, [r * rng.uniform(0.8, 1.2) for r in rotated])
    for school, e, r, k in zip(schools, eligible, rotated, rotated_key):
        school["rotation_eligible"] = e
        school["rotated"] = r
        school["rotated_key"] = k


def _sip_district() -> dict:
    return {
        "id": SIP_ID,
        "name": SIP_NAME,
        "migrant_children_eligible": 41_000,
        "migrant_children_in_public": 40_057,  # 97.70%
        "junior_cohort_entered": 12_140,
        "junior_cohort_retained": 12_066,  # 99.39%
        "disabled_children": 312,
        "disabled_children_enrolled": 309,  # 99.04%
        "teacher_avg_pay_cny": 198_000.0,
        "civil_servant_avg_pay_cny": 190_000.0,
    }


# --------------------------------------------------------------------------------------------
# A fictional rural county
# --------------------------------------------------------------------------------------------

RURAL_ID = "431299"
RURAL_NAME = "青岚县"
RURAL_AS_OF = "2024-09-01"


@dataclass(frozen=True)
class _RuralSpec:
    """One school of the rural county as designed; `sports` is m² per student."""

    name: str
    kind: str
    location: str
    primary: int = 0
    junior: int = 0
    sports: float = 0.0
    junior_sports: float | None = None  # set only for a mixed school reporting per section


#: Designed so that primary sports area per student is very unequal (R5 CV > 0.50): the county
#: town schools have big grounds, the township and village schools very little.
RURAL_SCHOOLS = (
    _RuralSpec("青岚县第一小学", "primary", "urban", primary=1880, sports=18.5),          # 001
    _RuralSpec("青岚县实验小学", "primary", "urban", primary=1960, sports=17.0),          # 002
    _RuralSpec("青岚县第二小学", "primary", "urban", primary=1720, sports=17.5),          # 003
    _RuralSpec("城关镇中心小学", "primary", "town", primary=860, sports=5.2),             # 004
    _RuralSpec("石门镇中心小学", "primary", "town", primary=640, sports=4.6),             # 005
    _RuralSpec("白沙镇中心小学", "primary", "town", primary=720, sports=5.4),             # 006
    _RuralSpec("龙潭镇中心小学", "primary", "town", primary=580, sports=4.4),             # 007
    _RuralSpec("桃源镇中心小学", "primary", "town", primary=510, sports=5.0),             # 008
    _RuralSpec("石门镇黄泥村小学", "primary", "village", primary=72, sports=1.8),         # 009
    _RuralSpec("白沙镇柳树坪小学", "primary", "village", primary=186, sports=2.4),        # 010
    _RuralSpec("龙潭镇高坪村小学", "primary", "village", primary=143, sports=2.1),        # 011
    _RuralSpec("桃源镇新田村小学", "primary", "village", primary=238, sports=2.9),        # 012
    _RuralSpec("城关镇杨家村小学", "primary", "village", primary=121, sports=3.2),        # 013
    _RuralSpec("石门镇观音岩小学", "primary", "village", primary=164, sports=2.6),        # 014
    _RuralSpec("黄泥村鸦鹊岭教学点", "teaching_point", "village", primary=45, sports=1.2),  # 015
    _RuralSpec("柳树坪茶园教学点", "teaching_point", "village", primary=68, sports=1.6),    # 016
    _RuralSpec("高坪村石板溪教学点", "teaching_point", "village", primary=85, sports=1.9),  # 017
    _RuralSpec("青岚县第一中学", "junior", "urban", junior=1940, sports=13.0),            # 018
    _RuralSpec("青岚县实验中学", "junior", "urban", junior=1680, sports=12.5),            # 019
    _RuralSpec("石门镇中学", "junior", "town", junior=720, sports=10.9),                  # 020
    _RuralSpec("白沙镇中学", "junior", "town", junior=640, sports=10.8),                  # 021
    _RuralSpec("龙潭镇中学", "junior", "town", junior=560, sports=11.2),                  # 022
    _RuralSpec("桃源镇九年一贯制学校", "nine_year", "town", primary=420, junior=310,
               sports=7.9, junior_sports=10.9),                                         # 023
    _RuralSpec("城关镇九年一贯制学校", "nine_year", "town", primary=530, junior=380,
               sports=10.8),                                                            # 024
    _RuralSpec("青岚县特殊教育学校", "special", "urban"),                                  # 025
)

#: Per-100-student staff rates (R1, R2, R3) by location and level. Small schools keep a
#: teacher per grade whatever their roll, so village rates are the highest.
RURAL_STAFF = {
    ("urban", "primary"): (5.0, 1.5, 1.15), ("urban", "junior"): (7.2, 1.6, 1.2),
    ("town", "primary"): (5.8, 1.3, 1.1), ("town", "junior"): (7.8, 1.4, 1.2),
    ("village", "primary"): (7.0, 1.4, 1.3),
}
#: Teaching and auxiliary area (m²) and equipment (CNY) per student, by location and level.
RURAL_PER_STUDENT = {
    ("urban", "primary"): (4.9, 2600), ("urban", "junior"): (6.3, 3000),
    ("town", "primary"): (5.6, 2300), ("town", "junior"): (6.8, 2800),
    ("village", "primary"): (6.4, 2150),
}
#: Typical class size ranges; villages keep one class per grade.
RURAL_CLASS_TARGET = {
    ("urban", "primary"): (43.0, 45.0), ("urban", "junior"): (46.0, 49.5),
    ("town", "primary"): (36.0, 42.0), ("town", "junior"): (42.0, 48.0),
    ("village", "primary"): (30.0, 40.0),
}
RURAL_SPECIAL_TEACHERS = 14
RURAL_SPECIAL_STUDENTS = 48
RURAL_SPECIAL_BUDGET_CNY = 312_000.0  # 48 pupils x 6,500 CNY


def rural_county(seed: int = 7) -> Snapshot:
    """A FICTIONAL rural county (青岚县, code 431299) that fails in typical ways.

    No real county has this name or code. 25 schools: 3 urban and 5 town primary schools,
    6 village primary schools, 3 teaching points, 5 junior schools, 2 nine-year schools and
    a special school. Failures planted on purpose:

    - R5.cv primary: sports area per student is 17-19 m² at the county-town schools 001-003
      and 1.8-5.4 m² at the township and village schools, so the primary coefficient of
      variation exceeds 0.50 (0.551 with the default seed). As a consequence R5 is
      below 7.5 at the primary sections of 004-014, 016 and 017.
    - G5: a primary class of 56 at 431299-002 and a junior class of 62 at 431299-018.
    - Q4: 431299-021 spends 3% of its public-funds budget on teacher training.
    - G6: 431299-009, a village primary school of 72 pupils, is funded for 72 x 650 CNY
      (46,800), below the 100-pupil floor of 65,000.
    - R1, R3, R6, R7 below standard at 431299-011 (a village school with older teachers
      without an associate degree, no PE or arts specialist, old equipment and two
      multimedia rooms).
    - Not reported: class sizes and multimedia classrooms at the teaching point 015 (under
      50 pupils, outside the resource area anyway), music and art rooms at the teaching
      points 016 and 017, equipment value at 013, rotation figures at 022.
    - G14: 80.0% of eligible migrant children in public places (standard 85%).

    Everything else meets its standard.
    """
    rng = random.Random(seed)
    schools = [_rural_school(rng, number, spec) for number, spec in enumerate(RURAL_SCHOOLS, 1)]
    by_number = {int(s["id"].rsplit("-", 1)[1]): s for s in schools}
    _plant_oversized_class(by_number[2], "primary", 56)
    _plant_oversized_class(by_number[18], "junior", 62)
    _plant_training_share(by_number[21], 0.03)
    _plant_underfunded_small_school(by_number[9])
    _plant_weak_school(by_number[11])
    _plant_not_reported(by_number[15], "primary", ("class_sizes", "multimedia_classrooms"))
    for number in (16, 17):
        _plant_not_reported(by_number[number], None, ("music_rooms_m2", "art_rooms_m2"))
    _plant_not_reported(by_number[13], None, ("equipment_value_cny",))
    _plant_not_reported(by_number[22], None, ("rotation_eligible", "rotated", "rotated_key"))
    _enrol_special(schools, RURAL_SPECIAL_STUDENTS)
    return Snapshot.model_validate(
        {"as_of": RURAL_AS_OF, "districts": [_rural_district()], "schools": schools}
    )


def _rural_school(rng: random.Random, number: int, spec: _RuralSpec) -> dict:
    school = {
        "id": f"{RURAL_ID}-{number:03d}",
        "name": spec.name,
        "district": RURAL_ID,
        "kind": spec.kind,
        "location": spec.location,
        "public": True,
        "boarding": spec.location != "urban" and spec.junior > 0,
        "sections": {},
    }
    if spec.kind == "special":
        return _rural_special(rng, school)
    teachers = 0
    for level, students in (("primary", spec.primary), ("junior", spec.junior)):
        if students:
            section, section_teachers = _rural_section(rng, spec, level, students)
            school["sections"][level] = section
            teachers += section_teachers
    _rural_shared_figures(rng, spec, school)
    _rural_rooms(rng, school)
    _rural_teachers(rng, school, teachers)
    _rural_funds(rng, spec, school)
    return school


def _rural_section(
    rng: random.Random, spec: _RuralSpec, level: str, students: int
) -> tuple[dict, int]:
    """One section and its full-time teacher count (which the model keeps at school level)."""
    r1, r2, r3 = RURAL_STAFF[(spec.location, level)]
    above = _per_100(rng, students, r1)
    min_classes = 3 if spec.kind == "teaching_point" else (6 if level == "primary" else 3)
    sizes = _class_sizes(
        rng, students, RURAL_CLASS_TARGET[(spec.location, level)], CLASS_CAP[level], min_classes
    )
    factor = (1.12, 1.3) if level == "primary" else (1.2, 1.35)
    section = {
        "students": students,
        "class_sizes": sizes,
        "teachers_above_required_degree": above,
        "key_teachers": _per_100(rng, students, r2),
        "pe_arts_teachers": _per_100(rng, students, r3),
        "multimedia_classrooms": math.ceil(len(sizes) * rng.uniform(*factor)),
    }
    # Teachers below the required degree: a few everywhere, one more in each village school.
    below = round(above * rng.uniform(0.05, 0.15)) + (spec.location == "village")
    return section, above + below


def _rural_shared_figures(rng: random.Random, spec: _RuralSpec, school: dict) -> None:
    if spec.junior_sports is not None:
        for level, section in school["sections"].items():
            sports = spec.sports if level == "primary" else spec.junior_sports
            _rural_set_shared(rng, section, section["students"], spec.location, level, sports)
        return
    # A whole-school figure is split by students; a mixed school's must clear the junior bar.
    level = "junior" if spec.junior else "primary"
    students = spec.primary + spec.junior
    _rural_set_shared(rng, school, students, spec.location, level, spec.sports)


def _rural_set_shared(
    rng: random.Random, target: dict, students: int, location: str, level: str, sports: float
) -> None:
    aux, equipment = RURAL_PER_STUDENT[(location, level)]
    target["teaching_aux_area_m2"] = _round_amount(students * aux * rng.uniform(0.97, 1.05))
    target["sports_area_m2"] = _round_amount(students * sports * rng.uniform(0.98, 1.02))
    target["equipment_value_cny"] = _round_amount(
        students * equipment * rng.uniform(0.97, 1.05), 100
    )


def _rural_rooms(rng: random.Random, school: dict) -> None:
    classes = sum(len(s["class_sizes"]) for s in school["sections"].values())
    school["music_rooms_m2"] = _rooms(rng, classes, smallest=96)
    school["art_rooms_m2"] = _rooms(rng, classes, smallest=90)


def _rural_teachers(rng: random.Random, school: dict, teachers: int) -> None:
    school["full_time_teachers"] = teachers
    school["certified_teachers"] = teachers
    school["training_360h_completed"] = teachers
    # A sectionless (special) school does not report key teachers, so nothing caps its count.
    sections = school["sections"].values()
    key = sum(s["key_teachers"] for s in sections) if sections else None
    _rural_rotation(rng, school, teachers, key)


def _rural_rotation(rng: random.Random, school: dict, teachers: int, key: int | None) -> None:
    """Rounded up so that even a small school meets G10 (≥10% rotated, ≥20% of them key)."""
    eligible = max(1, round(teachers * rng.uniform(0.2, 0.3)))
    rotated = math.ceil(eligible * rng.uniform(0.11, 0.14))
    rotated_key = math.ceil(rotated * 0.25)
    school["rotation_eligible"] = eligible
    school["rotated"] = rotated
    school["rotated_key"] = rotated_key if key is None else min(rotated_key, key)


def _rural_funds(rng: random.Random, spec: _RuralSpec, school: dict) -> None:
    budget = sum(
        n * RURAL_FUNDS_PER_STUDENT[level] * rng.uniform(1.0, 1.12)
        for level, n in (("primary", spec.primary), ("junior", spec.junior))
    )
    small = spec.primary + spec.junior < SMALL_SCHOOL_FLOOR_STUDENTS
    if small and (spec.kind == "teaching_point" or spec.location == "village"):
        floor = SMALL_SCHOOL_FLOOR_STUDENTS * RURAL_FUNDS_PER_STUDENT["primary"]
        budget = max(budget, floor * rng.uniform(1.0, 1.08))
    school["public_funds_budget_cny"] = _round_amount(budget, 100)
    school["training_spend_cny"] = _round_amount(budget * rng.uniform(0.055, 0.08), 10)


def _rural_special(rng: random.Random, school: dict) -> dict:
    """Special school: no sections (outside the resource area), school-level figures only."""
    school["music_rooms_m2"] = [float(round(rng.uniform(97, 110)))]
    school["art_rooms_m2"] = [float(round(rng.uniform(91, 105)))]
    school["public_funds_budget_cny"] = RURAL_SPECIAL_BUDGET_CNY
    school["training_spend_cny"] = _round_amount(
        RURAL_SPECIAL_BUDGET_CNY * rng.uniform(0.055, 0.08), 10
    )
    _rural_teachers(rng, school, RURAL_SPECIAL_TEACHERS)
    return school


def _plant_oversized_class(school: dict, level: str, size: int) -> None:
    """Put `size` pupils in the first class, taking them from the others so totals hold."""
    sizes = school["sections"][level]["class_sizes"]
    surplus = size - sizes[0]
    sizes[0] = size
    for i in range(surplus):
        sizes[1 + i % (len(sizes) - 1)] -= 1


def _plant_training_share(school: dict, share: float) -> None:
    school["training_spend_cny"] = _round_amount(school["public_funds_budget_cny"] * share)


def _plant_underfunded_small_school(school: dict) -> None:
    """Funded per actual pupil instead of as if it had 100 (G6)."""
    students = school["sections"]["primary"]["students"]
    budget = float(students * RURAL_FUNDS_PER_STUDENT["primary"])
    school["public_funds_budget_cny"] = budget
    school["training_spend_cny"] = _round_amount(budget * 0.06, 10)


def _plant_weak_school(school: dict) -> None:
    """A village school below standard on R1 (3.5), R3 (0), R6 (1,400 CNY) and R7 (1.4)."""
    section = school["sections"]["primary"]
    students = section["students"]
    section["teachers_above_required_degree"] = round(students * 3.5 / 100)
    section["pe_arts_teachers"] = 0
    section["multimedia_classrooms"] = 2
    school["equipment_value_cny"] = float(students * 1400)


def _plant_not_reported(school: dict, level: str | None, fields: tuple[str, ...]) -> None:
    target = school["sections"][level] if level else school
    for field in fields:
        del target[field]


def _rural_district() -> dict:
    return {
        "id": RURAL_ID,
        "name": RURAL_NAME,
        "migrant_children_eligible": 2_350,
        "migrant_children_in_public": 1_880,  # 80.0%, below the 85% of G14
        "junior_cohort_entered": 2_980,
        "junior_cohort_retained": 2_891,  # 97.0%
        "disabled_children": 186,
        "disabled_children_enrolled": 179,  # 96.2%
        "teacher_avg_pay_cny": 86_400.0,
        "civil_servant_avg_pay_cny": 84_000.0,
    }


# --------------------------------------------------------------------------------------------
# Registry and output
# --------------------------------------------------------------------------------------------


class Example(NamedTuple):
    generator: Callable[[int], Snapshot]
    seed: int
    description: str


EXAMPLES: dict[str, Example] = {
    "suzhou-sip": Example(
        suzhou_sip,
        2023,
        "苏州工业园区式的区县，43 所学校，资源配置全部达标 / A district shaped like Suzhou "
        "Industrial Park, 43 schools, every section meeting the resource standards",
    ),
    "rural-county": Example(
        rural_county,
        7,
        "虚构的农村县，含典型未达标项 / A fictional rural county with typical, planted failures",
    ),
}


def country(districts: int, seed: int = 1) -> Snapshot:
    """A synthetic country for benchmarks: each district joins an SIP-like urban part and a
    rural part (68 schools, about the national average of 71), each generated with its own seed."""
    all_districts, all_schools = [], []
    for number in range(districts):
        code = f"{800000 + number}"
        urban, rural = suzhou_sip(seed + number), rural_county(seed + number)
        district = urban.districts[0].model_copy(update={"id": code, "name": f"合成区县{number + 1}"})
        all_districts.append(district)
        for index, school in enumerate([*urban.schools, *rural.schools], start=1):
            all_schools.append(school.model_copy(update={"id": f"{code}-{index:03d}", "district": code}))
    return Snapshot(as_of=SIP_AS_OF, districts=all_districts, schools=all_schools)


def to_json(snapshot: Snapshot) -> str:
    """The canonical text of a snapshot: pretty JSON, Chinese as is, unreported fields omitted."""
    data = snapshot.model_dump(mode="json", exclude_none=True)
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def write_example(name: str, path: pathlib.Path, seed: int | None = None) -> Snapshot:
    """Generate the named example (default seed when `seed` is None) and write it to `path`."""
    if name not in EXAMPLES:
        raise KeyError(f"unknown example {name!r}; known: {', '.join(sorted(EXAMPLES))}")
    example = EXAMPLES[name]
    snapshot = example.generator(example.seed if seed is None else seed)
    path.write_text(to_json(snapshot), encoding="utf-8")
    return snapshot


def _regenerate_checked_in() -> None:
    out = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "examples"
    out.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLES:
        write_example(name, out / f"{name}.json")


if __name__ == "__main__":
    _regenerate_checked_in()
