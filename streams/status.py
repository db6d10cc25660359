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
    """Each worker's report (only the given districts, when named); a worker that holds none of
    the named districts gives none."""
    reports = []
    for url in urls:
        asked = list(districts) if districts else None
        while True:
            try:
                reports.append(_fetch_report(url, asked, timeout))
                break
            except _NotHeld as exc:
                # A worker answers 404 naming the districts it does not hold (each lives on one
                # worker): it is asked again for the others it may hold.
                left = [d for d in asked or () if d not in exc.districts]
                if asked is None or len(left) == len(asked):  # it named none of those asked
                    raise _answered_error(url, exc.error) from None
                if not left:
                    break
                asked = left
    return reports


class _NotHeld(Exception):
    """A worker's 404 naming districts it does not hold."""

    def __init__(self, error: urllib.error.HTTPError, districts: list[str]):
        super().__init__(districts)
        self.error, self.districts = error, districts


def _fetch_report(url: str, districts: list[str] | None, timeout: float) -> Report:
    query = urllib.parse.urlencode([("district", d) for d in districts or []])
    target = f"{url.rstrip('/')}/report{'?' + query if query else ''}"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as resp:
            return Report.model_validate_json(resp.read())
    except urllib.error.HTTPError as exc:  # it answered, with an error: not "not reachable"
        said = _error_body(exc)
        if exc.code == 404 and isinstance(said.get("districts"), list):
            raise _NotHeld(exc, [str(d) for d in said["districts"]]) from None
        raise _answered_error(url, exc, said.get("error")) from None
    except (urllib.error.URLError, OSError) as exc:
        raise UserError(f"{url}: worker not reachable ({getattr(exc, 'reason', exc)}) / 无法连接工作进程") from None
    except ValidationError as exc:
        raise UserError(f"{url}: did not answer with a junheng report ({_first_problem(exc)}) / "
                        f"返回的不是 junheng 评估报告") from None
    except json.JSONDecodeError:
        raise UserError(f"{url}: did not answer with a junheng report / 返回的不是 junheng 评估报告") from None


def _first_problem(exc: ValidationError) -> str:
    """Where a report first departs from the contract and how (a verdict `"ok": "no"`): a worker
    of another version, or something else at its address, is then told apart. One line, since
    the worker's keys are in it."""
    from schemas.loading import printable

    err = exc.errors()[0]
    return printable(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")


def _error_body(exc: urllib.error.HTTPError) -> dict:
    """The JSON object a worker's error answer carries ({"error": ..., "districts": [...]}), or {}."""
    try:
        body = json.loads(exc.read(64 * 1024))
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _answered_error(url: str, exc: urllib.error.HTTPError, said: object = None) -> UserError:
    # The worker's own words, when it gave any (a 503 says it is taking over its partitions).
    why = f": {said}" if isinstance(said, str) and said else ""
    return UserError(f"{url}: answered HTTP {exc.code} {exc.reason} instead of a report{why} / "
                     f"工作进程返回 HTTP {exc.code}，没有返回评估报告")


def check_districts_held(reports: list[Report], districts: list[str]) -> None:
    """Refuse districts no worker holds: a report without them reads as all clear, and a
    mistyped district id printed 'violations: none ✓' with exit code 0."""
    held = {d.id for report in reports for d in report.districts}
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
