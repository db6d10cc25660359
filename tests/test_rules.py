"""Every rule of the national pack and the SIP overlay, at, just under and just over its line.

Each case is computed by hand in its comment; a school made by `make.school()` passes everything,
so the violations a case expects are exactly the ones it plants.
"""

from __future__ import annotations

import datetime as dt

import pytest

from make import school, snapshot
from rules.evaluate import assess
from rules.pack import load_packs

NATIONAL = load_packs(["national-2017"])
SIP = load_packs(["suzhou-sip-2023"])


def violations(snap, pack=NATIONAL, as_of=None) -> dict[tuple, tuple]:
    report = assess(snap, pack, as_of)
    return {(v.rule, v.school, v.section): (v.value, v.limit) for v in report.violations}


def rule_ids(snap, pack=NATIONAL, as_of=None) -> set[str]:
    return {rule for rule, _, _ in violations(snap, pack, as_of)}


def test_the_passing_school_passes_everything():
    report = assess(snapshot(school(), school("320571-002", "junior"), school("320571-003", "nine_year")), NATIONAL)
    assert report.violations == []
    assert report.not_evaluated == []
    assert all(s.compliant for sch in report.schools for s in sch.sections.values())


# --- R1–R7: section indicators against their standards (1,000 students per section) ----------

SECTION_CASES = [
    # (indicator, level, figure, at standard, just under, just over)
    ("R1", "primary", "teachers_above_required_degree", 42, 41, 43),            # 4.2 per 100
    ("R1", "junior", "teachers_above_required_degree", 53, 52, 54),             # 5.3 per 100
    ("R2", "primary", "key_teachers", 10, 9, 11),                               # 1.0 per 100
    ("R2", "junior", "key_teachers", 10, 9, 11),
    ("R3", "primary", "pe_arts_teachers", 9, 8, 10),                            # 0.9 per 100
    ("R3", "junior", "pe_arts_teachers", 9, 8, 10),
    ("R4", "primary", "teaching_aux_area_m2", 4500.0, 4499.9, 4500.1),          # 4.5 m² each
    ("R4", "junior", "teaching_aux_area_m2", 5800.0, 5799.9, 5800.1),           # 5.8 m² each
    ("R5", "primary", "sports_area_m2", 7500.0, 7499.9, 7500.1),                # 7.5 m² each
    ("R5", "junior", "sports_area_m2", 10200.0, 10199.9, 10200.1),              # 10.2 m² each
    ("R6", "primary", "equipment_value_cny", 2_000_000.0, 1_999_999.0, 2_000_001.0),  # 2000 CNY each
    ("R6", "junior", "equipment_value_cny", 2_500_000.0, 2_499_999.0, 2_500_001.0),   # 2500 CNY each
    ("R7", "primary", "multimedia_classrooms", 23, 22, 24),                     # 2.3 per 100
    ("R7", "junior", "multimedia_classrooms", 24, 23, 25),                      # 2.4 per 100
]


STANDARDS = {"R1": {"primary": 4.2, "junior": 5.3}, "R2": {"primary": 1.0, "junior": 1.0},
             "R3": {"primary": 0.9, "junior": 0.9}, "R4": {"primary": 4.5, "junior": 5.8},
             "R5": {"primary": 7.5, "junior": 10.2}, "R6": {"primary": 2000, "junior": 2500},
             "R7": {"primary": 2.3, "junior": 2.4}}


@pytest.mark.parametrize("indicator,level,figure,at,under,over", SECTION_CASES)
def test_section_indicator_against_its_standard(indicator, level, figure, at, under, over):
    def with_figure(value):
        return snapshot(school(kind=level, sections={level: {figure: value}}))

    assert violations(with_figure(at)) == {}
    assert violations(with_figure(over)) == {}
    found = violations(with_figure(under))
    assert list(found) == [(indicator, "320571-001", level)]
    value, limit = found[(indicator, "320571-001", level)]
    multiplier = 100 if indicator in ("R1", "R2", "R3", "R7") else 1
    assert value == round(under * multiplier / 1000, 4)
    assert limit == STANDARDS[indicator][level]


