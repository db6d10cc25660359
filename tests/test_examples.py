"""The example snapshots: deterministic, realistic, passing (SIP) and failing as documented (rural).

The arithmetic here is deliberately independent of `rules/`: a straightforward re-statement of
indicators.md, so that the examples check the rules engine rather than share its mistakes.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections import Counter

import pytest

from junheng.examples import EXAMPLES, rural_county, suzhou_sip, to_json, write_example
from schemas.snapshot import School, Snapshot

REPO = pathlib.Path(__file__).resolve().parent.parent
SEEDS = (None, 1, 2, 3)  # None: the generator's default seed

STANDARDS = {  # indicator: (primary, junior), value must be >=
    "R1": (4.2, 5.3), "R2": (1.0, 1.0), "R3": (0.9, 0.9), "R4": (4.5, 5.8),
    "R5": (7.5, 10.2), "R6": (2000, 2500), "R7": (2.3, 2.4),
}
PER_100 = {"R1": "teachers_above_required_degree", "R2": "key_teachers",
           "R3": "pe_arts_teachers", "R7": "multimedia_classrooms"}
PER_STUDENT = {"R4": "teaching_aux_area_m2", "R5": "sports_area_m2",
               "R6": "equipment_value_cny"}


# ---------------------------------------------------------------------------------------------
# Helpers: a plain reading of indicators.md
# ---------------------------------------------------------------------------------------------


def generate(generator, seed):
    return generator() if seed is None else generator(seed)


def standard(indicator: str, level: str) -> float:
    return STANDARDS[indicator][0 if level == "primary" else 1]


def in_resource_scope(school: School) -> bool:
    """Special schools and teaching points under 50 pupils are outside the resource area."""
    if school.kind.value == "special":
        return False
    return not (school.kind.value == "teaching_point" and school.students < 50)


def indicator_value(school: School, level: str, indicator: str) -> float | None:
    """One section's indicator; whole-school figures are split by students; None if unreported."""
    section = school.sections[level]
    if indicator in PER_100:
        count = getattr(section, PER_100[indicator])
        return None if count is None else 100 * count / section.students
    figure = PER_STUDENT[indicator]
    own = getattr(section, figure)
    if own is not None:
        return own / section.students
    whole = getattr(school, figure)
    return None if whole is None else whole / school.students


def sections_of(snapshot: Snapshot, level: str) -> list[School]:
    return [s for s in snapshot.schools if level in s.sections and in_resource_scope(s)]


def weighted(snapshot: Snapshot, level: str, indicator: str) -> list[tuple[int, float]]:
    """(students, value) of every in-scope section of a level that reports the indicator."""
    pairs = []
    for school in sections_of(snapshot, level):
        value = indicator_value(school, level, indicator)
        if value is not None:
            pairs.append((school.sections[level].students, value))
    return pairs


def weighted_mean(pairs: list[tuple[int, float]]) -> float:
    return sum(p * x for p, x in pairs) / sum(p for p, _ in pairs)


def weighted_cv(pairs: list[tuple[int, float]]) -> float:
    """Two passes: the student-weighted mean, then the weighted spread around it."""
    mean = weighted_mean(pairs)
    variance = sum(p * (x - mean) ** 2 for p, x in pairs) / sum(p for p, _ in pairs)
    return math.sqrt(variance) / mean


def misses(snapshot: Snapshot) -> set[tuple[str, str, str]]:
    """(school id, level, indicator) of every in-scope section below a national standard."""
    found = set()
    for level in ("primary", "junior"):
        for school in sections_of(snapshot, level):
            for indicator in STANDARDS:
                value = indicator_value(school, level, indicator)
                if value is not None and value < standard(indicator, level):
                    found.add((school.id, level, indicator))
    return found


def music_and_art_rooms_suffice(school: School) -> bool:
    """G3: per 12 classes or part, one music room >= 96 m² and one art room >= 90 m²."""
    needed = math.ceil(school.classes / 12)
    music = [a for a in school.music_rooms_m2 if a >= 96]
    art = [a for a in school.art_rooms_m2 if a >= 90]
    return len(music) >= needed and len(art) >= needed


def school(snapshot: Snapshot, number: int) -> School:
    wanted = f"{snapshot.districts[0].id}-{number:03d}"
    return next(s for s in snapshot.schools if s.id == wanted)


# ---------------------------------------------------------------------------------------------
# Determinism, registry, checked-in files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("generator", [suzhou_sip, rural_county])
def test_same_seed_gives_identical_json(generator):
    assert to_json(generator(11)) == to_json(generator(11))
    assert to_json(generator()) == to_json(generator())


