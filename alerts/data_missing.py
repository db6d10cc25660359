"""Alerts for figures a district has not reported, told to its lead as 数据未报齐 / figures
missing, never as a violation (未达标): a figure nobody sent proves nothing either way.

Two alerts, generated from the rule pack into the pack's Prometheus rule file (group
`junheng-<pack>-data_missing`), its promtool tests and Grafana's alert rules, routed like the
rule alerts by their `district` label and marked `finding="data_missing"`, which gives them their
own notification group and wording (`alerts/alertmanager_config.py`):

- `JunhengCvUndetermined`, per district, level and indicator with a CV rule in the pack: school
  sections of the level did not report the indicator's figure
  (`junheng_district_indicator_schools_unreported`), so its inter-school CV over all of them
  cannot be determined. It fires whether the CV over those that reported is within its limit
  (the report's `ok` is null: the district is not known to be balanced) or over it (a violation
  all the same, alerted at once by the CV rule's own alert, whose text says meanwhile how many
  schools are missing from it: `alert_text.unreported_note`).
- `JunhengRuleNotEvaluated`, per district and rule (`junheng_rules_not_evaluated`): the places
  where any other rule could not be evaluated for want of data, such as a district's teacher
  pay (G7), a school's music rooms (G3.music) or its budget (Q4). Nothing else tells the lead.

One missing figure shows in both metrics, so `JunhengRuleNotEvaluated` leaves out what
`JunhengCvUndetermined` tells. A school without its equipment value is an unreported R6 figure
of its level (the CV alert), and leaves `R6.cv` (the district's CV), `R6` (the school section's
own indicator) and, where it decides it, `school_compliance` not evaluated: three findings of
the same gap. So the pack's CV
rules, the section rules of the indicators those judge, and school compliance when each of its
indicators is one of those (it is judged on them alone) never raise `JunhengRuleNotEvaluated`:
each gap is told once, by the alert that says most about it (how many schools of which level
lack which figure). Both wait `data_missing` in `alerts/windows.yaml` (why a week is there) and
hold through a gap in which no worker exports the district, as rule alerts do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

from alerts.alert_text import (DISTRICT, DISTRICT_NAME, LEVEL_EN_SLOT, LEVEL_SCHOOLS_EN, LEVEL_SCHOOLS_ZH,
                               LEVEL_ZH_SLOT, SCHOOLS, UNREPORTED_METRIC, Slot, Text, alert_runbook_url, cv_indicator,
                               go_choice, go_number, names_prelude, schools_prelude)
from alerts.held import held_through_gaps
from alerts.windows import Windows, seconds
from rules.indicators import BY_ID, IDS
from rules.messages import LEVEL_EN, LEVEL_ZH, SCHOOLS_EN, SCHOOLS_ZH
from rules.pack import Rule, RulePack
from rules.quantities import Scope

UNDETERMINED = "JunhengCvUndetermined"
NOT_EVALUATED = "JunhengRuleNotEvaluated"
#: The label that tells these alerts from violations, in routing and in the lead's templates.
FINDING = {"finding": "data_missing"}
#: A gap is something to chase, not an emergency: a warning is repeated daily, a critical alert
#: every four hours (`notify.repeat_interval` in alerts/windows.yaml).
SEVERITY = "warning"
UNREPORTED = UNREPORTED_METRIC
NOT_EVALUATED_METRIC = "junheng_rules_not_evaluated"

COUNT, INDICATOR = Slot("count"), Slot("indicator")
INDICATOR_ZH, INDICATOR_EN, FIGURE = Slot("indicator_zh"), Slot("indicator_en"), Slot("figure")
RULE, RULE_TITLE_ZH, RULE_TITLE_EN = Slot("rule"), Slot("rule_title_zh"), Slot("rule_title_en")


# --- what the pack says is told where --------------------------------------------------------

def cv_indicators(pack: RulePack) -> tuple[str, ...]:
    """The indicators the pack judges the inter-school CV of, in indicator order."""
    judged = {cv_indicator(r) for r in pack.rules}
    return tuple(i for i in IDS if i in judged)


def told_by_cv(pack: RulePack) -> frozenset[str]:
    """Ids of the rules whose findings of missing data `JunhengCvUndetermined` already tells (the
    module docstring says why): the CV rules, the section rules of the indicators they judge,
    and school compliance when every indicator it is judged on is one of those."""
    judged = set(cv_indicators(pack))
    section_indicators = {r.quantity for r in pack.rules if r.scope is Scope.section and r.quantity in IDS}
    told = {r.id for r in pack.rules
            if cv_indicator(r) in judged
            or (r.scope is Scope.section and r.quantity in judged)
            or (r.quantity == "compliance" and section_indicators <= judged)}
    return frozenset(told)


def others(pack: RulePack) -> tuple[Rule, ...]:
    """The rules `JunhengRuleNotEvaluated` names, in pack order."""
    told = told_by_cv(pack)
    return tuple(r for r in pack.rules if r.id not in told)


# --- expressions ----------------------------------------------------------------------------

def _held(by: str, selector: str, hold: str) -> str:
    """The count of `selector` where above zero; and, for at most `hold`, the last such count
    where no worker exports the district at all (a restart, partitions moving, failed scrapes),
    so that such a gap neither resolves the alert nor restarts its week-long wait."""
    return held_through_gaps(f"  max by ({by}) ({selector} > 0)",
                             f"  max by ({by}) (last_over_time({selector}[{hold}]) > 0)")


def _regex(ids: Iterable[str]) -> str:
    """A PromQL string holding a regular expression that matches exactly `ids`."""
    return json.dumps("|".join(i.replace(".", "\\.") for i in sorted(ids)))


def undetermined_expr(pack: RulePack, hold: str) -> str:
    """Schools of a level that did not report an indicator's figure, for the judged indicators."""
    return _held("district,section,indicator", f"{UNREPORTED}{{indicator=~{_regex(cv_indicators(pack))}}}", hold)


