"""Grafana-managed alerting generated from a rule pack and the district-leads directory, for
deployments that alert from Grafana instead of Alertmanager: alert rules, contact points and
the notification policy tree, in Grafana's file-provisioning format (apiVersion 1).

The rules are built with grafana-foundation-sdk (the shapes of Grafana's provisioning API,
which `junheng grafana sync` posts) and written out in the file format, which differs only in
a few keys. Secrets are `$__file{…}` references Grafana resolves when it loads the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.alerting import RelativeTimeRange

from alerts import data_missing
from alerts.alert_text import SEVERITY_ZH, UNREPORTED_METRIC, cv_indicator, go_choice, runbook_url
from alerts.alertmanager_config import NO_LEAD, NO_LEAD_NOTICE, OPERATORS, receiver_name
from alerts.grafana_dashboards import DATASOURCE_UID
from alerts.leads import Contact, Leads
from alerts.prometheus_rules import SCOPE_ORDER, alert_expr
from alerts.windows import Windows, seconds
from rules.indicators import BY_ID
from rules.messages import SCHOOLS_EN, SCHOOLS_ZH
from rules.pack import Rule, RulePack

FOLDER_UID = "junheng"
FOLDER_TITLE = "junheng 优质均衡监测"
GRAFANA_DEFAULT_RECEIVER = "grafana-default-email"
EVALUATE_EVERY = "1m"


def rule_uid(pack: RulePack, rule: Rule) -> str:
    """A fixed uid per pack and rule (Grafana allows at most 40 characters)."""
    digest = hashlib.sha1(f"{pack.config_name}/{rule.id}".encode()).hexdigest()[:12]
    return f"junheng-{digest}"


def rule_groups_api(pack: RulePack, windows: Windows) -> list[dict[str, Any]]:
    """The pack's rule groups in the provisioning API's shape (one group per scope, and one of
    its data-missing alerts)."""
    groups = []
    for scope in SCOPE_ORDER:
        rules = [r for r in pack.rules if r.scope is scope]
        if not rules:
            continue
        title = f"{pack.config_name}-{scope.value}"
        group = alerting.RuleGroup(title).folder_uid(FOLDER_UID).interval(seconds(EVALUATE_EVERY))
        for rule in rules:
            group = group.with_rule(_rule(pack, rule, title, windows))
        groups.append(json.loads(json.dumps(group.build(), cls=JSONEncoder)))
    missing = data_missing.data_alerts(pack, windows)
    if missing:
        title = data_missing.group_name(pack)
        group = alerting.RuleGroup(title).folder_uid(FOLDER_UID).interval(seconds(EVALUATE_EVERY))
        for alert in missing:
            group = group.with_rule(_data_missing_rule(pack, alert, title))
        groups.append(json.loads(json.dumps(group.build(), cls=JSONEncoder)))
    return groups


def _rule(pack: RulePack, rule: Rule, group: str, windows: Windows) -> alerting.Rule:
    window = RelativeTimeRange(from_val=600, to=0)
    value = prom.Dataquery().expr(" ".join(alert_expr(rule.id, windows.hold_unexported).split())).instant().ref_id("A")
    limit = prom.Dataquery().ref_id("B").instant().expr(
        f'max by (rule, district, school, section) (junheng_rule_limit{{rule="{rule.id}"}})')
    queries = [("A", value), ("B", limit)]
    unreported_zh = unreported_en = ""
    if indicator := BY_ID.get(cv_indicator(rule) or ""):
        queries.append(("D", _unreported_query(rule, indicator.id, windows.hold_unexported)))
        unreported_zh, unreported_en = _unreported_text(indicator.figure)
    built = _alerting_rule(f"{rule.id} {rule.title_zh} / {rule.title_en}", rule_uid(pack, rule), group)
    for ref, model in queries:
        built = built.with_query(alerting.Query(ref).datasource_uid(DATASOURCE_UID).relative_time_range(window)
                                 .model(model))
    return (built
            .with_query(_every_series_of_a())
            .for_val(windows.wait(rule.severity.value))
            .no_data_state("OK").exec_err_state("Error")
            .labels({"severity": rule.severity.value, "scope": rule.scope.value, "rule": rule.id})
            .annotations({
                "summary": (f"{{{{ $labels.district }}}} {{{{ $labels.school }}}} {{{{ $labels.section }}}}："
                            f"{rule.title_zh} / {rule.title_en}"),
                "description": (f"观测值 {{{{ $values.A.Value }}}}，限值 {{{{ $values.B.Value }}}}（规则 {rule.id}，"
                                f"{SEVERITY_ZH.get(rule.severity.value, rule.severity.value)}）。{unreported_zh}"
                                f"Observed {{{{ $values.A.Value }}}}, limit {{{{ $values.B.Value }}}} (rule {rule.id})."
                                f"{unreported_en}"),
                "runbook_url": runbook_url(rule.id),
            }))


def _unreported_query(rule: Rule, indicator: str, hold: str) -> prom.Dataquery:
    """Query D of a CV rule: the school sections of the level that have not reported the
    indicator's figure, now (as last seen within `hold` only where no worker exports the
    district, as query A's value), with query A's labels, so that Grafana gives it to the
    alert's templates as `$values.D`; none where every school has reported. A query, not a
    label of A: a label that changed would make the alert another one (`alert_text.unreported_prelude`)."""
    selector = f'{UNREPORTED_METRIC}{{indicator="{indicator}"}}'
    count = (f"max by (district, section) ({selector} > 0 or (last_over_time({selector}[{hold}]) > 0"
             f" unless on (district) junheng_district_info))")
    return prom.Dataquery().ref_id("D").instant().expr(f'label_replace({count}, "rule", "{rule.id}", "", "")')


def _unreported_text(figure: str) -> tuple[str, str]:
    """What a CV rule's description adds, in Chinese and English, while query D finds schools of
    the level that have not reported `figure` (the Prometheus alert's note, without the level's
    count of schools, which would take a query more). Within `with`: where query D found
    nothing, `$values.D` may be absent, and a field of it is then read from nothing."""
    count, shown, end = "{{ $values.D.Value }}", "{{ with $values.D }}{{ if .Value }}", "{{ end }}{{ end }}"
    return (f"{shown}{count} 所{go_choice('section', SCHOOLS_ZH)}未报送 {figure}，此差异系数仅据其余学校计算。{end}",
            f"{shown} {count} of the {go_choice('section', SCHOOLS_EN)} did not report {figure}; "
            f"this CV is over the other schools only.{end}")


def _alerting_rule(title: str, uid: str, group: str) -> alerting.Rule:
    return alerting.Rule(title).uid(uid).rule_group(group).folder_uid(FOLDER_UID).condition("C")


def _every_series_of_a() -> alerting.Query:
    # Every series A returns is an alert; `$A == $A` is 1 for each, whatever its value.
    return alerting.Query("C").datasource_uid("__expr__").model(expr.TypeMath().ref_id("C").expression("$A == $A"))


def _data_missing_rule(pack: RulePack, alert: data_missing.DataAlert, group: str) -> alerting.Rule:
    """A data-missing alert (`alerts/data_missing.py`): Prometheus's expression and wait, its own words."""
    window = RelativeTimeRange(from_val=600, to=0)
    count = prom.Dataquery().expr(" ".join(alert.expr.split())).instant().ref_id("A")
    return (_alerting_rule(alert.title, data_missing.grafana_uid(pack, alert), group)
            .with_query(alerting.Query("A").datasource_uid(DATASOURCE_UID).relative_time_range(window).model(count))
            .with_query(_every_series_of_a())
            .for_val(alert.wait)
            .no_data_state("OK").exec_err_state("Error")
            .labels(data_missing.labels(alert))
            .annotations(data_missing.grafana_text(alert, pack)))


