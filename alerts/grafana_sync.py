"""`junheng grafana sync`: push the generated dashboards and alert rules to a running Grafana
through its HTTP API (grafana-client), idempotently: fixed uids, dashboards saved with
overwrite, alert rules created when absent and updated when present.

Contact points and notification policies are left to file provisioning, because their secrets
are `$__file{…}` references only Grafana's provisioning loader resolves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from alerts.config_file import load_config
from alerts.grafana_alerting import FOLDER_TITLE, FOLDER_UID
from alerts.windows import Duration, seconds


class SyncError(Exception):
    """A sync that could not be done; the message is for the user."""


def sync(url: str, token: str, grafana_dir: Path) -> str:
    """Push `grafana_dir/dashboards/*.json` and `grafana_dir/provisioning/alerting/rules.yaml`;
    returns a one-line summary. A failure part way says how far the sync got."""
    dashboards = _read_dashboards(Path(grafana_dir) / "dashboards")
    groups = _read_rule_groups(Path(grafana_dir) / "provisioning" / "alerting" / "rules.yaml")
    api = GrafanaApi.from_url(url, credential=token)
    pushed = _Pushed(len(dashboards), sum(len(group["rules"]) for group in groups))
    try:
        _push(api, dashboards, groups, pushed)
    except GrafanaException as exc:
        raise SyncError(pushed.told(f"Grafana at {url} refused the sync: {_refusal(exc)}", "Grafana 拒绝了同步请求")) from None
    except ValueError:  # a body that is not Grafana's JSON: a proxy's sign-in page, another service
        raise SyncError(pushed.told(f"{url} did not answer as Grafana's API does", "该地址返回的不是 Grafana API 的应答")) from None
    except OSError as exc:  # connection refused, name not resolved, TLS failures
        raise SyncError(pushed.told(f"cannot reach Grafana at {url}: {_innermost(exc)}", "无法连接 Grafana")) from None
    return (f"synced {len(dashboards)} dashboards and {pushed.rules} alert rules to {url} / "
            f"已同步 {len(dashboards)} 个看板和 {pushed.rules} 条告警规则")


class _Pushed:
    """How far a sync got. Grafana has no transaction across calls, so a sync that fails part way
    leaves what it pushed pushed; the user is told how much, and that running it again finishes
    it (every call overwrites by uid)."""

    def __init__(self, dashboards_total: int, rules_total: int):
        self.dashboards_total, self.rules_total = dashboards_total, rules_total
        self.dashboards = self.rules = 0

    def told(self, english: str, chinese: str) -> str:
        """The failure's one line, with the sync's progress when it had pushed anything."""
        if not self.dashboards and not self.rules:
            return f"{english} / {chinese}"
        return (f"{english} ({self.dashboards} of {self.dashboards_total} dashboards and {self.rules} of "
                f"{self.rules_total} alert rules were pushed before it; run the sync again to finish) / "
                f"{chinese}（此前已推送 {self.dashboards}/{self.dashboards_total} 个看板、"
                f"{self.rules}/{self.rules_total} 条告警规则，重新运行同步即可补全）")


def _push(api: GrafanaApi, dashboards: list[dict], groups: list[dict], pushed: _Pushed) -> None:
    _ensure_folder(api)
    for dashboard in dashboards:
        _check_answer(api.dashboard.update_dashboard({"dashboard": dashboard, "folderUid": FOLDER_UID,
                                                      "overwrite": True, "message": "junheng grafana sync"}),
                      uid=dashboard["uid"])
        pushed.dashboards += 1
    for group in groups:
        for rule in group["rules"]:
            _put_rule(api, rule)
            pushed.rules += 1
        _check_answer(api.alertingprovisioning.update_rule_group(
            FOLDER_UID, group["title"], {"title": group["title"], "folderUid": FOLDER_UID,
                                         "interval": group["interval"], "rules": group["rules"]}),
            title=group["title"])


class _NotGrafana(ValueError):
    """An answer that is not what Grafana's API gives."""


