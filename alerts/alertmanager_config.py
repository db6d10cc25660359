"""The Alertmanager configuration generated from the district-leads directory and a rule pack.

Routing: every alert carrying a district goes to that district's lead and to no one else;
pipeline alerts and districts without a lead go to the operators (or nowhere, when the
directory names none). Alerts are grouped by district and rule, so a lead receives one message
per rule listing every school concerned. A district's alert that reaches the operators says that
no lead is listed for it: a lead keyed by the district's name instead of its id received nothing,
and the operators got the district's alerts as if they were their own.

Figures a district has not reported (`alerts/data_missing.py`, label `finding="data_missing"`)
are no violation: the lead template said 未达标 of every alert, and would have called a CV that
cannot be determined one not meeting the standard. Those alerts take a route of their own under
the district's, grouped by district alone (one message listing everything the district has not
reported, never mixed into a rule's violations), and the templates give them their own words:
数据未报齐 / figures missing, and 已解除 when resolved.

Inhibition, so one root cause does not page twice:
- a school section's `school_compliance` violation (critical) silences the same section's
  resource-indicator warnings (R1…R7): the compliance alert already names the indicators short;
- a worker that is down silences its stuck and lag alerts.
A district's inter-school CV violation (`Rn.cv`) inhibits nothing: it is about the spread across
schools, and each school's own shortfall remains a separate task for someone else.
"""

from __future__ import annotations

from typing import Any

from alerts.data_missing import FINDING
from alerts.leads import Contact, Leads
from alerts.prometheus_rules import alert_name
from alerts.windows import Windows, seconds
from rules.indicators import IDS
from rules.pack import RulePack
from rules.quantities import Scope

TEMPLATE_NAME = "junheng.tmpl"
CONTAINER_TEMPLATES = "/etc/alertmanager/templates"
UNROUTED = "unrouted"
OPERATORS = "operators"
#: The operators, receiving a district's alerts because no lead is listed for it.
NO_LEAD = "operators-no-lead"
#: What those alerts begin with, in Alertmanager's template and Grafana's contact point alike.
NO_LEAD_NOTICE = ("负责人名录中没有区县 {{ .CommonLabels.district }} 的负责人，以下告警改发运维。"
                  "请按快照中的区县代码（如 320571，而非区县名称）登记负责人。\n"
                  "No lead is listed for district {{ .CommonLabels.district }}, so its alerts come to the operators: "
                  "key the lead by the district id snapshots use (e.g. 320571), not by its name.")


def receiver_name(district: str) -> str:
    return f"district-{district}"


def alertmanager_config(leads: Leads, pack: RulePack, windows: Windows,
                        templates_dir: str = CONTAINER_TEMPLATES) -> dict[str, Any]:
    """The whole `alertmanager.yml` as a mapping."""
    fallback = OPERATORS if leads.operators else UNROUTED
    notify = windows.notify
    config: dict[str, Any] = {"global": _global(leads)}
    config["templates"] = [f"{templates_dir}/*.tmpl"]
    config["route"] = {
        "receiver": fallback,
        "group_by": ["district", "rule"],
        "group_wait": notify.group_wait,
        "group_interval": notify.group_interval,
        "repeat_interval": max(notify.repeat_interval.values(), key=seconds),
        "routes": [
            *[{"receiver": receiver_name(d), "matchers": [matcher("district", "=", d)], "continue": False,
               "routes": _district_routes(windows)} for d in sorted(leads.districts)],
            {"receiver": fallback, "matchers": ['scope="pipeline"'], "group_by": ["alertname", "instance"],
             "routes": _by_severity(windows)},
            *([{"receiver": NO_LEAD, "matchers": [matcher("district", "=~", ".+")],
                "routes": _district_routes(windows)}] if leads.operators else []),
        ],
    }
    config["inhibit_rules"] = inhibit_rules(pack)
    config["receivers"] = [
        *[_receiver(receiver_name(d), lead) for d, lead in sorted(leads.districts.items())],
        _receiver(OPERATORS, leads.operators) if leads.operators else {"name": UNROUTED},
        *([_receiver(NO_LEAD, leads.operators, "junheng.no_lead")] if leads.operators else []),
    ]
    return config


