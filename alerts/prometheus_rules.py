"""Prometheus rule files generated from a rule pack, and their promtool unit tests.

One alerting rule per pack rule, grouped by scope; a pack-independent file holds the recording
rules dashboards use and the alerts about the pipeline itself. Each alert fires on the observed
value, so `$value` is what the school or district measures, not the 1 of the violation series.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from alerts import data_missing
from alerts.alert_text import (UNREPORTED_METRIC, alert_runbook_url, annotations, cv_indicator, expected_text,
                               prometheus_template)
from alerts.held import held_through_gaps
from alerts.windows import Windows, seconds
from rules.pack import Rule, RulePack
from rules.quantities import Scope

PLACE = "rule,district,school,section"
WORKER_JOB = "junheng"
SCOPE_ORDER = (Scope.section, Scope.school, Scope.district_section, Scope.district)


def alert_name(rule_id: str) -> str:
    """A rule's alert name; alert names must be metric-name-like, so other characters become `_`."""
    return "JunhengRule_" + re.sub(r"[^A-Za-z0-9_]", "_", rule_id)


def alert_expr(rule_id: str, hold: str) -> str:
    """The observed value wherever the rule is violated, stripped of the worker's instance, so an
    alert keeps its identity when its district moves to another worker; and, for at most `hold`,
    the last such value where no worker exports the district at all (a restart, partitions moving,
    failed scrapes), so that a gap neither resolves the alert nor restarts its `for:` wait."""
    value, violation = f'junheng_rule_value{{rule="{rule_id}"}}', f'junheng_rule_violation{{rule="{rule_id}"}}'
    now = _violated(value, violation)
    last = _violated(f"last_over_time({value}[{hold}])", f"last_over_time({violation}[{hold}])")
    return held_through_gaps(now, last)


def _violated(value: str, violation: str) -> str:
    return f"  max by ({PLACE}) ({value})\n    and on ({PLACE}) ({violation} == 1)"


def pack_rules(pack: RulePack, windows: Windows) -> dict[str, Any]:
    """The alerting rules of a pack, one group per scope, and its data-missing alerts
    (`alerts/data_missing.py`) in a group of their own."""
    groups = []
    for scope in SCOPE_ORDER:
        rules = [r for r in pack.rules if r.scope is scope]
        if rules:
            groups.append({"name": f"junheng-{pack.config_name}-{scope.value}",
                           "rules": [_alerting_rule(r, windows) for r in rules]})
    missing = data_missing.prometheus_group(pack, windows)
    if missing:
        groups.append(missing)
    return {"groups": groups}


def _alerting_rule(rule: Rule, windows: Windows) -> dict[str, Any]:
    return {
        "alert": alert_name(rule.id),
        "expr": alert_expr(rule.id, windows.hold_unexported),
        "for": windows.wait(rule.severity.value),
        "labels": {"severity": rule.severity.value, "scope": rule.scope.value},
        "annotations": {key: prometheus_template(text, rule, windows.hold_unexported) for key, text in annotations(rule).items()},
    }


# --- pack-independent rules ---------------------------------------------------------------

#: Recording rules (name → expression): district roll-ups for dashboards, without the worker labels.
RECORDING = {
    "junheng:rule_violations:count_by_district_severity":
        f"count by (district, severity) (max by ({PLACE}, severity) (junheng_rule_violation == 1))",
    "junheng:rule_violations:count_by_rule":
        f"count by (rule, severity) (max by ({PLACE}, severity) (junheng_rule_violation == 1))",
    "junheng:district_schools_not_compliant":
        "max by (district, section) (junheng_district_schools)"
        " - on (district, section) max by (district, section) (junheng_district_schools_compliant)",
    "junheng:district_compliance_ratio":
        "max by (district, section) (junheng_district_schools_compliant)"
        " / on (district, section) (max by (district, section) (junheng_district_schools) > 0)",
    "junheng:district_indicator_cv_headroom":
        "max by (district, section, indicator) (junheng_district_indicator_cv_limit)"
        " - on (district, section, indicator) max by (district, section, indicator) (junheng_district_indicator_cv)",
    "junheng:events:rate5m": "sum by (type, outcome) (rate(junheng_events_total[5m]))",
}


