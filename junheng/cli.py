"""The `junheng` command line.

Exit codes: 0 all well (for `assess` and `status`: every rule evaluated, none violated), 1 the
assessment found violations, 3 it found none but is incomplete: some rules could not be evaluated
for want of data (one line on stderr says how many), 2 the user's input (a file, a flag, a broker
address) could not be used, or the output could not be written: one line on stderr says why, never
a traceback; 130 interrupted; 141 the reader of the output left, as with SIGPIPE.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import os
import signal
import sys
from collections.abc import Callable, Sequence

from alerts import cli as alerts_cli
from streams import cli as streams_cli
from junheng.errors import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, EXIT_VIOLATIONS, UserError


def main(argv: Sequence[str] | None = None) -> int:
    """Run a junheng command and return its exit code."""
    # Under a GBK or other non-UTF-8 locale a character the terminal's encoding lacks (✓) was a
    # UnicodeEncodeError traceback: escaped as \uXXXX it still shows, and JSON stays valid.
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        code = args.run(args)
        sys.stdout.flush()  # a failing pipe or disk shows here, not at exit as "Exception ignored"
        return code
    except UserError as exc:
        print(f"junheng: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`junheng assess … | head`): it took what it wanted, so say nothing,
        # and exit as a process that SIGPIPE ended would.
        _drop_stdout()
        return 128 + signal.SIGPIPE
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        _drop_stdout()
        print(f"junheng: cannot write the output ({exc.strerror}) / 无法写出结果（磁盘空间不足）", file=sys.stderr)
        return EXIT_USAGE


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit fails no more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors (an unknown flag, a choice not offered) in Chinese too."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} / 参数有误，用 {self.prog} -h 查看用法\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="junheng",
        description="义务教育优质均衡发展监测 — monitoring of compulsory education's high-quality balanced development",
    )
    commands = parser.add_subparsers(metavar="COMMAND")
    for name, (configure, help_text) in COMMANDS.items():
        configure(commands.add_parser(name, help=help_text, description=help_text))
    return parser


# --- assess ------------------------------------------------------------------------------------

def _configure_assess(p: argparse.ArgumentParser) -> None:
    # `--rules` takes every name after it, so `assess --rules suzhou-sip-2023 rural.json` left no
    # snapshot and was refused ("required: snapshot") though one was given: the snapshot is
    # optional to argparse, and missing, it is the last name after --rules (see _assess).
    p.usage = "%(prog)s [-h] [--rules PACK [PACK ...]] [--as-of AS_OF] [--format {table,json}] snapshot"
    p.add_argument("snapshot", nargs="?", help="snapshot file, JSON or YAML (contracts.md §1)")
    p.add_argument("--rules", nargs="+", default=["national-2017"], metavar="PACK",
                   help="rule packs by built-in name or YAML path, later ones over earlier (default: national-2017)")
    p.add_argument("--as-of", type=_date, help="date the rules are taken at (default: the snapshot's as_of)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(run=_assess, parser=p)


def _assess(args) -> int:
    from rules.evaluate import assess

    if args.snapshot is None:
        if len(args.rules) < 2:
            args.parser.error("the following arguments are required: snapshot")
        args.snapshot = args.rules.pop()
    snapshot = read_snapshot(args.snapshot)
    pack = read_packs(args.rules)
    report = assess(snapshot, pack, args.as_of)
    print_report(report, args.format)
    return report_exit(report)


def report_exit(report) -> int:
    """The exit code of a printed report (`assess`, `status`); an incomplete one says so on stderr."""
    code = exit_code(report)
    if code == EXIT_INCOMPLETE:
        # After the report, also when stdout and stderr go to one file: the note is its last line.
        sys.stdout.flush()
        print(incomplete_note(report.not_evaluated), file=sys.stderr)
    return code


def exit_code(report) -> int:
    """1 when anything is violated; else 3 when some rule could not be evaluated, since a rule
    left undecided (a CV some schools did not report) is not a rule that holds; else 0."""
    if report.violations:
        return EXIT_VIOLATIONS
    return EXIT_INCOMPLETE if report.not_evaluated else EXIT_OK


def incomplete_note(not_evaluated) -> str:
    """The line on stderr of an assessment that found nothing violated but is incomplete, counting
    its checks not evaluated and the rules they are of: one figure missing at two schools leaves
    five checks undecided (each school's rule and compliance, the district's CV) of three rules."""
    checks, rules = len(not_evaluated), len({finding.rule for finding in not_evaluated})
    what = f"{_count(checks, 'check')} of {_count(rules, 'rule')}" if checks != rules else _count(rules, "rule")
    what_zh = f"{rules} 项规则的 {checks} 处检查" if checks != rules else f"{rules} 项规则"
    return (f"junheng: nothing found violated, but the assessment is incomplete: {what} could not be "
            f"evaluated for want of data (see \"not evaluated\" in the report) / 未发现违规，但评估不完整："
            f"{what_zh}因数据未报送未能评估（见报告中的“未能评估”）")


def _count(n: int, noun: str) -> str:
    return f"1 {noun}" if n == 1 else f"{n} {noun}s"


def print_report(report, fmt: str) -> None:
    """Print a report as the bureau's table or as contract JSON."""
    if fmt == "json":
        print(report.model_dump_json(indent=2))
    else:
        from junheng.table import render_table

        print(render_table(report))


