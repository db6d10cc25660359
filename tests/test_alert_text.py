"""The bilingual text of the generated alerts (alerts/alert_text.py, and the data-missing and
Grafana texts built with it): what a lead reads, exactly, for the cases promtool does not vary.
promtool checks the templates against these strings (tests/promtool/)."""

from __future__ import annotations

import re

import pytest

from alerts import data_missing
from alerts.alert_text import annotations, expected_text
from alerts.grafana_alerting import alert_rules
from alerts.windows import load_windows
from rules.pack import builtin_packs, load_packs

NATIONAL = load_packs(["national-2017"])
#: A junior level's violation, as the worker exports it.
PLACE = {"district": "320571", "district_name": "苏州工业园区", "school": "", "school_name": "", "section": "junior",
         "value": 0.52, "limit": 0.45}


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
