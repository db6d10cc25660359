"""The `junheng render` and `junheng grafana sync` commands."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from junheng.errors import UserError

TARGETS = ("prometheus", "alertmanager", "grafana")
TOKEN_ENV = "JUNHENG_GRAFANA_TOKEN"


def configure_render(parser: argparse.ArgumentParser) -> None:
    """`junheng render prometheus|alertmanager|grafana --out DIR [--rules PACK ...] [--leads FILE]`."""
    parser.add_argument("target", choices=TARGETS, help="what to generate")
    parser.add_argument("--out", required=True, type=Path, help="directory to write into")
    parser.add_argument("--rules", nargs="+", default=["national-2017"], metavar="PACK",
                        help="rule packs by built-in name or YAML path, later over earlier (default: national-2017)")
    parser.add_argument("--leads", type=Path,
                        help="district-leads directory YAML (required for alertmanager and grafana)")
    parser.set_defaults(run=run_render)


def run_render(args: argparse.Namespace) -> int:
    """Generate one target's files from the rule packs (and the leads directory)."""
    from alerts import render

    pack = _packs(args.rules)
    windows = _windows()
    if args.target != "prometheus" and args.leads is None:
        raise UserError(f"render {args.target} needs --leads FILE / 生成 {args.target} 配置需要 --leads 负责人名录")
    leads = _leads(args.leads) if args.leads is not None else None
    try:
        if args.target == "prometheus":
            written = render.render_prometheus(args.out, pack, windows)
        elif args.target == "alertmanager":
            written = render.render_alertmanager(args.out, leads, pack, windows)
        else:
            written = render.render_grafana(args.out, pack, leads, windows)
    except OSError as exc:
        raise UserError(f"{args.out}: cannot write ({exc.strerror}) / 无法写入输出目录") from None
    for path in written:
        print(path)
    return 0


def configure_grafana(parser: argparse.ArgumentParser) -> None:
    """`junheng grafana sync --url URL [--token-file FILE] --dir DIR`."""
    actions = parser.add_subparsers(metavar="ACTION", dest="action", required=True)
    sync = actions.add_parser("sync", help="push dashboards and alert rules to a Grafana / 推送看板和告警规则到 Grafana")
    sync.add_argument("--url", required=True, help="Grafana base URL, e.g. https://grafana.example.cn")
    sync.add_argument("--token-file", type=Path,
                      help=f"file holding a service-account token (default: the {TOKEN_ENV} environment variable)")
    sync.add_argument("--dir", required=True, type=Path, help="the generated deploy/grafana directory")
    sync.set_defaults(run=run_grafana_sync)


def run_grafana_sync(args: argparse.Namespace) -> int:
    """Push the generated dashboards and alert rules to a Grafana, overwriting by uid."""
    from alerts.grafana_sync import SyncError, sync
    from junheng.web import check_web_address

    check_web_address(args.url, "https://grafana.example.cn", " Grafana ")
    token = _token(args.token_file)
    try:
        summary = sync(args.url, token, args.dir)
    except SyncError as exc:
        raise UserError(str(exc)) from None
    print(summary)
    return 0


def _token(token_file: Path | None) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(f"{token_file}: cannot read the token ({exc.strerror}) / 无法读取令牌文件") from None
        except UnicodeDecodeError as exc:
            raise UserError(f"{token_file}: not UTF-8 text (byte {exc.start}) / 令牌文件不是 UTF-8 文本") from None
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UserError(f"no Grafana token: give --token-file or set {TOKEN_ENV} / 未提供 Grafana 令牌")
    # A token goes into an HTTP header, which cannot carry a line break or (through http.client) a
    # character beyond Latin-1; the request failed before it was sent and the sync blamed Grafana.
    if not re.fullmatch(r"[!-~]+", token):
        raise UserError(f"the Grafana token ({token_file or TOKEN_ENV}) has a space, a line break or a "
                        "character that is not ASCII, which no token has / Grafana 令牌含有空格、换行或非 ASCII 字符")
    return token


def _packs(names: list[str]):
    from rules.pack import PackError, load_packs

    try:
        return load_packs(names)
    except PackError as exc:
        raise UserError(str(exc)) from None


def _windows():
    from alerts.windows import WindowsError, load_windows

    try:
        return load_windows()
    except WindowsError as exc:
        raise UserError(str(exc)) from None


def _leads(path: Path):
    from alerts.leads import LeadsError, load_leads

    try:
        return load_leads(path)
    except LeadsError as exc:
        raise UserError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Run the commands on their own (`python -m alerts.cli render …`), as `junheng` will."""
    parser = argparse.ArgumentParser(prog="junheng")
    commands = parser.add_subparsers(metavar="COMMAND", required=True)
    configure_render(commands.add_parser("render"))
    configure_grafana(commands.add_parser("grafana"))
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UserError as exc:
        print(f"junheng: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