def test_school_indicator_values_are_exact_ratios():
    report = assess(snapshot(school(sections={"primary": {"teachers_above_required_degree": 61, "students": 1005}})), NATIONAL)
    r1 = report.schools[0].sections["primary"].indicators["R1"]
    assert r1.value == round(61 * 100 / 1005, 4) == 6.0697
    assert r1.standard == 4.2 and r1.ok is True


# --- school compliance: 6 of 7 reach the standard, the remaining one at least 85% -------------

def _sports(area):  # primary R5 standard 7.5 m²/student, 1000 students
    return snapshot(school(sections={"primary": {"sports_area_m2": area}}))


def test_compliance_with_the_seventh_indicator_at_exactly_85_percent():
    # 6375 m² / 1000 students = 6.375 = 0.85 × 7.5: R5 is short but the school complies.
    assert violations(_sports(6375.0)) == {("R5", "320571-001", "primary"): (6.375, 7.5)}


def test_compliance_fails_just_under_85_percent():
    # 6374 m² → 6.374 / 7.5 = 0.84987 < 0.85.
    found = violations(_sports(6374.0))
    assert found[("school_compliance", "320571-001", "primary")] == (round(6.374 / 7.5, 4), 0.85)
    assert set(found) == {("R5", "320571-001", "primary"), ("school_compliance", "320571-001", "primary")}


def test_compliance_fails_with_two_indicators_short_even_if_both_above_85_percent():
    snap = snapshot(school(sections={"primary": {"sports_area_m2": 7400.0, "teachers_above_required_degree": 41}}))
    found = violations(snap)
    # 5 of 7 reach their standard against the 6 required.
    assert found[("school_compliance", "320571-001", "primary")] == (5.0, 6.0)


def test_compliance_is_counted_per_district_level():
    snap = snapshot(school(), school("320571-002", sections={"primary": {"sports_area_m2": 5000.0}}))
    section = assess(snap, NATIONAL).districts[0].sections["primary"]
    assert (section.schools, section.schools_compliant, section.students) == (2, 1, 2000)


def test_a_standard_given_as_one_number_counts_for_compliance(tmp_path):
    # `threshold: 8` on R1 holds both levels to 8 per 100; read only by level, the standard was
    # dropped: 5.0 per 100 (62% of it) was a violation of R1, yet the section was compliant and
    # its R1 showed no standard.
    pack = tmp_path / "ours.yaml"
    pack.write_text("pack: ours\ntitle_zh: 本区\ntitle_en: ours\nextends: national-2017\n"
                    "rules:\n  - id: R1\n    threshold: 8\n", encoding="utf-8")
    report = assess(snapshot(), load_packs([str(pack)]))
    section = report.schools[0].sections["primary"]
    assert (section.indicators["R1"].standard, section.indicators["R1"].ok) == (8.0, False)
    assert section.compliant is False
    assert {v.rule for v in report.violations} == {"R1", "school_compliance"}
    assert report.districts[0].sections["primary"].schools_compliant == 0


def test_compliance_message_names_school_and_the_short_indicator():
    report = assess(_sports(5000.0), NATIONAL)
    v = next(v for v in report.violations if v.rule == "school_compliance")
    assert "测试学校001（320571-001，苏州工业园区）小学部" in v.message_zh and "R5" in v.message_zh and "67%" in v.message_zh
    assert "320571-001" in v.message_en and "R5" in v.message_en


# --- nine-year schools: sections, and whole-school figures split by students -------------------

def test_nine_year_school_figures_split_by_students():
    nine = school(kind="nine_year", teaching_aux_area_m2=10000.0,
                  sections={"primary": {"students": 600, "teaching_aux_area_m2": None},
                            "junior": {"students": 400, "teaching_aux_area_m2": None}})
    report = assess(snapshot(nine), NATIONAL)
    sections = report.schools[0].sections
    assert sections["primary"].indicators["R4"].value == 10.0    # 6000 m² / 600
    assert sections["junior"].indicators["R4"].value == 10.0     # 4000 m² / 400
    assert sections["primary"].split_by_students == ["teaching_aux_area_m2"]