def inhibit_rules(pack: RulePack) -> list[dict[str, Any]]:
    """The inhibitions described in the module docstring, for the rules the pack has."""
    indicator_rules = [r.id for r in pack.rules if r.scope is Scope.section and r.quantity in IDS]
    compliance = [r.id for r in pack.rules if r.quantity == "compliance"]
    rules = []
    if indicator_rules and compliance:
        rules.append({
            "source_matchers": [matcher("alertname", "=", alert_name(compliance[0]))],
            "target_matchers": [matcher("rule", "=~", "|".join(_regex_literal(i) for i in indicator_rules)),
                                'severity="warning"'],
            "equal": ["district", "school", "section"],
        })
    rules.append({
        "source_matchers": ['alertname="JunhengWorkerDown"'],
        "target_matchers": ['alertname=~"JunhengWorkerStuck|JunhengConsumerLagHigh"'],
        "equal": ["instance"],
    })
    return rules


def matcher(label: str, op: str, value: str) -> str:
    """An Alertmanager matcher with `value` quoted as its parser reads it back: a district id may
    hold any printable character (contracts.md §1), and one with a `"` or a `\\` written as it
    was made the whole file one amtool and Alertmanager refuse (0.25's parser unescapes `\\\\`,
    `\\"` and `\\n`)."""
    quoted = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{label}{op}"{quoted}"'


def _global(leads: Leads) -> dict[str, Any]:
    out: dict[str, Any] = {"resolve_timeout": "5m"}
    if leads.smtp:
        out["smtp_smarthost"] = leads.smtp.smarthost
        out["smtp_from"] = leads.smtp.sender
        out["smtp_require_tls"] = leads.smtp.require_tls
        if leads.smtp.username:
            out["smtp_auth_username"] = leads.smtp.username
        if leads.smtp.password_file:
            out["smtp_auth_password_file"] = leads.smtp.password_file
    return out


def _district_routes(windows: Windows) -> list[dict[str, Any]]:
    """Under a district's route: its data-missing alerts in a group of their own (the module
    docstring says why), then every alert repeated by severity."""
    data_missing = {"matchers": [matcher(k, "=", v) for k, v in FINDING.items()],
                    "group_by": ["district", *FINDING], "routes": _by_severity(windows)}
    return [data_missing, *_by_severity(windows)]


def _by_severity(windows: Windows) -> list[dict[str, Any]]:
    return [{"matchers": [f'severity="{s}"'], "repeat_interval": every}
            for s, every in windows.notify.repeat_interval.items()]


def _receiver(name: str, contact: Contact, templates: str = "junheng") -> dict[str, Any]:
    """A receiver for `contact`, its e-mail written with the templates `<templates>.subject`,
    `.html` and `.text`. A webhook's payload names the receiver."""
    receiver: dict[str, Any] = {"name": name}
    if contact.email:
        receiver["email_configs"] = [{
            "to": contact.email,
            "send_resolved": True,
            "headers": {"Subject": f'{{{{ template "{templates}.subject" . }}}}'},
            "html": f'{{{{ template "{templates}.html" . }}}}',
            "text": f'{{{{ template "{templates}.text" . }}}}',
        }]
    if contact.webhook:
        hook: dict[str, Any] = {"url": contact.webhook.url, "send_resolved": True}
        if contact.webhook.credentials_file:
            hook["http_config"] = {"authorization": {"credentials_file": contact.webhook.credentials_file}}
        receiver["webhook_configs"] = [hook]
    return receiver


def _regex_literal(text: str) -> str:
    return "".join("\\" + c if c in r".^$*+?()[]{}|\\" else c for c in text)