def not_evaluated_expr(pack: RulePack, hold: str) -> str:
    """Places of a district where a rule could not be evaluated, for the rules not told by the CV alert."""
    told = told_by_cv(pack)
    selector = f"{NOT_EVALUATED_METRIC}{{rule!~{_regex(told)}}}" if told else NOT_EVALUATED_METRIC
    return _held("district,rule", selector, hold)


# --- words ----------------------------------------------------------------------------------

#: Units a window is spoken in, largest first: seconds, Chinese, English.
UNITS = ((86400, "天", "day"), (3600, "小时", "hour"), (60, "分钟", "minute"), (1, "秒", "second"))


def spoken(duration: str) -> tuple[str, str]:
    """A window as a lead reads it, in Chinese and English: `7d` is 7 天 and 7 days, in the
    largest unit it is a whole number of."""
    amount = seconds(duration)
    unit, zh, en = next(u for u in UNITS if amount % u[0] == 0 and (amount or u[0] == 1))
    count = amount // unit
    return f"{count} {zh}", f"{count} {en}{'' if count == 1 else 's'}"


def undetermined_text(window: str) -> dict[str, Text]:
    """The summary and description of `JunhengCvUndetermined`, naming the district, the level,
    the indicator, its figure and how many of the level's schools did not report it."""
    zh_window, en_window = spoken(window)
    return {
        "summary": (DISTRICT_NAME, "（", DISTRICT, "）", LEVEL_ZH_SLOT, "：数据未报齐，", INDICATOR, " ", INDICATOR_ZH,
                    "的校际差异系数无法判定 / ",
                    DISTRICT_NAME, " (", DISTRICT, "), ", LEVEL_EN_SLOT, ": figures missing, the inter-school CV of ",
                    INDICATOR, ", ", INDICATOR_EN, ", cannot be determined"),
        "description": (
            "数据未报齐：", DISTRICT_NAME, "（", DISTRICT, "）", SCHOOLS, " 所", LEVEL_SCHOOLS_ZH, "中 ", COUNT, " 所未报送 ",
            INDICATOR, "（", INDICATOR_ZH, "）所需的 ", FIGURE, "，其校际差异系数无法判定，已超过 ", zh_window,
            "。请督促这些学校报送；是哪些学校：junheng status --district ", DISTRICT, "。\n",
            "Figures missing: ", COUNT, " of ", SCHOOLS, " ", LEVEL_SCHOOLS_EN, " of ", DISTRICT_NAME, " (", DISTRICT,
            ") did not report ", FIGURE, " for ", INDICATOR, ", ", INDICATOR_EN, "; its CV cannot be determined. "
            "Missing for over ", en_window, "; have these schools report it (which ones: junheng status --district ",
            DISTRICT, ")."),
    }


def not_evaluated_text(window: str) -> dict[str, Text]:
    """The summary and description of `JunhengRuleNotEvaluated`, naming the district, the rule
    and how many of its places lack the data."""
    zh_window, en_window = spoken(window)
    return {
        "summary": (DISTRICT_NAME, "（", DISTRICT, "）：数据未报齐，规则 ", RULE, RULE_TITLE_ZH, "无法评估 / ",
                    DISTRICT_NAME, " (", DISTRICT, "): figures missing, rule ", RULE, RULE_TITLE_EN,
                    " cannot be evaluated"),
        "description": (
            "数据未报齐：", DISTRICT_NAME, "（", DISTRICT, "）有 ", COUNT, " 处（学校、学部或区县本身）缺少规则 ", RULE,
            " 所需的数据，该规则在这些地方无法评估，已超过 ", zh_window,
            "。缺少哪些数据、在哪里：junheng status --district ", DISTRICT, "。\n",
            "Figures missing in ", DISTRICT_NAME, " (", DISTRICT, "): rule ", RULE, " cannot be evaluated for want of "
            "data, for over ", en_window, ". Places lacking the data (schools, sections or the district itself): ",
            COUNT, "; which, and what they lack: junheng status --district ", DISTRICT, "."),
    }