def alert_rules(pack: RulePack, windows: Windows) -> dict[str, Any]:
    """The rule groups as an alerting provisioning file."""
    groups = []
    for group in rule_groups_api(pack, windows):
        groups.append({
            "orgId": 1, "name": group["title"], "folder": FOLDER_TITLE, "interval": EVALUATE_EVERY,
            "rules": [{k: r[k] for k in ("uid", "title", "condition", "data", "for", "noDataState",
                                          "execErrState", "labels", "annotations")} for r in group["rules"]],
        })
    return {"apiVersion": 1, "groups": groups}


#: The e-mail of a district's alerts sent to the operators because no lead is listed for it, as
#: Alertmanager's `junheng.no_lead` templates say it (Grafana's own templates otherwise).
NO_LEAD_SUBJECT = '【未配置负责人 / no lead】区县 {{ .CommonLabels.district }}：{{ template "default.title" . }}'
NO_LEAD_MESSAGE = NO_LEAD_NOTICE + '\n\n{{ template "default.message" . }}'


def contact_points(leads: Leads) -> dict[str, Any]:
    """One contact point per district lead, and for the operators one of their own and one for
    districts no lead is listed for."""
    points = [_contact_point(receiver_name(d), lead) for d, lead in sorted(leads.districts.items())]
    if leads.operators:
        points.append(_contact_point(OPERATORS, leads.operators))
        points.append(_contact_point(NO_LEAD, leads.operators,
                                     {"subject": NO_LEAD_SUBJECT, "message": NO_LEAD_MESSAGE}))
    return {"apiVersion": 1, "contactPoints": points}


