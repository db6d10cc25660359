"""The bilingual text of the generated alerts (alerts/alert_text.py, and the data-missing and
Grafana texts built with it): what a lead reads, exactly, for the cases promtool does not vary.
promtool checks the templates against these strings (tests/promtool/)."""

from __future__ import annotations

import re

import pytest

from alerts import data_missing
from alerts.alert_text import annotations, expected_text
from alerts.grafana_alerting import alert_rules
from alerts.prometheus_rules import alert_name, pack_rules
from alerts.windows import load_windows
from rules.pack import builtin_packs, load_packs

NATIONAL = load_packs(["national-2017"])
#: A junior level's CV of R4 over its limit, as the worker exports it.
PLACE = {"district": "320571", "district_name": "苏州工业园区", "school": "", "school_name": "", "section": "junior",
         "value": 0.52, "limit": 0.45}
R4_CV_ZH = "苏州工业园区（320571）初中生均教学及辅助用房面积校际差异系数为 0.520，超过上限 0.45（规则 R4.cv，严重）。"
R4_CV_EN = ("苏州工业园区 (320571), junior: Inter-school CV of teaching area per student is 0.520, above the maximum "
            "of 0.45 (rule R4.cv, critical).")


def description(rule_id: str, **fields) -> str:
    rule = NATIONAL.by_id(rule_id)
    return expected_text(annotations(rule)["description"], rule, {**PLACE, **fields})


def prometheus_rule(rule_id: str) -> dict:
    groups = pack_rules(NATIONAL, load_windows())["groups"]
    (rule,) = [r for g in groups for r in g["rules"] if r["alert"] == alert_name(rule_id)]
    return rule


def grafana_rule(title_start: str) -> dict:
    groups = alert_rules(NATIONAL, load_windows())["groups"]
    (rule,) = [r for g in groups for r in g["rules"] if r["title"].startswith(title_start)]
    return rule


# --- a CV over part of the schools ---------------------------------------------------------

def test_a_cv_alert_says_how_many_schools_are_missing_from_its_cv():
    assert description("R4.cv", unreported=3, schools=12) == (
        R4_CV_ZH + "12 所初中学校中 3 所未报送 teaching_aux_area_m2，此差异系数仅据其余学校计算。\n"
        + R4_CV_EN + " 3 of 12 junior schools did not report teaching_aux_area_m2; this CV is over the other schools"
        " only.")


@pytest.mark.parametrize("fields", [{}, {"unreported": 0, "schools": 12}], ids=["no count", "a count of 0"])
def test_a_cv_alert_over_every_school_reads_as_before(fields):
    assert description("R4.cv", **fields) == R4_CV_ZH + "\n" + R4_CV_EN


def test_only_a_cv_alert_tells_of_unreported_schools():
    # G5 (class size) is judged school by school: a count of a level's unreported figures is not its.
    text = description("G5", school="320571-001", school_name="星海实验小学", value=60, limit=50, unreported=3,
                       schools=12)
    assert "did not report" not in text and "未报送" not in text
    assert "schools_unreported" not in prometheus_rule("G5")["annotations"]["description"]


def test_the_count_is_read_by_the_text_never_carried_by_the_alerts_labels():
    """A label that changed with the count would make another alert, and page the lead again."""
    rule = prometheus_rule("R4.cv")
    template = rule["annotations"]["description"]
    assert ('junheng_district_indicator_schools_unreported{district=%q,section=%q,indicator=%q}' in template
            and '$labels.district $labels.section "R4"' in template)
    assert "{{ if $unreported }}" in template
    assert "schools_unreported" not in rule["expr"] + str(rule["labels"])


def test_grafanas_cv_alert_says_it_too_from_a_query_with_the_alerts_labels():
    rule = grafana_rule("R4.cv ")
    queries = {q["refId"]: q["model"].get("expr", "") for q in rule["data"]}
    assert queries["D"].startswith("label_replace(max by (district, section) "
                                   '(junheng_district_indicator_schools_unreported{indicator="R4"} > 0')
    assert queries["D"].endswith('"rule", "R4.cv", "", "")')
    description = rule["annotations"]["description"]
    assert "{{ with $values.D }}{{ if .Value }}{{ $values.D.Value }} 所" in description
    assert "did not report teaching_aux_area_m2; this CV is over the other schools only.{{ end }}" in description
    assert "D" not in {q["refId"] for q in grafana_rule("G5 ")["data"]}


