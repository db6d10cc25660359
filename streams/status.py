"""Reading the live assessment from running workers' `/report` endpoints."""

from __future__ import annotations

import json
from collections import Counter
import urllib.error
import urllib.parse
import urllib.request

from pydantic import ValidationError

from junheng.errors import UserError
from schemas.report import Report


def fetch_reports(urls: list[str], districts: list[str] | None = None, timeout: float = 10) -> list[Report]:
    """Each worker's report (only the given districts, when named)."""
    query = urllib.parse.urlencode([("district", d) for d in districts or []])
    reports = []
    for url in urls:
        target = f"{url.rstrip('/')}/report{'?' + query if query else ''}"
        try:
            with urllib.request.urlopen(target, timeout=timeout) as resp:
                reports.append(Report.model_validate_json(resp.read()))
        except urllib.error.HTTPError as exc:  # it answered, with an error: not "not reachable"
            raise UserError(f"{url}: answered HTTP {exc.code} {exc.reason} instead of a report / "
                            f"工作进程返回 HTTP {exc.code}，没有返回评估报告") from None
        except (urllib.error.URLError, OSError) as exc:
            raise UserError(f"{url}: worker not reachable ({getattr(exc, 'reason', exc)}) / 无法连接工作进程") from None
        except (ValidationError, json.JSONDecodeError):
            raise UserError(f"{url}: did not answer with a junheng report / 返回的不是 junheng 评估报告") from None
    return reports


def check_districts_held(report: Report, districts: list[str]) -> None:
    """Refuse districts no worker holds: a report without them reads as all clear, and a
    mistyped district id printed 'violations: none ✓' with exit code 0."""
    held = {d.id for d in report.districts}
    missing = [d for d in districts if d not in held]
    if missing:
        names = ", ".join(missing)
        raise UserError(f"--district {names}: no worker holds it ({len(held)} districts held by the workers asked) / "
                        f"所询问的工作进程均未持有区县 {names}")


def merge_reports(reports: list[Report]) -> Report:
    """One report from the workers' reports; each district lives on exactly one worker."""
    if not reports:
        raise UserError("no worker answered / 没有工作进程应答")
    held = Counter(d.id for r in reports for d in r.districts)
    twice = sorted(d for d, times in held.items() if times > 1)
    if twice:
        # Merged, they counted every violation twice (one worker given as 127.0.0.1 and localhost).
        raise UserError(f"districts {', '.join(twice[:5])}{' …' if len(twice) > 5 else ''} answered by two --url: the "
                        f"same worker given twice? / 同一区县由两个地址返回，是否重复指定了同一工作进程")
    first = reports[0]

    # Stable sorts keep each worker's own rule order within a place; districts never overlap.
    def place(item):
        return (item.district, item.school or "", item.section or "")

    return Report(
        as_of=first.as_of, rule_pack=first.rule_pack,
        districts=sorted((d for r in reports for d in r.districts), key=lambda d: d.id),
        schools=sorted((s for r in reports for s in r.schools), key=lambda s: s.id),
        violations=sorted((v for r in reports for v in r.violations), key=place),
        not_evaluated=sorted((n for r in reports for n in r.not_evaluated), key=place),
    )