@pytest.mark.parametrize("generator", [suzhou_sip, rural_county])
def test_different_seeds_give_different_json(generator):
    assert to_json(generator(11)) != to_json(generator(12))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_checked_in_example_equals_fresh_generation(name):
    example = EXAMPLES[name]
    checked_in = (REPO / "deploy" / "examples" / f"{name}.json").read_text(encoding="utf-8")
    assert checked_in == to_json(example.generator(example.seed)), (
        f"deploy/examples/{name}.json drifted; regenerate with `python -m junheng.examples`"
    )


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_write_example_writes_validating_json_without_nulls(name, tmp_path):
    path = tmp_path / f"{name}.json"
    written = write_example(name, path, seed=5)
    text = path.read_text(encoding="utf-8")
    assert Snapshot.model_validate(json.loads(text)) == written
    assert "null" not in text
    assert "\\u" not in text  # Chinese names are written as they are
    assert write_example(name, tmp_path / "default.json", None) == EXAMPLES[name].generator(
        EXAMPLES[name].seed
    )


def test_write_example_rejects_unknown_names(tmp_path):
    with pytest.raises(KeyError, match="unknown example"):
        write_example("atlantis", tmp_path / "x.json", None)


def test_every_example_has_a_bilingual_description():
    for example in EXAMPLES.values():
        assert " / " in example.description
        assert any("\u4e00" <= ch <= "\u9fff" for ch in example.description)


# ---------------------------------------------------------------------------------------------
# Suzhou Industrial Park: shape and published figures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sip() -> Snapshot:
    return suzhou_sip()


def test_sip_has_43_schools_by_kind_with_ordered_ids(sip):
    kinds = Counter(s.kind.value for s in sip.schools)
    assert kinds == {"primary": 16, "junior": 6, "nine_year": 18, "twelve_year": 2, "special": 1}
    assert [s.id for s in sip.schools] == [f"320571-{i:03d}" for i in range(1, 44)]
    assert sip.districts[0].id == "320571" and sip.districts[0].name == "苏州工业园区"


@pytest.mark.parametrize("seed", SEEDS)
def test_sip_student_and_teacher_totals_are_exact(seed):
    snapshot = generate(suzhou_sip, seed)
    for level, total in (("primary", 98_571), ("junior", 36_622)):
        enrolled = [s.sections[level].students for s in snapshot.schools
                    if level in s.sections and s.kind.value != "special"]
        assert sum(enrolled) == total
    assert sum(s.full_time_teachers for s in snapshot.schools) == 9_431
    special = next(s for s in snapshot.schools if s.kind.value == "special")
    assert special.full_time_teachers == 64


def test_sip_sections_match_school_kinds(sip):
    expected = {"primary": {"primary"}, "junior": {"junior"}, "nine_year": {"primary", "junior"},
                "twelve_year": {"primary", "junior"}, "special": {"primary", "junior"}}
    for s in sip.schools:
        assert {level.value for level in s.sections} == expected[s.kind.value], s.id


def test_sip_special_school_enrols_220_and_is_funded_at_9600_per_pupil(sip):
    special = next(s for s in sip.schools if s.kind.value == "special")
    assert special.students == 220
    assert special.public_funds_budget_cny == 220 * 9_600
    assert special.public_funds_budget_cny >= 220 * 6_000


@pytest.mark.parametrize("seed", SEEDS)
def test_sip_district_r1_r2_match_published_figures(seed):
    snapshot = generate(suzhou_sip, seed)
    published = {("primary", "R1"): 6.07, ("junior", "R1"): 9.21,
                 ("primary", "R2"): 1.99, ("junior", "R2"): 3.2}
    for (level, indicator), figure in published.items():
        value = weighted_mean(weighted(snapshot, level, indicator))
        assert abs(value - figure) <= 0.1, (level, indicator, value)


# ---------------------------------------------------------------------------------------------
# Suzhou Industrial Park: every standard met
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_sip_every_section_meets_every_national_standard(seed):
    snapshot = generate(suzhou_sip, seed)
    assert misses(snapshot) == set()
    for level in ("primary", "junior"):
        for s in sections_of(snapshot, level):
            for indicator in STANDARDS:
                assert indicator_value(s, level, indicator) is not None, (s.id, level, indicator)


@pytest.mark.parametrize("seed", SEEDS)
def test_sip_spread_is_realistic_but_well_within_balance_limits(seed):
    snapshot = generate(suzhou_sip, seed)
    for level in ("primary", "junior"):
        for indicator in STANDARDS:
            cv = weighted_cv(weighted(snapshot, level, indicator))
            assert 0.02 < cv < 0.45, (level, indicator, cv)