def _indicator_names(pack: RulePack) -> dict[str, dict[str, str]]:
    judged = cv_indicators(pack)
    return {"indicator_zh": {i: BY_ID[i].name_zh for i in judged},
            "indicator_en": {i: BY_ID[i].name_en for i in judged},
            "figure": {i: BY_ID[i].figure for i in judged}}


def _rule_titles(pack: RulePack) -> dict[str, dict[str, str]]:
    """A rule's title as it follows the rule's id, in quotes: titles hold brackets of their own
    ("Class size (primary at most 45, junior at most 50)"), and within brackets they nested."""
    rules = others(pack)
    return {"rule_title_zh": {r.id: f"“{r.title_zh}”" for r in rules},
            "rule_title_en": {r.id: f" “{r.title_en}”" for r in rules}}


# --- as Prometheus templates ----------------------------------------------------------------

def prometheus_template(text: Text, pack: RulePack, hold: str) -> str:
    """The text as a Prometheus annotation template: names and the level's count of schools as
    last seen within `hold` (so they show while the alert holds through an export gap), the
    count the alert's value."""
    names = {**_indicator_names(pack), **_rule_titles(pack)}
    slots = {
        "district": "{{ $labels.district }}",
        "district_name": "{{ $district_name }}",
        "level_zh": go_choice("section", LEVEL_ZH),
        "level_en": go_choice("section", LEVEL_EN),
        "level_schools_zh": go_choice("section", SCHOOLS_ZH),
        "level_schools_en": go_choice("section", SCHOOLS_EN),
        "indicator": "{{ $labels.indicator }}",
        "indicator_zh": go_choice("indicator", names["indicator_zh"]),
        "indicator_en": go_choice("indicator", names["indicator_en"]),
        "figure": go_choice("indicator", names["figure"]),
        "rule": "{{ $labels.rule }}",
        "rule_title_zh": go_choice("rule", names["rule_title_zh"], otherwise=""),
        "rule_title_en": go_choice("rule", names["rule_title_en"], otherwise=""),
        "count": "{{ $value }}",
        # The level's school sections as last seen; "?" where none was.
        "schools": "{{ $schools }}",
    }
    used = {piece.name for piece in text if isinstance(piece, Slot)}
    prelude = names_prelude(used, hold)
    if "schools" in used:
        prelude += schools_prelude(hold)
    return prelude + "".join(slots[p.name] if isinstance(p, Slot) else p for p in text)


def expected_text(text: Text, pack: RulePack, fields: dict[str, str | float]) -> str:
    """The text the template yields for known series: `fields` gives the labels, the names, the
    count (the alert's value) and the level's schools, as numbers or text."""
    names = {**_indicator_names(pack), **_rule_titles(pack)}
    level, indicator, rule = (str(fields.get(k, "")) for k in ("section", "indicator", "rule"))
    shown = {
        **{k: v for k, v in fields.items() if isinstance(v, str)},
        "level_zh": LEVEL_ZH.get(level, level), "level_en": LEVEL_EN.get(level, level),
        "level_schools_zh": SCHOOLS_ZH.get(level, level), "level_schools_en": SCHOOLS_EN.get(level, level),
        "indicator_zh": names["indicator_zh"].get(indicator, indicator),
        "indicator_en": names["indicator_en"].get(indicator, indicator),
        "figure": names["figure"].get(indicator, indicator),
        "rule_title_zh": names["rule_title_zh"].get(rule, ""), "rule_title_en": names["rule_title_en"].get(rule, ""),
        **{k: go_number(float(fields[k]), "") for k in ("count", "schools") if k in fields},
    }
    return "".join(shown[p.name] if isinstance(p, Slot) else p for p in text)


# --- the alerts -----------------------------------------------------------------------------

@dataclass(frozen=True)
class DataAlert:
    """One of the two alerts, as every generator needs it."""

    name: str
    metric: str  # what it counts
    scope: str
    expr: str
    wait: str
    text: dict[str, Text]
    title: str  # Grafana's rule title