def test_a_section_reporting_its_own_figure_keeps_it_and_the_other_takes_the_rest():
    nine = school(kind="nine_year", sports_area_m2=15000.0,
                  sections={"primary": {"students": 600, "sports_area_m2": None},
                            "junior": {"students": 400, "sports_area_m2": 5000.0}})
    sections = assess(snapshot(nine), NATIONAL).schools[0].sections
    assert sections["junior"].indicators["R5"].value == 12.5     # its own 5000 / 400
    assert sections["primary"].indicators["R5"].value == 16.6667  # (15000 − 5000) / 600
    assert sections["junior"].split_by_students == []


def test_sections_are_assessed_as_schools_of_their_level():
    nine = school(kind="nine_year", sections={"junior": {"teachers_above_required_degree": 52}})
    assert violations(snapshot(nine)) == {("R1", "320571-001", "junior"): (5.2, 5.3)}
    district = assess(snapshot(nine), NATIONAL).districts[0]
    assert district.sections["primary"].schools == 1 and district.sections["junior"].schools == 1


def test_special_schools_and_small_teaching_points_are_left_out_of_resources():
    special = school("320571-002", "special", sections={"primary": {"students": 120, "sports_area_m2": 0.0}},
                     public_funds_budget_cny=120 * 9600.0)
    point_49 = school("320571-003", "teaching_point", location="village",
                      sections={"primary": {"students": 49, "sports_area_m2": 0.0}})
    point_50 = school("320571-004", "teaching_point", location="village",
                      sections={"primary": {"students": 50}}, public_funds_budget_cny=65000.0)
    report = assess(snapshot(school(), special, point_49, point_50), NATIONAL)
    by_id = {s.id: s for s in report.schools}
    assert by_id["320571-002"].excluded == "special_education" and by_id["320571-002"].sections == {}
    assert by_id["320571-003"].excluded == "small_teaching_point"
    assert by_id["320571-004"].excluded is None
    assert report.districts[0].sections["primary"].schools == 2
    assert report.districts[0].sections["primary"].students == 1050


# --- the enrolment-weighted coefficient of variation --------------------------------------------

def test_cv_formula_by_hand():
    # A: 100 students, R1 = 2 (2 teachers); B: 300 students, R1 = 6 (18 teachers).
    # X̄ = (100·2 + 300·6)/400 = 5; S² = (100·9 + 300·1)/400 = 3; CV = √3/5 = 0.34641.
    a = school("320571-001", sections={"primary": {"students": 100, "teachers_above_required_degree": 2}})
    b = school("320571-002", sections={"primary": {"students": 300, "teachers_above_required_degree": 18}})
    r1 = assess(snapshot(a, b), NATIONAL).districts[0].sections["primary"].indicators["R1"]
    assert (r1.value, r1.cv, r1.cv_limit) == (5.0, 0.3464, 0.5)


def _two_sports(x_a, x_b, level="primary", *others):
    # two sections of 1000 students with sports area per student x_a and x_b.
    return snapshot(school("320571-001", kind=level, sections={level: {"sports_area_m2": x_a * 1000}}),
                    school("320571-002", kind=level, sections={level: {"sports_area_m2": x_b * 1000}}), *others)


def test_primary_cv_at_the_limit_passes_and_just_over_fails():
    # X = 10 and 30: X̄ = 20, S = 10, CV = 0.5 exactly.
    assert "R5.cv" not in rule_ids(_two_sports(10, 30))
    # X = 10 and 30.1: X̄ = 20.05, S = 10.05, CV = 0.50125.
    found = violations(_two_sports(10, 30.1))
    assert found[("R5.cv", None, "primary")] == (0.5012, 0.5)
    # just under: X = 10 and 29.9 → CV = 0.49875
    assert "R5.cv" not in rule_ids(_two_sports(10, 29.9))


