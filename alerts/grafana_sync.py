"""`junheng grafana sync`: push the generated dashboards and alert rules to a running Grafana
through its HTTP API (grafana-client), idempotently: fixed uids, dashboards saved with
overwrite, alert rules created when absent and updated when present.

Contact points and notification policies are left to file provisioning, because their secrets
are `$__file{…}` references only Grafana's provisioning loader resolves.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException

from alerts.grafana_alerting import FOLDER_TITLE, FOLDER_UID
from alerts.windows import seconds


class SyncError(Exception):
    """A sync that could not be done; the message is for the user."""


def sync(url: str, token: str, grafana_dir: Path) -> str:
    """Push `grafana_dir/dashboards/*.json` and `grafana_dir/provisioning/alerting/rules.yaml`;
    returns a one-line summary."""
    dashboards = _read_dashboards(Path(grafana_dir) / "dashboards")
    groups = _read_rule_groups(Path(grafana_dir) / "provisioning" / "alerting" / "rules.yaml")
    api = GrafanaApi.from_url(url, credential=token)
    try:
        _ensure_folder(api)
        for dashboard in dashboards:
            _check_answer(api.dashboard.update_dashboard({"dashboard": dashboard, "folderUid": FOLDER_UID,
                                                          "overwrite": True, "message": "junheng grafana sync"}),
                          uid=dashboard["uid"])
        rules = 0
        for group in groups:
            for rule in group["rules"]:
                _put_rule(api, rule)
                rules += 1
            _check_answer(api.alertingprovisioning.update_rule_group(
                FOLDER_UID, group["title"], {"title": group["title"], "folderUid": FOLDER_UID,
                                             "interval": group["interval"], "rules": group["rules"]}),
                title=group["title"])
    except GrafanaException as exc:
        raise SyncError(f"Grafana at {url} refused the sync: {_refusal(exc)} / Grafana 拒绝了同步请求") from None
    except ValueError:  # a body that is not Grafana's JSON: a proxy's sign-in page, another service
        raise SyncError(f"{url} did not answer as Grafana's API does / 该地址返回的不是 Grafana API 的应答") from None
    except OSError as exc:  # connection refused, name not resolved, TLS failures
        raise SyncError(f"cannot reach Grafana at {url}: {_innermost(exc)} / 无法连接 Grafana") from None
    return (f"synced {len(dashboards)} dashboards and {rules} alert rules to {url} / "
            f"已同步 {len(dashboards)} 个看板和 {rules} 条告警规则")


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


def _read_dashboards(directory: Path) -> list[dict]:
    files = sorted(directory.glob("*.json"))
    if not files:
        raise SyncError(f"{directory}: no dashboards (run `junheng render grafana` first) / 未找到看板文件")
    try:
        return [json.loads(f.read_text(encoding="utf-8")) for f in files]
    except (OSError, json.JSONDecodeError) as exc:
        raise SyncError(f"{directory}: cannot read a dashboard ({exc}) / 无法读取看板文件") from None


def _read_rule_groups(path: Path) -> list[dict]:
    """The provisioning file's groups in the API's shape (folder uid, interval in seconds)."""
    if not path.is_file():
        return []
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SyncError(f"{path}: cannot read the alert rules ({exc}) / 无法读取告警规则文件") from None
    groups = []
    for group in document.get("groups", []):
        rules = [{**rule, "folderUID": FOLDER_UID, "ruleGroup": group["name"], "orgID": group.get("orgId", 1)}
                 for rule in group["rules"]]
        groups.append({"title": group["name"], "interval": seconds(group["interval"]), "rules": rules})
    return groups