def data_alerts(pack: RulePack, windows: Windows) -> list[DataAlert]:
    """The pack's data-missing alerts: none for CVs where it judges none, and none for rules
    not evaluated where the CV alert tells every rule's gaps."""
    hold, wait = windows.hold_unexported, windows.data_missing.for_
    alerts = []
    if cv_indicators(pack):
        alerts.append(DataAlert(
            UNDETERMINED, UNREPORTED, Scope.district_section.value, undetermined_expr(pack, hold), wait,
            undetermined_text(wait),
            "数据未报齐：校际差异系数无法判定 / Figures missing: inter-school CV cannot be determined"))
    if others(pack):
        alerts.append(DataAlert(
            NOT_EVALUATED, NOT_EVALUATED_METRIC, Scope.district.value, not_evaluated_expr(pack, hold), wait,
            not_evaluated_text(wait), "数据未报齐：规则无法评估 / Figures missing: rule cannot be evaluated"))
    return alerts


def labels(alert: DataAlert) -> dict[str, str]:
    """The alert's labels: its severity and scope, and the finding that routes it apart from violations."""
    return {"severity": SEVERITY, "scope": alert.scope, **FINDING}


def group_name(pack: RulePack) -> str:
    """The title of the pack's data-missing rule group in Grafana; Prometheus's group is it after `junheng-`."""
    return f"{pack.config_name}-data_missing"


def prometheus_group(pack: RulePack, windows: Windows) -> dict[str, Any] | None:
    """The alerting rule group of the pack's data-missing alerts (None when it has none)."""
    alerts = data_alerts(pack, windows)
    if not alerts:
        return None
    return {"name": f"junheng-{group_name(pack)}", "rules": [
        {"alert": a.name, "expr": a.expr, "for": a.wait, "labels": labels(a),
         "annotations": {**{k: prometheus_template(t, pack, windows.hold_unexported) for k, t in a.text.items()},
                         "runbook_url": alert_runbook_url(a.name)}}
        for a in alerts]}


def grafana_uid(pack: RulePack, alert: DataAlert) -> str:
    """A fixed uid per pack and alert; `//` cannot occur in a pack's rule ids, so no rule's uid
    (`grafana_alerting.rule_uid`) can be the same."""
    return "junheng-" + hashlib.sha1(f"{pack.config_name}//{alert.name}".encode()).hexdigest()[:12]


def grafana_text(alert: DataAlert, pack: RulePack) -> dict[str, str]:
    """The annotations of the alert's Grafana rule. Grafana's templates cannot query Prometheus,
    so names and the level's count of schools are left out: the district by its id, as in the
    rule alerts' Grafana text, and the count is query A's value."""
    names = {**_indicator_names(pack), **_rule_titles(pack)}
    zh_window, en_window = spoken(alert.wait)
    district, count = "{{ $labels.district }}", "{{ $values.A.Value }}"
    level_zh, level_en = go_choice("section", LEVEL_ZH), go_choice("section", LEVEL_EN)
    if alert.name == UNDETERMINED:
        indicator = "{{ $labels.indicator }}"
        ind_zh, ind_en = go_choice("indicator", names["indicator_zh"]), go_choice("indicator", names["indicator_en"])
        figure = go_choice("indicator", names["figure"])
        return {
            "summary": f"区县 {district} {level_zh}：数据未报齐，{indicator} {ind_zh}的校际差异系数无法判定 / "
                       f"district {district}, {level_en}: figures missing, the inter-school CV of {indicator}, "
                       f"{ind_en}, cannot be determined",
            "description": f"数据未报齐：{count} 所{go_choice('section', SCHOOLS_ZH)}未报送 {indicator}（{ind_zh}）所需的 "
                           f"{figure}，其校际差异系数无法判定，已超过 {zh_window}。"
                           f"Figures missing: {count} {go_choice('section', SCHOOLS_EN)} did not report {figure} for "
                           f"{indicator}, {ind_en}; its CV cannot be determined. Missing for over {en_window}.",
            "runbook_url": alert_runbook_url(alert.name),
        }
    rule = "{{ $labels.rule }}"
    title_zh = go_choice("rule", names["rule_title_zh"], otherwise="")
    title_en = go_choice("rule", names["rule_title_en"], otherwise="")
    return {
        "summary": f"区县 {district}：数据未报齐，规则 {rule}{title_zh}无法评估 / "
                   f"district {district}: figures missing, rule {rule}{title_en} cannot be evaluated",
        "description": f"数据未报齐：{count} 处缺少规则 {rule} 所需的数据，该规则在这些地方无法评估，已超过 {zh_window}。"
                       f"Figures missing: rule {rule} cannot be evaluated for want of data, for over {en_window}. "
                       f"Places lacking the data: {count}.",
        "runbook_url": alert_runbook_url(alert.name),
    }