def test_sip_exercises_both_whole_school_and_per_section_figures(sip):
    mixed = [s for s in sip.schools if s.kind.value in ("nine_year", "twelve_year")]
    per_section = [
        s for s in mixed if all(sec.sports_area_m2 is not None for sec in s.sections.values())
    ]
    whole_school = [s for s in mixed if s.sports_area_m2 is not None]
    assert 2 <= len(per_section) <= 3
    assert len(whole_school) == len(mixed) - len(per_section)
    for s in per_section:
        assert s.teaching_aux_area_m2 is None and s.equipment_value_cny is None


@pytest.mark.parametrize("seed", SEEDS)
def test_sip_class_sizes_rooms_and_single_level_school_sizes(seed):
    snapshot = generate(suzhou_sip, seed)
    for s in snapshot.schools:
        if s.kind.value == "special":
            continue
        for level, section in s.sections.items():
            assert sum(section.class_sizes) == section.students, s.id
            assert max(section.class_sizes) <= (45 if level.value == "primary" else 50), s.id
            assert 38 <= section.students / len(section.class_sizes) <= 45, s.id
        if s.kind.value != "special":
            assert music_and_art_rooms_suffice(s), s.id
        if s.kind.value in ("primary", "junior"):
            assert s.students <= 2000, s.id  # G4


def test_sip_mixed_schools_exceed_g4_only_because_published_totals_cannot_fit(sip):
    """Documented miss: 22 x 2000 + 20 x 2500 places cannot hold 135,193 pupils."""
    capacity = sum(2500 if s.kind.value in ("nine_year", "twelve_year") else 2000
                   for s in sip.schools if s.kind.value != "special")
    assert capacity < sum(s.students for s in sip.schools)
    mixed = [s for s in sip.schools if s.kind.value in ("nine_year", "twelve_year")]
    assert all(s.students > 2500 for s in mixed)


@pytest.mark.parametrize("seed", SEEDS)
def test_sip_teachers_certified_trained_and_training_budgets(seed):
    snapshot = generate(suzhou_sip, seed)
    for s in snapshot.schools:
        assert s.certified_teachers == s.full_time_teachers, s.id  # G11
        assert s.training_360h_completed == s.full_time_teachers, s.id  # G8
        assert s.training_spend_cny >= 0.05 * s.public_funds_budget_cny, s.id  # Q4
        if s.kind.value != "special":
            assert 1500 <= s.public_funds_budget_cny / s.students <= 1900, s.id


@pytest.mark.parametrize("seed", SEEDS)
def test_sip_rotation_matches_2023_figures(seed):
    snapshot = generate(suzhou_sip, seed)
    eligible = sum(s.rotation_eligible for s in snapshot.schools)
    rotated = sum(s.rotated for s in snapshot.schools)
    key = sum(s.rotated_key for s in snapshot.schools)
    assert (rotated, key) == (393, 197)
    assert abs(100 * rotated / eligible - 16.61) < 0.01
    for s in snapshot.schools:
        assert s.rotated >= 0.10 * s.rotation_eligible, s.id
        assert s.rotated_key >= 0.20 * s.rotated, s.id


def test_sip_key_teacher_share_is_realistic_so_a_40_percent_overlay_bites(sip):
    shares = [sum(sec.key_teachers for sec in s.sections.values()) / s.full_time_teachers
              for s in sip.schools if s.kind.value != "special"]
    assert all(0.15 <= share <= 0.5 for share in shares)
    assert min(shares) < 0.40


def test_sip_district_guarantees(sip):
    d = sip.districts[0]
    assert round(100 * d.migrant_children_in_public / d.migrant_children_eligible, 2) == 97.70
    assert d.junior_cohort_retained / d.junior_cohort_entered >= 0.99
    assert d.disabled_children_enrolled / d.disabled_children >= 0.95
    assert d.teacher_avg_pay_cny >= d.civil_servant_avg_pay_cny


# ---------------------------------------------------------------------------------------------
# Rural county: each planted failure present, nothing else failing
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rural() -> Snapshot:
    return rural_county()


def test_rural_county_shape(rural):
    kinds = Counter(s.kind.value for s in rural.schools)
    assert len(rural.schools) == 25
    assert kinds["teaching_point"] == 3 and kinds["special"] == 1 and kinds["nine_year"] == 2
    points = [s.students for s in rural.schools if s.kind.value == "teaching_point"]
    assert min(points) < 50


@pytest.mark.parametrize("seed", SEEDS)
def test_rural_primary_sports_area_cv_exceeds_limit(seed):
    pairs = weighted(generate(rural_county, seed), "primary", "R5")
    assert weighted_cv(pairs) > 0.50