def read_snapshot(path: str):
    """A snapshot file, or a UserError naming what is wrong with it."""
    from schemas.loading import SnapshotError, load_snapshot

    try:
        return load_snapshot(path)
    except SnapshotError as exc:
        raise UserError(str(exc)) from None


def read_packs(names: list[str]):
    """Rule packs by name or path, or a UserError naming what is wrong with them."""
    from rules.pack import PackError, load_packs

    try:
        return load_packs(names)
    except PackError as exc:
        raise UserError(str(exc)) from None


# --- example -----------------------------------------------------------------------------------

def _configure_example(p: argparse.ArgumentParser) -> None:
    from junheng.examples import EXAMPLES

    p.add_argument("name", choices=sorted(EXAMPLES), help="which example")
    p.add_argument("--out", required=True, help="file to write the snapshot to")
    p.add_argument("--seed", type=int, help="random seed (default: the example's own)")
    p.set_defaults(run=_example)


def _example(args) -> int:
    from pathlib import Path

    from junheng.examples import write_example

    try:
        snapshot = write_example(args.name, Path(args.out), args.seed)
    except OSError as exc:
        raise UserError(f"{args.out}: cannot write ({exc.strerror}) / 无法写入文件") from None
    print(f"wrote {args.out}: {len(snapshot.schools)} schools, "
          f"{sum(s.students for s in snapshot.schools):,} students / 已生成示例快照")
    return EXIT_OK


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r} / 日期格式应为 YYYY-MM-DD") from None


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], str]] = {
    "assess": (_configure_assess, "assess a snapshot against rule packs / 按规则包评估快照"),
    "example": (_configure_example, "write an example snapshot / 生成示例快照"),
    "dev": (streams_cli.configure_dev, "embedded broker + worker + SIP example + simulator / 一键本地运行"),
    "worker": (streams_cli.configure_worker, "run a Faust worker / 运行流处理工作进程"),
    "load": (streams_cli.configure_load, "publish a snapshot as events / 将快照作为事件发布"),
    "simulate": (streams_cli.configure_simulate, "publish simulated changes / 发布模拟变更事件"),
    "status": (streams_cli.configure_status, "the live assessment from running workers / 查询实时评估"),
    "bench": (streams_cli.configure_bench, "measure throughput, latency, memory, metrics / 性能基准"),
    "render": (alerts_cli.configure_render, "generate Prometheus, Alertmanager or Grafana config / 生成告警与看板配置"),
    "grafana": (alerts_cli.configure_grafana, "push dashboards and alert rules to Grafana / 同步 Grafana"),
}


def run() -> None:
    """Console-script entry point."""
    try:
        code = main()
    except KeyboardInterrupt:  # before a command runs: while its parser's modules load
        code = 130
    sys.exit(code)