#: What Grafana accepts as a uid (pkg/util: `^[a-zA-Z0-9\-\_]*$`, at most 40 characters); it
#: refuses to create a contact point whose uid does not match, and a provisioning file with one
#: stops Grafana's start.
GRAFANA_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def receiver_uid(name: str, kind: str) -> str:
    """The uid of a contact point's `kind` (email, webhook) integration: `<name>-<kind>` when
    Grafana accepts that, else `<kind>-` and a digest of the name. A district id may be Chinese,
    hold spaces or quotes or be long (contracts.md §1): cut to 40 characters, two long ids with
    the same beginning shared a uid, and the other characters made uids Grafana refuses."""
    uid = f"{name}-{kind}"
    if GRAFANA_UID.match(uid):
        return uid
    return f"{kind}-{hashlib.sha1(name.encode()).hexdigest()[:16]}"


def _contact_point(name: str, contact: Contact, email_text: dict[str, str] | None = None) -> dict[str, Any]:
    receivers = []
    if contact.email:
        receivers.append({"uid": receiver_uid(name, "email"), "type": "email", "disableResolveMessage": False,
                          "settings": {"addresses": contact.email, "singleEmail": True, **(email_text or {})}})
    if contact.webhook:
        settings: dict[str, Any] = {"url": contact.webhook.url, "httpMethod": "POST"}
        if contact.webhook.credentials_file:
            settings["authorization_scheme"] = "Bearer"
            settings["authorization_credentials"] = f"$__file{{{contact.webhook.credentials_file}}}"
        receivers.append({"uid": receiver_uid(name, "webhook"), "type": "webhook", "disableResolveMessage": False,
                          "settings": settings})
    return {"orgId": 1, "name": name, "receivers": receivers}


def notification_policies(leads: Leads, windows: Windows) -> dict[str, Any]:
    """Each district's alerts to its lead only; those of a district no lead is listed for to the
    operators, saying so; the rest to the operators."""
    notify = windows.notify
    routes = [alerting.NotificationPolicy().receiver(receiver_name(d))
              .object_matchers([["district", "=", d]]).continue_val(False).routes(_district_routes(windows))
              for d in sorted(leads.districts)]
    if leads.operators:
        routes.append(alerting.NotificationPolicy().receiver(NO_LEAD).object_matchers([["district", "=~", ".+"]])
                      .routes(_district_routes(windows)))
    root = (alerting.NotificationPolicy()
            .receiver(OPERATORS if leads.operators else GRAFANA_DEFAULT_RECEIVER)
            .group_by(["grafana_folder", "district", "rule"])
            .group_wait(notify.group_wait).group_interval(notify.group_interval)
            .repeat_interval(max(notify.repeat_interval.values(), key=seconds))
            .routes(routes))
    policy = json.loads(json.dumps(root.build(), cls=JSONEncoder))
    return {"apiVersion": 1, "policies": [{"orgId": 1, **policy}]}


def _district_routes(windows: Windows) -> list[alerting.NotificationPolicy]:
    """A district's data-missing alerts grouped apart from its violations, then every alert
    repeated by severity, as in Alertmanager (`alertmanager_config._district_routes`): without
    them a critical violation was repeated every 72h (the root's, the longest) instead of 4h."""
    data_missing_policy = (alerting.NotificationPolicy()
                           .object_matchers([[k, "=", v] for k, v in data_missing.FINDING.items()])
                           .group_by(["grafana_folder", "district", *data_missing.FINDING])
                           .routes(_by_severity(windows)))
    return [data_missing_policy, *_by_severity(windows)]


def _by_severity(windows: Windows) -> list[alerting.NotificationPolicy]:
    return [alerting.NotificationPolicy().object_matchers([["severity", "=", severity]]).repeat_interval(every)
            for severity, every in windows.notify.repeat_interval.items()]
