"""Grafana dashboards built with grafana-foundation-sdk, and their provisioning files.

Four dashboards with fixed uids (so provisioning and `junheng grafana sync` overwrite rather
than duplicate): the bureau's overview of every district against every limit, a district page,
a school drill-down, and the pipeline's health. Limits come from the metrics themselves
(`junheng_district_indicator_cv_limit`, `junheng_rule_limit`), so a dashboard fits every pack.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE_UID = "junheng-prometheus"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
FOLDER = "junheng 优质均衡监测"
CONTAINER_DASHBOARDS = "/var/lib/grafana/dashboards/junheng"
PROMETHEUS_URL = "http://prometheus:9090"
TAGS = ["junheng"]


def dashboards() -> list[dict[str, Any]]:
    """Every dashboard, as the JSON model Grafana stores."""
    return [_as_json(builder) for builder in (bureau(), district(), school(), pipeline())]


#: Column names of the school sections of a level that did not report an indicator's figure, and
#: of those that did (its mean and CV are over these only).
UNREPORTED_COLUMN = "未报送学校数 / Schools not reporting"
REPORTED_COLUMN = "差异系数所据学校数 / Schools the CV is over"
#: What a count of schools not reporting beside a CV means, for a panel's description.
PARTIAL_CV_NOTE = ("未报送学校数不为空：该学段有学校未报送此指标，差异系数仅据其余学校计算，限值内亦未能判定。"
                   " / A count of schools not reporting: some schools of the level did not report the "
                   "indicator, the CV is over the others only, and within its limit it is undetermined.")
BY_INDICATOR = "district, section, indicator"
#: The table of rules not evaluated for want of data, its column, and what it means.
NOT_EVALUATED_TITLE = "数据缺失（规则无法评估） / Rules not evaluated for want of data"
NOT_EVALUATED_COLUMN = "无法评估处数 / Places not evaluated"
NOT_EVALUATED_NOTE = ("因数据未报送而无法评估该规则的学段、学校或区县数：未评估不等于达标，请督促补报。"
                      "具体位置见 junheng status 或报告的 not_evaluated。"
                      " / School sections, schools, or the district and its levels where the rule could not be "
                      "evaluated because a figure was not reported: not evaluated is not compliant. Which places: "
                      "junheng status, or the report's not_evaluated.")


def bureau() -> db.Dashboard:
    """Every district against every limit: CV headroom, compliance, violations by severity. A CV
    some schools of the level did not report is marked beside it, and listed, as are the rules
    each district could not be assessed on for want of data."""
    return (_dashboard("junheng-bureau", "教育局总览 / Bureau overview",
                       "Every district against every limit of the rule pack")
            .with_panel(_stat("违规数（按严重程度） / Violations by severity",
                              "sum by (severity) (junheng:rule_violations:count_by_district_severity)", "{{severity}}"))
            .with_panel(_table("差异系数余量（限值 − 差异系数，负数即超限） / CV headroom (limit − CV; negative = over)",
                               "junheng:district_indicator_cv_headroom", _unreported(BY_INDICATOR),
                               columns=("余量 / Headroom", UNREPORTED_COLUMN))
                        .description(PARTIAL_CV_NOTE).span(18))
            .with_panel(bargauge.Panel().title("学校达标率 / Share of compliant school sections")
                        .datasource(DATASOURCE).unit("percentunit").min(0).max(1).span(24)
                        .with_target(_query("junheng:district_compliance_ratio", "{{district}} {{section}}", instant=True)))
            .with_panel(_partial_cvs("差异系数仅据部分学校计算的区县 / District CVs over part of the schools",
                                     "district, ").span(24))
            .with_panel(_not_evaluated("district, rule").span(24))
            .with_panel(_table("各区县差异系数与限值 / District CV and its limit",
                               f"max by ({BY_INDICATOR}) (junheng_district_indicator_cv)",
                               f"max by ({BY_INDICATOR}) (junheng_district_indicator_cv_limit)",
                               _unreported(BY_INDICATOR),
                               columns=("差异系数 / CV", "限值 / Limit", UNREPORTED_COLUMN))
                        .description(PARTIAL_CV_NOTE).span(24))
            .with_panel(_timeseries("违规数趋势 / Violations over time",
                                    "sum by (district) (junheng:rule_violations:count_by_district_severity)",
                                    "{{district}}").span(24)))


def district() -> db.Dashboard:
    """One district (variable `district`): indicators, CV against limit, rules not evaluated for
    want of data, schools off standard."""
    sel = 'district="$district"'
    return (_dashboard("junheng-district", "区县 / District", "One district's indicators, balance and violations")
            .with_variable(_variable("district", "区县 / District", "label_values(junheng_district_indicator, district)"))
            .with_panel(_stat("未达标学校（学段） / School sections not compliant",
                              f"junheng:district_schools_not_compliant{{{sel}}}", "{{section}}"))
            .with_panel(_stat("违规数 / Violations",
                              f"junheng:rule_violations:count_by_district_severity{{{sel}}}", "{{severity}}"))
            .with_panel(_timeseries("区县指标（学生加权均值） / District indicators (student-weighted mean)",
                                    f"max by (section, indicator) (junheng_district_indicator{{{sel}}})",
                                    "{{section}} {{indicator}}").span(12))
            .with_panel(_timeseries("差异系数与限值 / CV against its limit",
                                    f"max by (section, indicator) (junheng_district_indicator_cv{{{sel}}})",
                                    "{{section}} {{indicator}} CV",
                                    f"max by (section, indicator) (junheng_district_indicator_cv_limit{{{sel}}})",
                                    "{{section}} {{indicator}} limit").span(24))
            .with_panel(_partial_cvs("差异系数仅据部分学校计算的指标 / CVs over part of the schools", "", sel).span(24))
            .with_panel(_not_evaluated("rule", sel).span(24))
            .with_panel(_table("未达标学校及规则（观测值与限值） / Schools off standard (value and limit)",
                               f"max by (rule, school, section) (junheng_rule_value{{{sel}}})",
                               f"max by (rule, school, section) (junheng_rule_limit{{{sel}}})").span(24))
            .with_panel(_timeseries("违规数趋势 / Violations over time",
                                    f"junheng:rule_violations:count_by_district_severity{{{sel}}}",
                                    "{{severity}}").span(24)))


def school() -> db.Dashboard:
    """One school (variables `district`, `school`): its indicators and its violations."""
    sel = 'district="$district", school="$school"'
    return (_dashboard("junheng-school", "学校 / School", "One school's indicators and violations")
            .with_variable(_variable("district", "区县 / District", "label_values(junheng_school_info, district)"))
            .with_variable(_variable("school", "学校 / School",
                                     'label_values(junheng_school_info{district="$district"}, school)'))
            .with_panel(_table("学校 / School", f"max by (school, name, district_name) (junheng_school_info{{{sel}}})")
                        .span(24))
            .with_panel(_timeseries("学校指标 / School indicators",
                                    f"max by (section, indicator) (junheng_school_indicator{{{sel}}})",
                                    "{{section}} {{indicator}}").span(24))
            .with_panel(_table("违规（观测值与限值） / Violations (value and limit)",
                               f"max by (rule, section) (junheng_rule_value{{{sel}}})",
                               f"max by (rule, section) (junheng_rule_limit{{{sel}}})").span(24)))


def pipeline() -> db.Dashboard:
    """The workers: events, lags, dead letters, evaluations, broker stalls, /metrics behind."""
    return (_dashboard("junheng-pipeline", "数据管道 / Pipeline health", "junheng workers and their Kafka consumption")
            .with_panel(_stat("在线工作进程 / Workers up", 'sum(up{job="junheng"})', "workers"))
            .with_panel(_stat("最新事件延迟 / Newest event lag", "max(junheng_event_lag_seconds)", "lag").unit("s"))
            .with_panel(_timeseries("事件处理速率 / Events handled per second", "junheng:events:rate5m",
                                    "{{type}} {{outcome}}").unit("ops").span(12))
            .with_panel(_timeseries("消费延迟（消息数） / Consumer lag (messages)",
                                    "sum by (instance, topic) (junheng_consumer_lag)", "{{instance}} {{topic}}"))
            .with_panel(_timeseries("死信 / Dead-lettered events (15m)",
                                    "sum by (instance) (increase(junheng_dead_letter_total[15m]))", "{{instance}}"))
            .with_panel(_timeseries("规则评估速率 / Rule evaluations per second",
                                    "sum by (instance) (rate(junheng_rule_evaluations_total[5m]))", "{{instance}}")
                        .unit("ops"))
            .with_panel(_timeseries("Kafka 无响应次数 / Broker stalls (1h)",
                                    "sum by (instance) (increase(junheng_broker_stalls_total[1h]))", "{{instance}}"))
            .with_panel(_timeseries("指标落后的区县 / Districts behind in /metrics",
                                    "max by (instance) (junheng_metrics_districts_behind)", "{{instance}}")))


def datasource_provisioning() -> dict[str, Any]:
    """The Prometheus datasource, with the fixed uid the dashboards and alert rules use."""
    return {"apiVersion": 1, "datasources": [{
        "name": "junheng Prometheus", "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy",
        "url": PROMETHEUS_URL, "isDefault": True, "editable": False,
        "jsonData": {"timeInterval": "15s"},
    }]}


def dashboard_provider() -> dict[str, Any]:
    """The file provider that loads `dashboards/*.json` into the junheng folder."""
    return {"apiVersion": 1, "providers": [{
        "name": "junheng", "folder": FOLDER, "type": "file", "disableDeletion": True,
        "allowUiUpdates": False, "options": {"path": CONTAINER_DASHBOARDS},
    }]}


# --- building blocks ----------------------------------------------------------------------

def _dashboard(uid: str, title: str, description: str) -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).description(description).tags(TAGS)
            .time("now-7d", "now").refresh("1m").timezone("browser"))


def _variable(name: str, label: str, query: str) -> db.QueryVariable:
    return (db.QueryVariable(name).label(label).datasource(DATASOURCE).query(query)
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(model.VariableSort.ALPHABETICAL_ASC))


def _query(expr: str, legend: str = "", ref: str = "A", instant: bool = False, as_table: bool = False) -> prom.Dataquery:
    query = prom.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        query = query.legend_format(legend)
    if instant:
        query = query.instant()
    if as_table:
        query = query.format(PromQueryFormat.TABLE)
    return query


def _stat(title: str, expr: str, legend: str) -> stat.Panel:
    return stat.Panel().title(title).datasource(DATASOURCE).span(6).with_target(_query(expr, legend, instant=True))


def _timeseries(title: str, expr: str, legend: str, *more: str) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).datasource(DATASOURCE).span(12).with_target(_query(expr, legend))
    for i in range(0, len(more), 2):
        panel = panel.with_target(_query(more[i], more[i + 1], ref=chr(ord("B") + i // 2)))
    return panel


def _table(title: str, *exprs: str, columns: tuple[str, ...] = ()) -> table.Panel:
    """An instant table; several queries are merged on their labels (value #A, #B, …), and
    `columns`, when given, name the queries' values in order."""
    panel = table.Panel().title(title).datasource(DATASOURCE).span(12)
    for i, expr in enumerate(exprs):
        panel = panel.with_target(_query(expr, ref=chr(ord("A") + i), instant=True, as_table=True))
    if len(exprs) > 1:
        panel = panel.with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
    options: dict[str, Any] = {"excludeByName": {"Time": True}}
    if columns:
        # Grafana names a lone query's value "Value", and each of several "Value #<ref>".
        values = ["Value"] if len(exprs) == 1 else [f"Value #{chr(ord('A') + i)}" for i in range(len(exprs))]
        options["renameByName"] = dict(zip(values, columns, strict=True))
    return panel.with_transformation(model.DataTransformerConfig(id_val="organize", options=options))


def _unreported(by: str, sel: str = "") -> str:
    """The school sections of a level that did not report an indicator, where any did not."""
    return f"max by ({by}) (junheng_district_indicator_schools_unreported{_braced(sel)})"


def _partial_cvs(title: str, place: str, sel: str = "") -> table.Panel:
    """The CVs some schools of their level did not report, one row each (`place` "district, "
    for every district, "" for the one `sel` picks): how many did not report, how many the CV is
    over (the level's school sections less those), the CV and its limit. Nothing else is listed:
    nationally the district tables hold tens of thousands of rows, these a few."""
    level, by = f"{place}section", f"{place}section, indicator"
    unreported = _unreported(by, sel)
    return _table(title, unreported,
                  f"max by ({level}) (junheng_district_schools{_braced(sel)}) - on ({level}) group_right {unreported}",
                  f"max by ({by}) (junheng_district_indicator_cv{_braced(sel)}) and on ({by}) {unreported}",
                  f"max by ({by}) (junheng_district_indicator_cv_limit{_braced(sel)}) and on ({by}) {unreported}",
                  columns=(UNREPORTED_COLUMN, REPORTED_COLUMN, "差异系数 / CV", "限值 / Limit")
                  ).description(PARTIAL_CV_NOTE)


def _not_evaluated(by: str, sel: str = "") -> table.Panel:
    """The rules that could not be evaluated for want of data, one row per `by`, with how many
    places each: a district missing data must not read as one that complies."""
    return _table(NOT_EVALUATED_TITLE, f"max by ({by}) (junheng_rules_not_evaluated{_braced(sel)})",
                  columns=(NOT_EVALUATED_COLUMN,)).description(NOT_EVALUATED_NOTE)


def _braced(sel: str) -> str:
    return f"{{{sel}}}" if sel else ""


def _as_json(builder: db.Dashboard) -> dict[str, Any]:
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))