def pipeline_alerts(windows: Windows) -> list[dict[str, Any]]:
    """Alerts about the workers, for operators; they carry no district, so no lead gets them."""
    p = windows.pipeline

    def alert(name, expr, wait, severity, zh, en):
        return {"alert": name, "expr": expr, "for": wait.for_,
                "labels": {"severity": severity, "scope": "pipeline"},
                "annotations": {"summary": f"{zh} / {en}", "runbook_url": alert_runbook_url(name)}}

    stuck, lag, dead, stalls = p["stuck"], p["consumer_lag"], p["dead_letters"], p["broker_stalls"]
    behind = p["metrics_behind"]
    return [
        alert("JunhengWorkerDown", f'up{{job="{WORKER_JOB}"}} == 0', p["worker_down"], "critical",
              "junheng 工作进程 {{ $labels.instance }} 无法抓取指标，其负责区县的违规告警暂停",
              "junheng worker {{ $labels.instance }} cannot be scraped; alerts of its districts are paused"),
        # Progress is events handled, whatever their dates (windows.yaml says why not the event
        # lag); a worker with no junheng_events_total yet has handled nothing, and `unless` keeps it.
        alert("JunhengWorkerStuck",
              "sum by (instance) (junheng_consumer_lag) > 0\n"
              f"  unless on (instance) sum by (instance) (increase(junheng_events_total[{stuck.get('window')}])) > 0",
              stuck, "critical",
              f"junheng 工作进程 {{{{ $labels.instance }}}} 有 {{{{ $value }}}} 条消息待处理，但 {stuck.get('window')} 内未处理任何事件",
              f"junheng worker {{{{ $labels.instance }}}} has {{{{ $value }}}} messages waiting but handled no event in the last {stuck.get('window')}"),
        alert("JunhengConsumerLagHigh",
              f"sum by (instance) (junheng_consumer_lag) > {lag.get('messages')}", lag, "warning",
              "junheng 工作进程 {{ $labels.instance }} 落后 {{ $value }} 条消息",
              "junheng worker {{ $labels.instance }} is {{ $value }} messages behind"),
        alert("JunhengDeadLetters",
              f"sum by (instance) (increase(junheng_dead_letter_total[{dead.get('window')}])) > 0", dead,
              "warning",
              f"junheng 工作进程 {{{{ $labels.instance }}}} 在 {dead.get('window')} 内有事件进入死信主题",
              f"junheng worker {{{{ $labels.instance }}}} dead-lettered events in the last {dead.get('window')}"),
        alert("JunhengBrokerStalls",
              f"sum by (instance) (increase(junheng_broker_stalls_total[{stalls.get('window')}])) > 0", stalls,
              "warning",
              f"junheng 工作进程 {{{{ $labels.instance }}}} 在 {stalls.get('window')} 内遇到 Kafka 无响应",
              f"junheng worker {{{{ $labels.instance }}}} saw the broker stall in the last {stalls.get('window')}"),
        alert("JunhengMetricsBehind", "max by (instance) (junheng_metrics_districts_behind) > 0", behind, "warning",
              "junheng 工作进程 {{ $labels.instance }} 的指标中有 {{ $value }} 个区县落后于其状态",
              "junheng worker {{ $labels.instance }} exports {{ $value }} districts with lines older than their state"),
    ]


def common_rules(windows: Windows) -> dict[str, Any]:
    """Recording rules and pipeline alerts, shared by every pack."""
    return {"groups": [
        {"name": "junheng-rollups", "rules": [{"record": k, "expr": v} for k, v in RECORDING.items()]},
        {"name": "junheng-pipeline", "rules": pipeline_alerts(windows)},
    ]}


# --- promtool unit tests ------------------------------------------------------------------

#: The places the tests use: the violation under test and another district's brief violation.
HERE = {"district": "320571", "district_name": "苏州工业园区", "school": "320571-001", "school_name": "星海实验小学"}
THERE = {"district": "320508", "district_name": "姑苏区", "school": "320508-001", "school_name": "平江实验学校"}


def pack_tests(pack: RulePack, windows: Windows, rule_file: str) -> dict[str, Any]:
    """A promtool test file with, for every alert of the pack, a case where it fires (a violation
    held longer than its `for:`), holds through a gap in which no worker exports its district,
    does not fire (another district's violation that clears sooner) and resolves (the
    violation's series end while the district is exported); a case where a district no worker
    exports for longer than the hold resolves; and, for a CV rule, a case where some schools of
    the level have not reported the indicator's figure."""
    rules = [rule for scope in SCOPE_ORDER for rule in pack.rules if rule.scope is scope]
    tests = []
    for rule in rules:
        tests += [_rule_test(rule, windows), _gone_test(rule, windows)]
        if cv_indicator(rule):
            tests.append(_unreported_test(rule, windows))
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}


