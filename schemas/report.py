"""The assessment report (contracts.md §2), written by `junheng assess` and `junheng status`.

Fields beyond the contract's are optional extensions: names, why a school is left out, which
figures were split between sections, rules that could not be evaluated for want of data, and the
event that last moved a violation across its line.

Verdicts (`ok`, `compliant`) are `Boolean`: true, false or null, as the JSON Schema says. Read
leniently, a report's `"ok": "no"` or `1` became a verdict no worker had written.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from schemas.booleans import Boolean


class Out(BaseModel):
    # Read back only by `junheng status`, from a worker's /report: a worker upgraded before the
    # operator's command adds optional fields (`cause`, `schools_unreported` were such additions),
    # and a reader that forbade them refused the whole report as "not a junheng report".
    model_config = ConfigDict(extra="ignore")


def _absent(value) -> bool:
    return value is None


class DistrictIndicator(Out):
    value: float | None
    cv: float | None
    cv_limit: float | None
    ok: Boolean | None
    # Written only when some did not report, so that the report of a district whose schools all
    # reported reads as the contract's.
    schools_unreported: int | None = Field(
        None, exclude_if=_absent,
        description="School sections of the level that did not report the indicator's figure, when "
                    "any did not: `value` and `cv` are over the others only")


class DistrictSection(Out):
    students: int
    schools: int
    schools_compliant: int
    indicators: dict[str, DistrictIndicator]


class DistrictReport(Out):
    id: str
    name: str | None = None
    sections: dict[str, DistrictSection]


class SchoolIndicator(Out):
    value: float | None
    standard: float | None
    ok: Boolean | None


class SchoolSection(Out):
    compliant: Boolean | None
    indicators: dict[str, SchoolIndicator]
    split_by_students: list[str] = Field(default_factory=list)


class SchoolReport(Out):
    id: str
    district: str
    name: str | None = None
    excluded: str | None = None
    sections: dict[str, SchoolSection]


class Cause(Out):
    """The event that last moved a violation across its line (live reports only)."""

    event_id: str
    type: str
    source: str
    occurred_at: dt.datetime


class Violation(Out):
    rule: str
    district: str
    school: str | None
    section: str | None
    value: float
    limit: float
    severity: str
    message_zh: str
    message_en: str
    cause: Cause | None = None


class NotEvaluated(Out):
    """A rule left undecided at a place, for want of the figures `missing` names. A district's
    CV that some of its schools of the level did not report is one (its `ok` is null): the
    standard measures every school. Such a finding says how many did not report, in words too."""

    rule: str
    district: str
    school: str | None
    section: str | None
    missing: list[str]
    schools_unreported: int | None = None
    message_zh: str | None = None
    message_en: str | None = None


class Report(Out):
    as_of: dt.date
    rule_pack: str
    districts: list[DistrictReport]
    schools: list[SchoolReport]
    violations: list[Violation]
    not_evaluated: list[NotEvaluated] = Field(default_factory=list)