def test_junior_cv_limit_is_045():
    # X = 11 and 29: X̄ = 20, S = 9, CV = 0.45 exactly; 11 and 29.1: X̄ = 20.05, S = 9.05, CV = 0.45137.
    assert "R5.cv" not in rule_ids(_two_sports(11, 29, "junior"))
    assert violations(_two_sports(11, 29.1, "junior"))[("R5.cv", None, "junior")] == (0.4514, 0.45)


# --- a CV over part of the level's schools is not the district's -----------------------------------

def _without_sports(ident, kind="primary"):
    made = school(ident, kind=kind)
    for section in made["sections"].values():
        del section["sports_area_m2"]
    return made


def test_a_cv_within_its_limit_on_the_schools_that_reported_is_undetermined():
    # X = 10 and 29.9 on two of three schools: X̄ = 19.95, S = 9.95, CV = 0.49875 ≤ 0.50, but the
    # third school's figure could put it either side of the line. A special-education school and
    # a teaching point of 30 pupils are outside the resource area: not counted as unreported.
    point = _without_sports("320571-005", "teaching_point")
    point["sections"]["primary"]["students"] = 30
    snap = _two_sports(10, 29.9, "primary", _without_sports("320571-003"), _without_sports("320571-004", "special"),
                       point)
    report = assess(snap, NATIONAL)
    section = report.districts[0].sections["primary"]
    r5 = section.indicators["R5"]
    assert (r5.value, r5.cv, r5.cv_limit, r5.ok) == (19.95, 0.4987, 0.5, None)
    assert (section.schools, section.schools_compliant) == (3, 2)  # the third's compliance is unknown too
    assert "R5.cv" not in {v.rule for v in report.violations}
    found = [n for n in report.not_evaluated if n.rule == "R5.cv"]
    assert [(n.district, n.school, n.section, n.missing, n.schools_unreported) for n in found] == \
        [("320571", None, "primary", ["sports_area_m2"], 1)]
    assert found[0].message_zh == ("苏州工业园区（320571）小学生均体育运动场馆面积校际差异系数未能判定："
                                   "3 所小学中 1 所未报送 sports_area_m2，据已报送的 2 所计算为 0.499（上限 0.5）")
    assert found[0].message_en == ("苏州工业园区 (320571), primary: Inter-school CV of sports area per student "
                                   "undetermined: 1 of 3 primary schools did not report sports_area_m2; "
                                   "over the 2 that did it is 0.499 (limit 0.5)")
    # The other six indicators were reported by all three: decided as before.
    assert all(section.indicators[i].ok is True for i in ("R1", "R2", "R3", "R4", "R6", "R7"))


def test_a_cv_over_its_limit_on_the_schools_that_reported_is_a_violation_that_says_so():
    # X = 11 and 29.1 on two of three junior schools: X̄ = 20.05, S = 9.05, CV = 0.45137 > 0.45.
    # Whatever the third reports, the lead hears of it; the message says what it is over.
    report = assess(_two_sports(11, 29.1, "junior", _without_sports("320571-003", "junior")), NATIONAL)
    assert report.districts[0].sections["junior"].indicators["R5"].ok is False
    cv = next(v for v in report.violations if v.rule == "R5.cv")
    assert (cv.section, cv.value, cv.limit) == ("junior", 0.4514, 0.45)
    assert cv.message_zh == ("苏州工业园区（320571）初中生均体育运动场馆面积的校际差异系数为 0.451，超过 0.45"
                             "（区县均值 20.05 平方米，2 所学校）"
                             "（3 所初中学校中 1 所未报送 sports_area_m2，仅据其余 2 所计算）")
    assert cv.message_en.endswith("(district mean 20.05 m², 2 schools) (1 of 3 junior schools did not report "
                                  "sports_area_m2; computed over the other 2 only)")
    assert [n for n in report.not_evaluated if n.rule == "R5.cv"] == []