def _check_answer(answer, **expected) -> None:
    """Grafana answers each call with a JSON object naming what it acted on. Anything else must
    not pass for a sync: a proxy's sign-in page answered 200 to every call, and the sync said it
    had pushed everything."""
    if not isinstance(answer, dict) or any(answer.get(key) != value for key, value in expected.items()):
        raise _NotGrafana


def _refusal(exc: GrafanaException) -> str:
    """Grafana's reason on one line; a server that is not Grafana may answer with a whole page."""
    text = " ".join(str(exc).split())
    if "<html" in text.lower():
        return f"HTTP {exc.status_code} with an HTML page, not Grafana's API"
    return text if len(text) <= 300 else text[:300] + "…"


def _innermost(exc: BaseException) -> str:
    """What failed underneath the HTTP client's layers ("Connection refused", a name that does not
    resolve), not the layers' own wording."""
    while True:
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = exc.__cause__ or next((a for a in exc.args[:1] if isinstance(a, BaseException)), None)
        if inner is None:
            break
        exc = inner
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _ensure_folder(api: GrafanaApi) -> None:
    try:
        _check_answer(api.folder.get_folder(FOLDER_UID), uid=FOLDER_UID)
    except GrafanaException as exc:
        if exc.status_code != 404:
            raise
        _check_answer(api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID), uid=FOLDER_UID)


def _put_rule(api: GrafanaApi, rule: dict) -> None:
    try:
        _check_answer(api.alertingprovisioning.get_alertrule(rule["uid"]), uid=rule["uid"])
    except GrafanaException as exc:
        if exc.status_code != 404:
            raise
        _check_answer(api.alertingprovisioning.create_alertrule(rule), uid=rule["uid"])
        return
    _check_answer(api.alertingprovisioning.update_alertrule(rule["uid"], rule), uid=rule["uid"])


# --- what the sync reads ------------------------------------------------------------------
# Checked whole before the first call, so a broken file never leaves Grafana half-synced.

# Grafana's short uids. A rule's uid and a group's name go into the URL paths the sync calls, as
# they are (grafana-client does not quote them): a `/`, `?`, `#` or `%` there would call another path.
Uid = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
GroupName = Annotated[str, Field(pattern=r"^[^/?#%]+$")]


class _Sent(BaseModel):
    """An object passed to Grafana as it is, apart from the uid it is saved by; any other field
    must be something JSON can carry (not a YAML date, not NaN)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    __pydantic_extra__: dict[str, JsonValue]
    uid: Uid


class _RuleGroup(BaseModel):
    model_config = ConfigDict(extra="allow")  # `folder`: the sync puts every group in junheng's
    name: GroupName
    interval: Duration
    orgId: int = 1
    rules: list[_Sent]


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="allow")  # `apiVersion`, `deleteRules`: file provisioning's
    groups: list[_RuleGroup] = []


def _read_dashboards(directory: Path) -> list[dict]:
    files = sorted(directory.glob("*.json"))
    if not files:
        raise SyncError(f"{directory}: no dashboards (run `junheng render grafana` first) / 未找到看板文件")
    return [load_config(f, _Sent, SyncError, "看板文件", syntax="JSON").model_dump() for f in files]


def _read_rule_groups(path: Path) -> list[dict]:
    """The provisioning file's groups in the API's shape (folder uid, interval in seconds); none
    where there is no file, but a directory or a broken link in its place is refused."""
    if not os.path.lexists(path):
        return []
    return [_api_group(group) for group in load_config(path, _RulesFile, SyncError, "告警规则文件").groups]


def _api_group(group: _RuleGroup) -> dict:
    rules = [{**rule.model_dump(), "folderUID": FOLDER_UID, "ruleGroup": group.name, "orgID": group.orgId}
             for rule in group.rules]
    return {"title": group.name, "interval": seconds(group.interval), "rules": rules}