@pytest.mark.parametrize("seed", SEEDS)
def test_rural_oversized_classes(seed):
    snapshot = generate(rural_county, seed)
    assert max(school(snapshot, 2).sections["primary"].class_sizes) == 56
    assert max(school(snapshot, 18).sections["junior"].class_sizes) == 62
    oversized = {
        (s.id, level.value)
        for s in snapshot.schools
        for level, sec in s.sections.items()
        if sec.class_sizes and max(sec.class_sizes) > (45 if level.value == "primary" else 50)
    }
    assert oversized == {("431299-002", "primary"), ("431299-018", "junior")}
    for s in snapshot.schools:
        for section in s.sections.values():
            if section.class_sizes is not None:
                assert sum(section.class_sizes) == section.students, s.id


@pytest.mark.parametrize("seed", SEEDS)
def test_rural_training_spend_of_3_percent(seed):
    snapshot = generate(rural_county, seed)
    low = {s.id: s.training_spend_cny / s.public_funds_budget_cny for s in snapshot.schools
           if s.training_spend_cny < 0.05 * s.public_funds_budget_cny}
    assert list(low) == ["431299-021"]
    assert abs(low["431299-021"] - 0.03) < 0.0005


@pytest.mark.parametrize("seed", SEEDS)
def test_rural_small_village_school_underfunded(seed):
    snapshot = generate(rural_county, seed)
    floor = 100 * 650
    small = [s for s in snapshot.schools if s.kind.value != "special" and s.students < 100
             and (s.kind.value == "teaching_point" or s.location.value == "village")]
    underfunded = [s.id for s in small if s.public_funds_budget_cny < floor]
    assert underfunded == ["431299-009"]
    village = school(snapshot, 9)
    assert village.kind.value == "primary" and village.location.value == "village"
    assert village.students == 72 and village.public_funds_budget_cny == 72 * 650


@pytest.mark.parametrize("seed", SEEDS)
def test_rural_resource_misses_are_exactly_the_planted_ones(seed):
    snapshot = generate(rural_county, seed)
    low_sports = {f"431299-{n:03d}" for n in (*range(4, 15), 16, 17)}
    expected = {(sid, "primary", "R5") for sid in low_sports}
    expected |= {("431299-011", "primary", ind) for ind in ("R1", "R3", "R6", "R7")}
    assert misses(snapshot) == expected


def test_rural_weak_school_values(rural):
    weak = school(rural, 11)
    values = {ind: indicator_value(weak, "primary", ind) for ind in ("R1", "R3", "R6", "R7")}
    assert values["R1"] < 4.2 and values["R3"] == 0
    assert values["R6"] == 1400 and values["R7"] < 2.3


def test_rural_unreported_fields_stay_absent(rural):
    point = school(rural, 15)
    assert point.students < 50 and not in_resource_scope(point)
    assert point.sections["primary"].class_sizes is None
    assert point.sections["primary"].multimedia_classrooms is None
    for number in (16, 17):
        assert school(rural, number).music_rooms_m2 is None
        assert school(rural, number).art_rooms_m2 is None
    assert school(rural, 13).equipment_value_cny is None
    assert school(rural, 22).rotation_eligible is None and school(rural, 22).rotated is None
    text = to_json(rural)
    assert "null" not in text


def test_rural_district_misses_only_migrant_children(rural):
    d = rural.districts[0]
    assert d.migrant_children_in_public / d.migrant_children_eligible == pytest.approx(0.80)
    assert d.junior_cohort_retained / d.junior_cohort_entered >= 0.95
    assert d.disabled_children_enrolled / d.disabled_children >= 0.95
    assert d.teacher_avg_pay_cny >= d.civil_servant_avg_pay_cny


@pytest.mark.parametrize("seed", SEEDS)
def test_rural_other_guarantees_hold(seed):
    snapshot = generate(rural_county, seed)
    for s in snapshot.schools:
        assert s.certified_teachers == s.full_time_teachers, s.id
        assert s.training_360h_completed == s.full_time_teachers, s.id
        if s.classes is not None and s.music_rooms_m2 is not None:
            assert music_and_art_rooms_suffice(s), s.id
        limit = 2500 if s.kind.value in ("nine_year", "twelve_year") else 2000
        assert s.students <= limit, s.id
        if s.rotation_eligible is not None:
            assert s.rotated >= 0.10 * s.rotation_eligible, s.id
            assert s.rotated_key >= 0.20 * s.rotated, s.id
        for section in s.sections.values():
            if s.kind.value == "special":
                continue
            assert section.teachers_above_required_degree <= s.full_time_teachers, s.id