def _test_place(rule: Rule, where: dict[str, str]) -> tuple[dict[str, str], float, float]:
    """Labels of a violation of `rule` at `where`, with a value that breaks a limit of the rule."""
    key = next(iter(rule.threshold)) if isinstance(rule.threshold, dict) else None
    limit = rule.limit_for(key) if rule.threshold is not None else 2.0
    value = limit / 2 if rule.op in (">=", ">") else (limit + 1 if limit >= 1 else limit * 1.5)
    school = where["school"] if rule.scope in (Scope.section, Scope.school) else ""
    section = key if rule.scope in (Scope.section, Scope.district_section) else ""
    if section is None:  # a rule with one threshold for every level: any level will do
        section = "primary"
    return {"rule": rule.id, "district": where["district"], "school": school, "section": section}, value, limit


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    shown = ",".join(f'{k}="{v}"' for k, v in labels.items() if v)
    return {"series": f"{name}{{{shown}}}", "values": values}


def _exported(rule: Rule, where: dict[str, str], place: dict[str, str], value: float, limit: float,
              violation: str, names: str) -> list[dict[str, str]]:
    """A worker's series of a violation at `place` (values in promtool's notation, `violation`
    for the violation's three, `names` for the district's and school's names)."""
    worker = {"instance": "worker-1:8000", "job": WORKER_JOB}
    series = [
        _series("junheng_rule_value", {**place, **worker}, violation.format(value)),
        _series("junheng_rule_violation", {**place, "severity": rule.severity.value, **worker}, violation.format(1)),
        _series("junheng_rule_limit", {**place, **worker}, violation.format(limit)),
        _series("junheng_district_info", {"district": where["district"], "name": where["district_name"], **worker},
                names),
    ]
    if place["school"]:
        series.append(_series("junheng_school_info",
                              {"district": where["district"], "school": where["school"],
                               "name": where["school_name"], "district_name": where["district_name"], **worker},
                              names))
    return series


def _firing(rule: Rule, place: dict[str, str], value: float, limit: float, unreported: int = 0) -> dict[str, Any]:
    """The alert of a violation at `place`; `unreported` school sections of its level have not
    reported the indicator's figure, of SCHOOLS."""
    fields = {**HERE, **place, "value": value, "limit": limit, "unreported": unreported, "schools": SCHOOLS}
    return {
        "exp_labels": {**{k: v for k, v in place.items() if v},
                       "severity": rule.severity.value, "scope": rule.scope.value},
        "exp_annotations": {k: expected_text(t, rule, fields) for k, t in annotations(rule).items()},
    }


def _rule_test(rule: Rule, windows: Windows) -> dict[str, Any]:
    wait = seconds(windows.wait(rule.severity.value)) // 60
    # Minute by minute: the violation fires after `wait`; two minutes later no worker exports
    # its district for `gap` minutes (every series stale, as after a failed scrape); it is
    # exported again until `held`, then only the violation's series end.
    gap_at, gap = wait + 2, max(seconds(windows.hold_unexported) // 60 // 3, 2)
    held, brief = gap_at + gap + 10, max(wait - 2, 0)
    here, value, limit = _test_place(rule, HERE)
    there, there_value, there_limit = _test_place(rule, THERE)
    with_gap = f"{{0}}x{gap_at} stale _x{gap - 1} {{0}}x{held - gap_at - gap - 1}"
    series = _exported(rule, HERE, here, value, limit, with_gap + " stale", with_gap.format(1))
    series += _exported(rule, THERE, there, there_value, there_limit,
                        f"{{0}}x{brief} stale" if brief else "{0} stale", f"1x{held}")
    firing = _firing(rule, here, value, limit)
    name = alert_name(rule.id)
    return {
        "name": f"{rule.id}: fires after {wait}m, holds while its district is not exported for {gap}m, "
                f"not for a shorter violation, resolves when cleared",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": f"{max(wait - 1, 0)}m", "alertname": name, "exp_alerts": [] if wait else [firing]},
            {"eval_time": f"{wait + 1}m", "alertname": name, "exp_alerts": [firing]},
            {"eval_time": f"{gap_at + gap}m", "alertname": name, "exp_alerts": [firing]},
            {"eval_time": f"{gap_at + gap + 3}m", "alertname": name, "exp_alerts": [firing]},
            {"eval_time": f"{held + 2}m", "alertname": name, "exp_alerts": []},
        ],
    }