# --- brackets ------------------------------------------------------------------------------

def depth(text: str) -> int:
    """How deep brackets, ASCII or full-width, nest in `text`."""
    deepest = level = 0
    for c in text:
        level += (c in "(（") - (c in ")）")
        deepest = max(deepest, level)
    return deepest


def shown(template: str) -> str:
    """A Go template's literal text: every branch of a choice, side by side."""
    return re.sub(r"\{\{.*?\}\}", "", template, flags=re.S)


def test_depth():
    assert depth("R6 (teaching equipment value per student (CNY))") == 2
    assert depth("R6, teaching equipment value per student (CNY)") == 1
    assert depth("规则 G5（班额（小学不超过 45 人））") == 2


def data_missing_texts(pack) -> list[str]:
    """The data-missing alerts' text for every indicator and rule they can name."""
    place = {"district": "320571", "district_name": "苏州工业园区", "section": "primary", "count": 2, "schools": 16}
    texts = []
    for alert in data_missing.data_alerts(pack, load_windows()):
        names = ([{"indicator": i} for i in data_missing.cv_indicators(pack)] if alert.name == data_missing.UNDETERMINED
                 else [{"rule": r.id} for r in data_missing.others(pack)])
        texts += [data_missing.expected_text(text, pack, {**place, **name})
                  for name in names for text in alert.text.values()]
    return texts


@pytest.mark.parametrize("pack_name", builtin_packs())
def test_no_name_within_brackets_brings_brackets_of_its_own(pack_name):
    """An English indicator name ends in its unit, "(CNY)", and some rule titles hold brackets:
    within brackets they read "R6 (teaching equipment value per student (CNY))"."""
    pack = load_packs([pack_name])
    texts = data_missing_texts(pack)
    for rule in pack.rules:
        fields = {**PLACE, "school": "320571-001", "school_name": "星海实验小学", "value": 0.5, "limit": 1.0,
                  "unreported": 3, "schools": 16}
        texts += [expected_text(text, rule, fields) for text in annotations(rule).values()]
    texts += [shown(text) for g in alert_rules(pack, load_windows())["groups"] for r in g["rules"]
              for text in r["annotations"].values()]
    nested = [text for text in texts if depth(text) > 1]
    assert nested == [], nested[:3]


def test_a_rule_not_evaluated_is_named_with_its_title_in_quotes():
    (text,) = [t for t in data_missing_texts(NATIONAL) if t.startswith("苏州工业园区（320571）：") and "G5" in t]
    assert text == ("苏州工业园区（320571）：数据未报齐，规则 G5“班额（小学不超过 45 人，初中不超过 50 人）”无法评估 / "
                    "苏州工业园区 (320571): figures missing, rule G5 “Class size (primary at most 45, junior at most 50)” "
                    "cannot be evaluated")


def test_a_cv_undetermined_names_its_indicator_after_a_comma():
    texts = [t for t in data_missing_texts(NATIONAL) if t.startswith("数据未报齐：") and "equipment_value_cny" in t]
    assert len(texts) == 1 and texts[0].endswith(
        "Figures missing: 2 of 16 primary schools of 苏州工业园区 (320571) did not report equipment_value_cny for R6, "
        "teaching equipment value per student (CNY); its CV cannot be determined. Missing for over 7 days; have these "
        "schools report it (which ones: junheng status --district 320571).")


# --- a limit prorated over the year ---------------------------------------------------------

def test_q4s_alert_says_its_limit_is_the_part_of_the_5_percent_due_by_now():
    # "at least 5% … is 2.00%, below the minimum of 3.33%" read as a contradiction.
    school = {"school": "320571-001", "school_name": "星海实验小学", "section": "", "value": 0.02, "limit": 0.033333}
    assert description("Q4", **school) == (
        "苏州工业园区星海实验小学（320571-001）教师培训经费不低于年度公用经费预算总额的 5%为 2%，"
        "低于按本年时间进度应达到的 3.333%（规则 Q4，严重）。\n"
        "星海实验小学 (320571-001), 苏州工业园区: Teacher-training spending at least 5% of the annual public-funds "
        "budget is 2%, below the 3.333% due by now, by the year's time progress (rule Q4, critical).")