def test_a_cv_no_school_reported_is_listed_as_not_evaluated():
    report = assess(snapshot(_without_sports("320571-001"), _without_sports("320571-002")), NATIONAL)
    r5 = report.districts[0].sections["primary"].indicators["R5"]
    assert (r5.value, r5.cv, r5.ok) == (None, None, None)
    found = [n for n in report.not_evaluated if n.rule == "R5.cv"]
    assert [(n.section, n.schools_unreported) for n in found] == [("primary", 2)]
    assert found[0].message_zh == ("苏州工业园区（320571）小学生均体育运动场馆面积校际差异系数未能判定："
                                   "2 所小学中 2 所未报送 sports_area_m2")


# --- government guarantee --------------------------------------------------------------------

@pytest.mark.parametrize("music,expected", [
    ([96.0, 96.0], {}),                                               # 22 classes need 2 rooms ≥ 96 m²
    ([96.0, 95.9], {("G3.music", "320571-001", None): (1.0, 2.0)}),
    ([120.0], {("G3.music", "320571-001", None): (1.0, 2.0)}),
])
def test_g3_music_rooms_per_12_classes(music, expected):
    assert violations(snapshot(school(music_rooms_m2=music))) == expected


def test_g3_twelve_classes_need_one_room_thirteen_need_two():
    twelve = school(sections={"primary": {"class_sizes": [40] * 12}}, art_rooms_m2=[90.0])
    thirteen = school(sections={"primary": {"class_sizes": [40] * 13}}, art_rooms_m2=[90.0])
    assert violations(snapshot(twelve)) == {}
    assert violations(snapshot(thirteen)) == {("G3.art", "320571-001", None): (1.0, 2.0)}


@pytest.mark.parametrize("kind,students,violated", [
    ("primary", 2000, False), ("primary", 2001, True),
    ("junior", 2000, False), ("junior", 2001, True),
])
def test_g4_school_size(kind, students, violated):
    snap = snapshot(school(kind=kind, sections={kind: {"students": students}}))
    assert ("G4" in rule_ids(snap)) is violated


def test_g4_nine_year_limit_is_2500():
    def nine(primary, junior):
        return snapshot(school(kind="nine_year", sections={"primary": {"students": primary}, "junior": {"students": junior}}))
    assert "G4" not in rule_ids(nine(1500, 1000))
    assert violations(nine(1500, 1001))[("G4", "320571-001", None)] == (2501.0, 2500.0)


@pytest.mark.parametrize("level,largest,violated", [
    ("primary", 45, False), ("primary", 46, True), ("junior", 50, False), ("junior", 51, True),
])
def test_g5_class_size(level, largest, violated):
    snap = snapshot(school(kind=level, sections={level: {"class_sizes": [40] * 21 + [largest]}}))
    found = violations(snap)
    assert (("G5", "320571-001", level) in found) is violated
    if violated:
        assert found[("G5", "320571-001", level)] == (float(largest), 45.0 if level == "primary" else 50.0)


def test_g5_class_size_holds_at_teaching_points_left_out_of_resources():
    # indicators.md §1 (lines 15-17) leaves teaching points under 50 students out of the resource
    # area only ("they appear elsewhere"); G5 (line 57) holds for every primary class. 48 pupils in
    # one multi-grade class: 48 > 45. Its resource indicators stay unassessed (no R rule, not even
    # "not evaluated"), and it stays out of the district's sections.
    point = school(kind="teaching_point", location="village",
                   sections={"primary": {"students": 48, "class_sizes": [48]}},
                   public_funds_budget_cny=65000.0, training_spend_cny=4000.0)
    report = assess(snapshot(school("320571-002"), point), NATIONAL)
    assert violations(snapshot(school("320571-002"), point)) == {("G5", "320571-001", "primary"): (48.0, 45.0)}
    assert [n for n in report.not_evaluated if n.school == "320571-001"] == []
    by_id = {s.id: s for s in report.schools}
    assert by_id["320571-001"].excluded == "small_teaching_point" and by_id["320571-001"].sections == {}
    assert report.districts[0].sections["primary"].schools == 1
    # 45 in the one class is within the limit.
    at_45 = school(kind="teaching_point", location="village", sections={"primary": {"students": 45, "class_sizes": [45]}},
                   public_funds_budget_cny=65000.0, training_spend_cny=4000.0)
    assert violations(snapshot(at_45)) == {}