def _gone_test(rule: Rule, windows: Windows) -> dict[str, Any]:
    wait = seconds(windows.wait(rule.severity.value)) // 60
    hold = seconds(windows.hold_unexported) // 60
    # The violation fires; then, from minute `last` on, no worker exports its district.
    last = wait + 2
    here, value, limit = _test_place(rule, HERE)
    series = _exported(rule, HERE, here, value, limit, f"{{0}}x{last} stale", f"1x{last} stale")
    name = alert_name(rule.id)
    return {
        "name": f"{rule.id}: resolves once its district has not been exported for {hold}m",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": f"{last + hold - 1}m", "alertname": name, "exp_alerts": [_firing(rule, here, value, limit)]},
            {"eval_time": f"{last + hold + 1}m", "alertname": name, "exp_alerts": []},
        ],
    }


def _unreported_test(rule: Rule, windows: Windows) -> dict[str, Any]:
    """A CV rule's alert says how many of the level's schools have not reported the indicator's
    figure while they have not, and while its district is not exported; and says nothing of it
    once they have, though the CV, now over all of them, is still over the limit. Counts of
    another level, indicator or district are not its."""
    wait = seconds(windows.wait(rule.severity.value)) // 60
    # Minute by minute: the count is 3 from the start; at `gap_at` no worker exports the district
    # for `gap` minutes; at `reported` the schools report (the count's series ends); the
    # violation goes on until `end`.
    gap_at, gap = wait + 2, max(seconds(windows.hold_unexported) // 60 // 3, 2)
    reported = gap_at + gap + 5
    end = reported + 5
    here, value, limit = _test_place(rule, HERE)
    indicator = cv_indicator(rule)
    other = next(i for i in ("R1", "R2") if i != indicator)
    other_level = "junior" if here["section"] != "junior" else "primary"

    def gapped(last: int) -> str:
        # Exported up to minute `last`, but not during the gap: a stale marker, then nothing.
        return f"{{0}}x{gap_at} stale _x{gap - 1} {{0}}x{last - gap_at - gap - 1}"

    count = {"district": HERE["district"], "section": here["section"], "indicator": indicator}
    worker = {"instance": "worker-1:8000", "job": WORKER_JOB}
    series = _exported(rule, HERE, here, value, limit, gapped(end), gapped(end).format(1))
    series += [
        _series(UNREPORTED_METRIC, {**count, **worker}, gapped(reported - 1).format(3) + " stale"),
        _series("junheng_district_schools", {"district": HERE["district"], "section": here["section"], **worker},
                gapped(end).format(SCHOOLS)),
        _series(UNREPORTED_METRIC, {**count, "section": other_level, **worker}, gapped(end).format(5)),
        _series(UNREPORTED_METRIC, {**count, "indicator": other, **worker}, gapped(end).format(6)),
        _series(UNREPORTED_METRIC, {**count, "district": THERE["district"], **worker}, f"7x{end}"),
    ]
    name = alert_name(rule.id)
    missing, complete = _firing(rule, here, value, limit, unreported=3), _firing(rule, here, value, limit)
    return {
        "name": f"{rule.id}: says how many schools have not reported {indicator}'s figure while they have not, "
                f"also while its district is not exported, and no more once they have",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": f"{wait + 1}m", "alertname": name, "exp_alerts": [missing]},
            {"eval_time": f"{gap_at + gap}m", "alertname": name, "exp_alerts": [missing]},
            {"eval_time": f"{reported - 1}m", "alertname": name, "exp_alerts": [missing]},
            {"eval_time": f"{reported}m", "alertname": name, "exp_alerts": [complete]},
        ],
    }