#: Notification templates, in Chinese: the leads are district education bureau staff.
TEMPLATE = r'''{{/* junheng 告警通知模板（由 alerts/alertmanager_config.py 生成，请勿手改） */}}

{{ define "junheng.status" }}{{ if eq .Status "firing" }}未达标{{ else }}已恢复{{ end }}{{ end }}

{{ define "junheng.severity" }}{{ if eq . "critical" }}严重{{ else if eq . "warning" }}警告{{ else if eq . "info" }}提示{{ else }}{{ . }}{{ end }}{{ end }}

{{/* 数据未报齐（finding="data_missing"）不是未达标：差异系数无法判定、规则无法评估，另用措辞。
     Figures a district has not reported are no violation: they have words of their own. */}}
{{ define "junheng.subject" }}{{ if eq .CommonLabels.finding "data_missing" }}{{ template "junheng.data_missing.subject" . }}{{ else }}【义务教育优质均衡监测】{{ template "junheng.status" . }}：{{ if .CommonLabels.rule }}规则 {{ .CommonLabels.rule }}{{ else }}{{ .CommonLabels.alertname }}{{ end }}，{{ .Alerts.Firing | len }} 处未达标{{ if .Alerts.Resolved }}，{{ .Alerts.Resolved | len }} 处已恢复{{ end }}{{ end }}{{ end }}

{{ define "junheng.data_missing.subject" }}【义务教育优质均衡监测】{{ if eq .Status "firing" }}数据未报齐 / figures missing：区县 {{ .CommonLabels.district }}，{{ .Alerts.Firing | len }} 项尚无法判定{{ if .Alerts.Resolved }}，{{ .Alerts.Resolved | len }} 项已解除{{ end }}{{ else }}已解除 / resolved：区县 {{ .CommonLabels.district }}，{{ .Alerts.Resolved | len }} 项已解除{{ end }}{{ end }}

{{/* 北京时间：Alertmanager 容器的本地时区是 UTC，.Local 显示的时间比北京时间早 8 小时且不标时区；
     0.25 的模板没有 tz 函数，中国不实行夏令时，故固定加 8 小时（28800 秒）。
     Beijing time: the container's local zone is UTC, so .Local showed times 8 hours early with no
     zone; 0.25 templates have no tz function, and China keeps no daylight saving time. */}}
{{ define "junheng.time" }}{{ (.UTC.Add 28800000000000).Format "2006-01-02 15:04" }}{{ end }}

{{/* 摘要已以地点开头（place_zh），不再重复。The summary already begins with the place. */}}
{{ define "junheng.alert" }}{{ .Annotations.summary }}
{{ if .Annotations.value }}  当前值 {{ .Annotations.value }}，限值 {{ .Annotations.limit }}（{{ template "junheng.severity" .Labels.severity }}）
{{ end }}{{ if .Annotations.description }}  {{ .Annotations.description }}
{{ end }}  处理指引：{{ .Annotations.runbook_url }}
  开始时间（北京时间）：{{ template "junheng.time" .StartsAt }}{{ if eq .Status "resolved" }}，恢复时间：{{ template "junheng.time" .EndsAt }}{{ end }}
{{ end }}

{{ define "junheng.text" }}{{ if eq .CommonLabels.finding "data_missing" }}{{ template "junheng.data_missing.text" . }}{{ else }}{{ template "junheng.subject" . }}
{{ if .Alerts.Firing }}
未达标：
{{ range .Alerts.Firing }}- {{ template "junheng.alert" . }}{{ end }}{{ end }}{{ if .Alerts.Resolved }}
已恢复：
{{ range .Alerts.Resolved }}- {{ template "junheng.alert" . }}{{ end }}{{ end }}
—— junheng 义务教育优质均衡发展监测（本邮件由系统自动发送）
{{ end }}{{ end }}

{{ define "junheng.data_missing.text" }}{{ template "junheng.subject" . }}
{{ if .Alerts.Firing }}
数据未报齐，以下各项尚无法判定是否达标 / figures missing, so these cannot be judged yet:
{{ range .Alerts.Firing }}- {{ template "junheng.alert" . }}{{ end }}{{ end }}{{ if .Alerts.Resolved }}
已解除（数据已报送，或已不在评估范围内） / resolved (reported, or no longer assessed):
{{ range .Alerts.Resolved }}- {{ template "junheng.alert" . }}{{ end }}{{ end }}
—— junheng 义务教育优质均衡发展监测（本邮件由系统自动发送）
{{ end }}

{{ define "junheng.html" }}<html><body><pre style="font-family: sans-serif">{{ template "junheng.text" . }}</pre></body></html>{{ end }}

{{/* 发给运维的区县告警：负责人名录中没有该区县（常见原因：按区县名称而非区县代码登记）。
     A district's alerts sent to the operators: no lead is listed under the district's id. */}}
{{ define "junheng.no_lead.notice" }}''' + NO_LEAD_NOTICE + r'''
{{ end }}

{{ define "junheng.no_lead.subject" }}【未配置负责人 / no lead】区县 {{ .CommonLabels.district }}：{{ template "junheng.subject" . }}{{ end }}

{{ define "junheng.no_lead.text" }}{{ template "junheng.no_lead.notice" . }}
{{ template "junheng.text" . }}{{ end }}

{{ define "junheng.no_lead.html" }}<html><body><pre style="font-family: sans-serif">{{ template "junheng.no_lead.text" . }}</pre></body></html>{{ end }}
'''