@pytest.mark.parametrize("students,budget,location,violated", [
    (99, 65000.0, "village", False),   # funded as for 100 students × 650 CNY
    (99, 64999.0, "village", True),
    (100, 1000.0, "village", False),   # 100 students or more: the floor does not apply
    (99, 1000.0, "town", False),       # only village schools and teaching points
])
def test_g6_small_village_school_funded_as_for_100(students, budget, location, violated):
    small = school(location=location, sections={"primary": {"students": students, "class_sizes": [students]}},
                   public_funds_budget_cny=budget, training_spend_cny=budget * 0.06, music_rooms_m2=[100.0], art_rooms_m2=[95.0])
    found = violations(snapshot(small))
    assert (("G6.small_school", "320571-001", None) in found) is violated
    if violated:
        assert found[("G6.small_school", "320571-001", None)] == (budget, 65000.0)


@pytest.mark.parametrize("budget,violated", [(600_000.0, False), (599_999.0, True)])
def test_g6_special_school_6000_per_student(budget, violated):
    special = school(kind="special", sections={"primary": {"students": 100}}, public_funds_budget_cny=budget,
                     training_spend_cny=budget * 0.06)
    assert ("G6.special" in rule_ids(snapshot(special))) is violated


@pytest.mark.parametrize("pay,violated", [(190000.0, False), (189999.0, True), (190001.0, False)])
def test_g7_teacher_pay(pay, violated):
    found = violations(snapshot(teacher_avg_pay_cny=pay))
    assert (("G7", None, None) in found) is violated


@pytest.mark.parametrize("field,rule", [("training_360h_completed", "G8"), ("certified_teachers", "G11")])
def test_g8_g11_are_100_percent(field, rule):
    assert rule not in rule_ids(snapshot(school(**{field: 100})))
    assert violations(snapshot(school(**{field: 99})))[(rule, "320571-001", None)] == (0.99, 1.0)