def common_tests(windows: Windows, rule_file: str) -> dict[str, Any]:
    """promtool tests of the recording rules and the pipeline alerts, firing and not firing."""
    p = windows.pipeline
    worker = {"job": WORKER_JOB}
    w1, w2 = {**worker, "instance": "worker-1:8000"}, {**worker, "instance": "worker-2:8000"}
    down, stuck, lag, behind = (seconds(p[k].for_) // 60 for k in ("worker_down", "stuck", "consumer_lag", "metrics_behind"))
    lag_limit, stuck_window = p["consumer_lag"].get("messages"), p["stuck"].get("window")
    span = max(down, stuck, lag, behind) + 10

    def fired(name, instance, severity, summary):
        return {"exp_labels": {"instance": instance, "severity": severity, "scope": "pipeline",
                               **({"job": WORKER_JOB} if name == "JunhengWorkerDown" else {})},
                "exp_annotations": {"summary": summary, "runbook_url": alert_runbook_url(name)}}

    rollups = {
        "name": "district roll-ups ignore which worker exports a series",
        "interval": "1m",
        "input_series": [
            _series("junheng_rule_violation", {"rule": "G5", "district": "320571", "school": "320571-001",
                                               "section": "primary", "severity": "critical", **w1}, "1x5"),
            _series("junheng_rule_violation", {"rule": "R1", "district": "320571", "school": "320571-002",
                                               "section": "primary", "severity": "warning", **w1}, "1x5"),
            _series("junheng_rule_violation", {"rule": "R1", "district": "320571", "school": "320571-003",
                                               "section": "primary", "severity": "warning", **w2}, "1x5"),
            _series("junheng_district_schools", {"district": "320571", "section": "primary", **w1}, "20x5"),
            _series("junheng_district_schools_compliant", {"district": "320571", "section": "primary", **w1}, "15x5"),
            _series("junheng_district_indicator_cv", {"district": "320571", "section": "primary",
                                                      "indicator": "R4", **w1}, "0.25x5"),
            _series("junheng_district_indicator_cv_limit", {"district": "320571", "section": "primary",
                                                            "indicator": "R4", **w1}, "0.5x5"),
        ],
        "promql_expr_test": [
            {"expr": "junheng:rule_violations:count_by_district_severity", "eval_time": "2m",
             "exp_samples": [{"labels": 'junheng:rule_violations:count_by_district_severity{district="320571",severity="critical"}', "value": 1},
                             {"labels": 'junheng:rule_violations:count_by_district_severity{district="320571",severity="warning"}', "value": 2}]},
            {"expr": "junheng:rule_violations:count_by_rule", "eval_time": "2m",
             "exp_samples": [{"labels": 'junheng:rule_violations:count_by_rule{rule="G5",severity="critical"}', "value": 1},
                             {"labels": 'junheng:rule_violations:count_by_rule{rule="R1",severity="warning"}', "value": 2}]},
            {"expr": "junheng:district_schools_not_compliant", "eval_time": "2m",
             "exp_samples": [{"labels": 'junheng:district_schools_not_compliant{district="320571",section="primary"}', "value": 5}]},
            {"expr": "junheng:district_compliance_ratio", "eval_time": "2m",
             "exp_samples": [{"labels": 'junheng:district_compliance_ratio{district="320571",section="primary"}', "value": 0.75}]},
            {"expr": "junheng:district_indicator_cv_headroom", "eval_time": "2m",
             "exp_samples": [{"labels": 'junheng:district_indicator_cv_headroom{district="320571",indicator="R4",section="primary"}', "value": 0.25}]},
        ],
    }
    pipeline = {
        "name": "pipeline alerts fire for the failing worker only",
        "interval": "1m",
        "input_series": [
            _series("up", w1, f"0x{span}"),
            _series("up", w2, f"1x{span}"),
            # worker-1 is behind and applies nothing; worker-2 is quiet with nothing waiting.
            _series("junheng_consumer_lag", {"topic": "junheng.events", "partition": "0", **w1},
                    f"{lag_limit + 1}x{span}"),
            _series("junheng_consumer_lag", {"topic": "junheng.events", "partition": "1", **w2}, f"0x{span}"),
            _series("junheng_dead_letter_total", w1, f"0x3 1 1x{span}"),
            _series("junheng_dead_letter_total", w2, f"0x{span}"),
            _series("junheng_broker_stalls_total", w1, f"0x{span}"),
            _series("junheng_broker_stalls_total", w2, f"0x3 2x{span}"),
            # worker-1's scrapes stay behind; worker-2's are behind for one scrape, then caught up.
            _series("junheng_metrics_districts_behind", w1, f"3x{span}"),
            _series("junheng_metrics_districts_behind", w2, f"0 40 0x{span}"),
        ],
        "alert_rule_test": [
            {"eval_time": f"{down + 1}m", "alertname": "JunhengWorkerDown",
             "exp_alerts": [fired("JunhengWorkerDown", "worker-1:8000", "critical",
                                  "junheng 工作进程 worker-1:8000 无法抓取指标，其负责区县的违规告警暂停 / "
                                  "junheng worker worker-1:8000 cannot be scraped; alerts of its districts are paused")]},
            {"eval_time": f"{max(down - 1, 0)}m", "alertname": "JunhengWorkerDown",
             "exp_alerts": []},
            {"eval_time": f"{lag + 1}m", "alertname": "JunhengConsumerLagHigh",
             "exp_alerts": [fired("JunhengConsumerLagHigh", "worker-1:8000", "warning",
                                  f"junheng 工作进程 worker-1:8000 落后 {lag_limit + 1} 条消息 / "
                                  f"junheng worker worker-1:8000 is {lag_limit + 1} messages behind")]},
            {"eval_time": f"{max(lag - 1, 0)}m", "alertname": "JunhengConsumerLagHigh", "exp_alerts": []},
            {"eval_time": "4m", "alertname": "JunhengDeadLetters",
             "exp_alerts": [fired("JunhengDeadLetters", "worker-1:8000", "warning",
                                  f"junheng 工作进程 worker-1:8000 在 {p['dead_letters'].get('window')} 内有事件进入死信主题 / "
                                  f"junheng worker worker-1:8000 dead-lettered events in the last {p['dead_letters'].get('window')}")]},
            {"eval_time": "2m", "alertname": "JunhengDeadLetters", "exp_alerts": []},
            {"eval_time": "4m", "alertname": "JunhengBrokerStalls",
             "exp_alerts": [fired("JunhengBrokerStalls", "worker-2:8000", "warning",
                                  f"junheng 工作进程 worker-2:8000 在 {p['broker_stalls'].get('window')} 内遇到 Kafka 无响应 / "
                                  f"junheng worker worker-2:8000 saw the broker stall in the last {p['broker_stalls'].get('window')}")]},
            {"eval_time": f"{seconds(p['broker_stalls'].get('window')) // 60 + 10}m", "alertname": "JunhengBrokerStalls",
             "exp_alerts": []},
            {"eval_time": f"{behind + 1}m", "alertname": "JunhengMetricsBehind",
             "exp_alerts": [fired("JunhengMetricsBehind", "worker-1:8000", "warning",
                                  "junheng 工作进程 worker-1:8000 的指标中有 3 个区县落后于其状态 / "
                                  "junheng worker worker-1:8000 exports 3 districts with lines older than their state")]},
            {"eval_time": f"{max(behind - 1, 0)}m", "alertname": "JunhengMetricsBehind", "exp_alerts": []},
        ],
    }
    window = seconds(stuck_window) // 60
    waiting = 50
    # worker-1 handled events, then none from minute 3 on, with messages waiting; worker-2 has
    # applied nothing since it started (no event counter, no event lag) with messages waiting from
    # minute 3; worker-3 catches up on events dated an hour ago: the newest one it applied is old,
    # but it handles thousands a minute, so it is not stuck.
    w3 = {**worker, "instance": "worker-3:8000"}
    stuck_case = {
        "name": "a worker is stuck when messages wait and it handles no event, whatever their dates",
        "interval": "1m",
        "input_series": [
            _series("junheng_consumer_lag", {"topic": "junheng.events", "partition": "0", **w1}, f"{waiting}x{span + window}"),
            _series("junheng_events_total", {"type": "class.resized", "outcome": "applied", **w1}, f"0+10x3 30x{span + window}"),
            _series("junheng_consumer_lag", {"topic": "junheng.events", "partition": "1", **w2},
                    f"0x3 {waiting}x{span + window}"),
            _series("junheng_consumer_lag", {"topic": "junheng.events", "partition": "2", **w3},
                    f"500000-5000x{span + window}"),
            _series("junheng_events_total", {"type": "class.resized", "outcome": "applied", **w3},
                    f"0+5000x{span + window}"),
            _series("junheng_event_lag_seconds", w3, f"3600x{span + window}"),
        ],
        # worker-2 after its `for:`; worker-1 once its window has no event in it, and its `for:`.
        "alert_rule_test": [
            {"eval_time": f"{3 + stuck - 1}m", "alertname": "JunhengWorkerStuck", "exp_alerts": []},
            *[{"eval_time": f"{at}m", "alertname": "JunhengWorkerStuck",
               "exp_alerts": [fired("JunhengWorkerStuck", instance, "critical",
                                    _stuck_summary(instance, waiting, stuck_window)) for instance in stuck_ones]}
              for at, stuck_ones in ((3 + stuck + 1, ["worker-2:8000"]),
                                     (3 + window + stuck - 1, ["worker-2:8000"]),
                                     (3 + window + stuck + 1, ["worker-1:8000", "worker-2:8000"]))],
        ],
    }
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": [rollups, pipeline, stuck_case]}


def _stuck_summary(instance: str, waiting: int, window: str) -> str:
    return (f"junheng 工作进程 {instance} 有 {waiting} 条消息待处理，但 {window} 内未处理任何事件 / "
            f"junheng worker {instance} has {waiting} messages waiting but handled no event in the last {window}")


# --- promtool unit tests of the data-missing alerts -------------------------------------------

#: The data-missing alerts wait a week. Evaluated every minute, promtool took 12 s to step one
#: test through a week of a pack's rules; every 15 minutes, over series sampled every 5, a few.
#: Each test steps through the whole week, so there is one, with a district for each case.
DATA_EVALUATION, DATA_STEP = 15, 5  # minutes
#: A third district, whose worker stops exporting it once its alerts fire.
GONE = {"district": "320506", "district_name": "吴中区"}
SCHOOLS = 16  # HERE's primary school sections, for "2 of 16"


def data_missing_tests(pack: RulePack, windows: Windows, rule_file: str) -> dict[str, Any] | None:
    """A promtool test file (its own, for its coarser evaluation interval) for the pack's
    data-missing alerts, each of which: fires once its count has held for the window; holds
    while its district is not exported, and resolves once that has lasted longer than the hold;
    resolves when the count drops to 0 (the series ends: the worker exports no 0); and never
    fires for a count that ends before the window, for a count of 0, or (rules not evaluated)
    for a rule whose gap the CV alert tells."""
    alerts = data_missing.data_alerts(pack, windows)
    if not alerts:
        return None
    t = _DataTimeline(seconds(windows.data_missing.for_) // 60, seconds(windows.hold_unexported) // 60)
    places = _data_places(pack)
    return {"rule_files": [rule_file], "evaluation_interval": f"{DATA_EVALUATION}m",
            "tests": [{
                "name": f"data missing: fires after {data_missing.spoken(f'{t.wait}m')[1]}, holds while its district "
                        f"is not exported for less than {t.hold}m, resolves when the count drops to 0 or the district "
                        f"has not been exported for longer; not for a shorter gap, a count of 0 or a gap the CV "
                        f"alert tells",
                "interval": f"{DATA_STEP}m",
                "input_series": _data_input(alerts, places, t),
                "alert_rule_test": [case for alert in alerts for case in _data_cases(pack, alert, places, t)],
            }]}


class _DataTimeline:
    """Minutes of the data-missing test. A count present from minute 0 fires at `fires`, the
    first evaluation at or after the window. HERE's district is not exported at `gap` (a stale
    marker, one sample missing: one evaluation falls in it); its count goes from 2 to 1 at
    `drops` and to 0 at `reported`. THERE's count ends at `short`, before the window. GONE's
    district is exported up to `last`; `held` is the last evaluation the hold covers."""

    def __init__(self, wait: int, hold: int):
        if hold < DATA_EVALUATION or wait < 2 * DATA_EVALUATION:
            raise ValueError(f"data-missing tests evaluate every {DATA_EVALUATION}m: they need hold_unexported of "
                             f"at least {DATA_EVALUATION}m and a data_missing window of at least {2 * DATA_EVALUATION}m")
        self.wait, self.hold = wait, hold
        self.fires = -(-wait // DATA_EVALUATION) * DATA_EVALUATION
        self.before = self.fires - DATA_EVALUATION
        self.short = self.fires - 2 * DATA_EVALUATION
        self.last = self.fires + DATA_STEP
        self.held = (self.last + hold - DATA_STEP) // DATA_EVALUATION * DATA_EVALUATION
        self.gone = (self.last + hold) // DATA_EVALUATION * DATA_EVALUATION + DATA_EVALUATION
        self.gap = self.gone + DATA_EVALUATION
        self.drops = self.gap + 2 * DATA_EVALUATION
        self.reported = self.drops + 2 * DATA_EVALUATION
        self.end = self.reported + 2 * DATA_EVALUATION


def _samples(value_at: Callable[[int], Any]) -> str:
    """promtool's notation for `value_at(minute)` sampled every DATA_STEP minutes until it says
    "end": a number, "stale" (a stale marker), or None (no sample)."""
    tokens = []
    minute = 0
    while (token := value_at(minute)) != "end":
        tokens.append("_" if token is None else str(token))
        minute += DATA_STEP
    runs: list[tuple[str, int]] = []
    for token in tokens:
        if runs and runs[-1][0] == token and token != "stale":
            runs[-1] = (token, runs[-1][1] + 1)
        else:
            runs.append((token, 1))
    # `vxN` is N+1 samples of v; `_xN` is N missing ones.
    return " ".join(t if n == 1 else (f"_x{n}" if t == "_" else f"{t}x{n - 1}") for t, n in runs)


def _gapped(t: _DataTimeline, last: int, value: Callable[[int], float]) -> Callable[[int], Any]:
    """HERE's export of a series: `value(minute)` up to minute `last`, then a stale marker (the
    series ends); but at `t.gap` no worker exports the district: a stale marker, one sample missing."""
    def value_at(minute: int):
        if minute == t.gap:
            return "stale"
        if minute == t.gap + DATA_STEP:
            return None
        if minute <= last:
            return value(minute)
        return "stale" if minute == last + DATA_STEP else "end"
    return value_at


def _until(last: int, value: float) -> Callable[[int], Any]:
    """`value` up to minute `last`, then a stale marker: the series ends."""
    return lambda minute: value if minute <= last else ("stale" if minute == last + DATA_STEP else "end")


def _data_series(name: str, labels: dict[str, str], value_at: Callable[[int], Any]) -> dict[str, str]:
    return _series(name, {**labels, "instance": "worker-1:8000", "job": WORKER_JOB}, _samples(value_at))


def _data_places(pack: RulePack) -> dict[str, dict[str, str]]:
    """Where each alert counts, in HERE's district: a CV's level and indicator, a rule the
    not-evaluated alert names; and, as "told", a rule whose gap the CV alert tells."""
    judged, others, told = data_missing.cv_indicators(pack), data_missing.others(pack), data_missing.told_by_cv(pack)
    places = {}
    if judged:
        places[data_missing.UNDETERMINED] = {"district": HERE["district"], "section": "primary", "indicator": judged[0]}
    if others:
        places[data_missing.NOT_EVALUATED] = {"district": HERE["district"], "rule": others[0].id}
    if told:
        places["told"] = {"district": HERE["district"], "rule": sorted(told)[0]}
    return places


def _data_input(alerts: list[data_missing.DataAlert], places: dict[str, dict[str, str]],
                t: _DataTimeline) -> list[dict[str, str]]:
    series = [
        _data_series("junheng_district_info", {"district": HERE["district"], "name": HERE["district_name"]},
                     _gapped(t, t.end, lambda minute: 1)),
        _data_series("junheng_district_schools", {"district": HERE["district"], "section": "primary"},
                     _gapped(t, t.end, lambda minute: SCHOOLS)),
        _data_series("junheng_district_info", {"district": THERE["district"], "name": THERE["district_name"]},
                     _until(t.end, 1)),
        _data_series("junheng_district_info", {"district": GONE["district"], "name": GONE["district_name"]},
                     _until(t.last, 1)),
        _data_series("junheng_district_schools", {"district": GONE["district"], "section": "primary"},
                     _until(t.last, SCHOOLS)),
    ]
    for alert in alerts:
        here = places[alert.name]
        # 2, then 1 from `t.drops`; at `t.reported` the count is 0 and the worker exports no series.
        series.append(_data_series(alert.metric, here,
                                   _gapped(t, t.reported - DATA_STEP, lambda minute: 2 if minute < t.drops else 1)))
        series.append(_data_series(alert.metric, {**here, "district": THERE["district"]}, _until(t.short, 3)))
        series.append(_data_series(alert.metric, {**here, "district": GONE["district"]}, _until(t.last, 2)))
    if data_missing.UNDETERMINED in places:
        # A count of 0, should an exporter write one, is no gap.
        junior = {**places[data_missing.UNDETERMINED], "section": "junior"}
        series.append(_data_series(data_missing.UNREPORTED, junior, _until(t.end, 0)))
    if "told" in places and data_missing.NOT_EVALUATED in places:
        # The same gap as a CV's, told by the CV alert: never a rule-not-evaluated alert.
        series.append(_data_series(data_missing.NOT_EVALUATED_METRIC, places["told"], _until(t.end, 1)))
    return series


def _data_cases(pack: RulePack, alert: data_missing.DataAlert, places: dict[str, dict[str, str]],
                t: _DataTimeline) -> list[dict[str, Any]]:
    here = places[alert.name]
    gone = {**here, "district": GONE["district"]}

    def firing(place: dict[str, str], names: dict[str, str], count: int) -> dict[str, Any]:
        fields = {**place, "district_name": names["district_name"], "schools": SCHOOLS, "count": count}
        return {"exp_labels": {**place, **data_missing.labels(alert)},
                "exp_annotations": {**{k: data_missing.expected_text(text, pack, fields)
                                       for k, text in alert.text.items()},
                                    "runbook_url": alert_runbook_url(alert.name)}}

    return [{"eval_time": f"{at}m", "alertname": alert.name, "exp_alerts": expected} for at, expected in (
        (t.before, []),
        (t.fires, [firing(here, HERE, 2), firing(gone, GONE, 2)]),
        (t.held, [firing(here, HERE, 2), firing(gone, GONE, 2)]),
        (t.gone, [firing(here, HERE, 2)]),
        (t.gap, [firing(here, HERE, 2)]),
        (t.reported - DATA_EVALUATION, [firing(here, HERE, 1)]),
        (t.reported, []),
    )]
