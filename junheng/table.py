"""The assessment report as a bureau officer reads it in a terminal."""

from __future__ import annotations

import re
import unicodedata

from rules.indicators import BY_ID
from rules.messages import LEVEL_ZH
from schemas.report import Report

SEVERITY_ZH = {"critical": "严重", "warning": "警告", "info": "提示"}


def render_table(report: Report) -> str:
    """Per district and level: each indicator's value, CV and limit, compliant schools, then the
    violations and what could not be evaluated."""
    out = [f"均衡发展监测 junheng — 评估日期 as of {report.as_of} — 规则包 rule pack {report.rule_pack}", ""]
    undetermined = _undetermined(report)
    for district in report.districts:
        out.append(f"■ {_one_line(district.name or '')}（{district.id}）")
        for level, section in district.sections.items():
            unknown = undetermined.get((district.id, level), 0)
            out.append(
                f"  {LEVEL_ZH.get(level, level)} {level}: 学生 students {section.students:,}，"
                f"学校 schools {section.schools}，达标学校 compliant {section.schools_compliant}/{section.schools}"
                + (f"（{unknown} 所未能判定 undetermined）" if unknown else "")
            )
            rows = [["指标 indicator", "均值 mean", "差异系数 CV", "上限 limit", ""]]
            for ind, figures in section.indicators.items():
                rows.append([
                    f"{ind} {BY_ID[ind].name_zh}",
                    _num(figures.value),
                    _num(figures.cv, 3),
                    _num(figures.cv_limit, 2),
                    _verdict(figures),
                ])
            out.extend("    " + line for line in _grid(rows))
        out.append("")
    out.append(_violations(report))
    if report.not_evaluated:
        out.append("")
        out.append(f"未能评估 not evaluated (data not reported / 数据未报送): {len(report.not_evaluated)}")
        for item in report.not_evaluated[:20]:
            if item.message_zh:  # says how many schools did not report, which `missing` cannot
                out.append(f"  {item.rule:<22} {_one_line(item.message_zh)}")
                continue
            place = item.school or item.district
            out.append(f"  {item.rule:<22} {place} {item.section or ''}: {', '.join(item.missing)}")
        if len(report.not_evaluated) > 20:
            out.append(f"  … {len(report.not_evaluated) - 20} more / 另有 {len(report.not_evaluated) - 20} 项")
    return "\n".join(out)


def _verdict(figures) -> str:
    """An indicator's CV against its limit; one that some schools of the level did not report is
    undetermined: shown as "—", like an indicator without a rule, it read as nothing to check."""
    if figures.ok is not None:
        return "✓" if figures.ok else "✗ 超标"
    # A limit to judge by, and schools that did not report: the CV rule could not decide.
    return "? 未能判定" if figures.schools_unreported and figures.cv_limit is not None else "—"


def _undetermined(report: Report) -> dict[tuple[str, str], int]:
    """Sections whose compliance could not be decided for want of data, by district and level:
    without them, "compliant 0/2" read as two failing schools when neither had reported a figure."""
    counts: dict[tuple[str, str], int] = {}
    for school in report.schools:
        if school.excluded is None:
            for level, section in school.sections.items():
                if section.compliant is None:
                    counts[school.district, level] = counts.get((school.district, level), 0) + 1
    return counts


def _violations(report: Report) -> str:
    if not report.violations:
        return "违规 violations: 无 none ✓"
    counts = {}
    for v in report.violations:
        counts[v.severity] = counts.get(v.severity, 0) + 1
    summary = "，".join(f"{SEVERITY_ZH.get(k, k)} {k} {n}" for k, n in sorted(counts.items()))
    lines = [f"违规 violations: {len(report.violations)}（{summary}）"]
    for v in report.violations:
        lines.append(f"  [{SEVERITY_ZH.get(v.severity, v.severity)}] {v.rule:<22} {_one_line(v.message_zh)}")
    return "\n".join(lines)


#: Control characters, line and paragraph separators, and bidirectional marks, embeddings,
#: overrides and isolates (which reorder what follows them on a terminal's line: 56 read as 65).
_NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _one_line(text: str) -> str:
    """A name, or a message naming one, as one line of the table: a line break in a school name
    (Alt+Enter in a spreadsheet cell) split its violation over two lines, and a bidi override
    turned the rest of the line around. Such characters are shown escaped (\\n, \\u202e)."""
    return _NOT_ONE_LINE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _grid(rows: list[list[str]]) -> list[str]:
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(_pad(cell, widths[i], right=0 < i < 4) for i, cell in enumerate(row)).rstrip() for row in rows]


def _width(text: str) -> int:
    """Display width: CJK characters take two terminal columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * (width - _width(text))
    return fill + text if right else text + fill