@pytest.mark.parametrize("rotated,key,expected", [
    (10, 2, set()),                    # 10 of 100 eligible = 10%; 2 of 10 key = 20%
    (9, 2, {"G10.rotation"}),          # 9%
    (10, 1, {"G10.key_share"}),        # 10%
    (11, 3, set()),
])
def test_g10_rotation_summed_over_the_district(rotated, key, expected):
    # two schools with 50 eligible each; the rotations are split between them.
    a = school("320571-001", rotation_eligible=50, rotated=rotated - rotated // 2, rotated_key=key - key // 2)
    b = school("320571-002", rotation_eligible=50, rotated=rotated // 2, rotated_key=key // 2)
    assert rule_ids(snapshot(a, b)) == expected


@pytest.mark.parametrize("rule,field,denominator_field,limit", [
    ("G14", "migrant_children_in_public", "migrant_children_eligible", 0.85),
    ("Q1", "junior_cohort_retained", "junior_cohort_entered", 0.95),
    ("Q2", "disabled_children_enrolled", "disabled_children", 0.95),
])
def test_district_shares(rule, field, denominator_field, limit):
    at = round(limit * 1000)
    assert rule not in rule_ids(snapshot(**{denominator_field: 1000, field: at}))
    assert rule not in rule_ids(snapshot(**{denominator_field: 1000, field: at + 1}))
    assert violations(snapshot(**{denominator_field: 1000, field: at - 1}))[(rule, None, None)] == ((at - 1) / 1000, limit)


#: A day after the snapshot's fiscal year (2026) ended: Q4 is judged on the whole 5%.
YEAR_GONE = dt.date(2027, 1, 1)


@pytest.mark.parametrize("spend,violated", [(50_000.0, False), (49_999.0, True), (50_001.0, False)])
def test_q4_training_budget_is_at_least_5_percent_of_a_year_gone(spend, violated):
    # budget 1,000,000 CNY: 5% is 50,000 CNY.
    found = violations(snapshot(school(training_spend_cny=spend)), as_of=YEAR_GONE)
    assert (("Q4", "320571-001", None) in found) is violated
    if violated:
        # 49,999 / 1,000,000 = 0.049999, shown rounded to four places; the comparison is exact.
        assert found[("Q4", "320571-001", None)] == (0.05, 0.05)


@pytest.mark.parametrize("as_of,spend,expected", [
    # 2026-09-01: eight months gone, 5% × 8/12 = 3.3333% due (applied and shown to six places).
    ("2026-09-01", 33_333.0, None),
    ("2026-09-01", 33_332.0, (0.0333, 0.033333)),
    # January: nothing is due yet, so a school whose new budget just arrived is not short.
    ("2026-01-01", 0.0, None),
    ("2026-01-31", 0.0, None),
    ("2026-02-01", 4_167.0, None),  # 5% × 1/12 = 0.41667%
    ("2026-02-01", 4_166.0, (0.0042, 0.004167)),
    # December: 11/12, 4.5833%.
    ("2026-12-31", 45_833.0, None),
    ("2026-12-31", 45_832.0, (0.0458, 0.045833)),
])
def test_q4_holds_a_school_to_the_share_of_the_year_gone(as_of, spend, expected):
    # Judged on the whole 5% from its first day, every school fell short the day its new budget
    # arrived and stayed short for months: one critical alert per school each January.
    found = violations(snapshot(school(training_spend_cny=spend), as_of=as_of))
    assert found.get(("Q4", "320571-001", None)) == expected


def test_q4_of_a_year_not_begun_has_nothing_due():
    # A snapshot of 2027's money, read on a day of 2026 (`assess --as-of`): none of it is gone.
    assert "Q4" not in rule_ids(snapshot(school(training_spend_cny=0.0), as_of="2027-03-01"),
                                as_of=dt.date(2026, 12, 31))


def test_q4_message_states_amounts_and_share():
    report = assess(snapshot(school(training_spend_cny=30_000.0)), NATIONAL, YEAR_GONE)
    v = report.violations[0]
    assert v.rule == "Q4" and v.value == 0.03 and v.limit == 0.05
    assert v.message_zh == ("测试学校001（320571-001，苏州工业园区）本年度教师培训经费 30000 元，占年度公用经费预算 "
                            "1000000 元的 3.00%，低于按时间进度应达到的 5.00%")


# --- missing data is not zero ----------------------------------------------------------------

def test_unreported_figures_are_not_evaluated_rather_than_violated():
    snap = snapshot(school(sections={"primary": {"equipment_value_cny": None}}, training_spend_cny=None),
                    teacher_avg_pay_cny=None)
    report = assess(snap, NATIONAL)
    assert report.violations == []
    missing = {(n.rule, n.school): n.missing for n in report.not_evaluated}
    assert missing[("R6", "320571-001")] == ["equipment_value_cny"]
    assert missing[("Q4", "320571-001")] == ["training_spend_cny"]
    assert missing[("G7", None)] == ["teacher_avg_pay_cny"]
    assert report.schools[0].sections["primary"].compliant is None  # six reach, the seventh unknown


def test_missing_figure_does_not_save_a_failing_school():
    snap = snapshot(school(sections={"primary": {"equipment_value_cny": None, "sports_area_m2": 1000.0,
                                                 "teachers_above_required_degree": 10}}))
    assert assess(snap, NATIONAL).schools[0].sections["primary"].compliant is False


# --- the SIP overlay: dated local targets and a tightened rule --------------------------------

def _key_share(share_of_100):
    # 100 full-time teachers, key teachers all in the primary section.
    return snapshot(school(sections={"primary": {"key_teachers": share_of_100}}))


@pytest.mark.parametrize("as_of,keys,expected", [
    ("2024-12-31", 10, set()),                         # not yet in force
    ("2025-01-01", 40, set()),                         # 40% from 2025
    ("2025-01-01", 39, {"SIP.key_teachers.2025"}),
    ("2027-12-31", 45, set()),
    ("2028-01-01", 45, {"SIP.key_teachers.2028"}),     # 50% from 2028
    ("2028-01-01", 50, set()),
])
def test_sip_key_teacher_targets_by_date(as_of, keys, expected):
    assert rule_ids(_key_share(keys), SIP, dt.date.fromisoformat(as_of)) == expected


def test_sip_tightens_special_school_funding_without_code():
    special = school(kind="special", sections={"primary": {"students": 100}},
                     public_funds_budget_cny=700_000.0, training_spend_cny=60_000.0)
    assert "G6.special" not in rule_ids(snapshot(special), NATIONAL)
    assert violations(snapshot(special), SIP)[("G6.special", "320571-001", None)] == (7000.0, 9600.0)


def evaluated(snap):
    """An assessor for `snap`, its one district, its schools' results and their district sums."""
    from rules.balance import DistrictBalance
    from rules.evaluate import Assessor

    assessor = Assessor(NATIONAL, snap.as_of)
    district = snap.districts[0]
    results = [assessor.school(s, district) for s in snap.schools]
    balance = DistrictBalance()
    for result in results:
        balance.add(result.contribution)
    return assessor, district, results, balance


def test_a_district_report_part_built_later_shows_the_evaluation_not_later_changes():
    snap = snapshot(school(), school("320571-002", "junior"), school("320571-003", "nine_year"))
    assessor, district, results, balance = evaluated(snap)
    eager = assessor.district(district, balance)
    expected = eager.report  # built at once
    lazy = assessor.district(district, balance)
    balance.remove(results[0].contribution)  # the balance moves on before anyone reads the report
    assert lazy.report == expected
    assert assessor.district(district, balance).report != expected


def test_report_parts_are_built_when_read_and_not_kept_with_the_results():
    # A worker holds every school's result; a report part kept after a /metrics scrape would
    # double its memory.
    import gc

    from rules.balance import DistrictBalance
    from rules.evaluate import Assessor
    from schemas.report import DistrictReport, SchoolReport

    snap = snapshot(school(), school("320571-002", "junior"))
    assessor = Assessor(NATIONAL, snap.as_of)
    results = [assessor.school(s, snap.districts[0]) for s in snap.schools]
    balance = DistrictBalance()
    for result in results:
        balance.add(result.contribution)
    district = assessor.district(snap.districts[0], balance)
    assert results[0].report == results[0].report and district.report.id == snap.districts[0].id
    held = [o for part in (*results, district) for o in gc.get_referents(part.__dict__)]
    assert not [o for o in held if isinstance(o, SchoolReport | DistrictReport)]


def test_district_rules_kept_from_the_last_evaluation_are_evaluated_again_when_their_sums_move():
    # G10 reads the district's rotation sums, not its record: a district evaluated with its last
    # result must still see a school's rotation move the share across 10% (10 of 100 → 9 of 100).
    a = school("320571-001", rotation_eligible=50, rotated=5, rotated_key=1)
    b = school("320571-002", rotation_eligible=50, rotated=5, rotated_key=1)
    snap = snapshot(a, b)
    assessor, district, results, balance = evaluated(snap)
    first = assessor.district(district, balance)
    assert {v.rule for v in first.findings.violations} == set()
    fewer = assessor.school(snap.schools[0].model_copy(update={"rotated": 4}), district)
    balance.replace(results[0].contribution, fewer.contribution)
    again = assessor.district(district, balance, first)
    assert {(v.rule, round(v.value, 4)) for v in again.findings.violations} == {("G10.rotation", 0.09)}
    assert [b.violation() for b in again.findings.violations] == \
        [b.violation() for b in assessor.district(district, balance).findings.violations]
