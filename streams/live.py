"""The worker's live assessment: per-school results and per-district sums kept up to date.

A school's change re-evaluates that school and replaces its contribution to its district's sums;
the district is then re-evaluated from the sums. Every violation remembers the event that last
moved it across its line, so a district lead sees what changed, not only that something did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rules.balance import DistrictBalance
from rules.evaluate import Assessor, DistrictResult, SchoolResult, build_report
from schemas.report import Cause, Report, Violation
from schemas.snapshot import District
from streams.state import State, district_record, school_record

ViolationKey = tuple[str, str, str | None, str | None]


def violation_key(v: Violation) -> ViolationKey:
    return (v.rule, v.district, v.school, v.section)


@dataclass
class DistrictLive:
    record: District
    balance: DistrictBalance = field(default_factory=DistrictBalance)
    schools: dict[str, SchoolResult] = field(default_factory=dict)
    result: DistrictResult | None = None


class LiveAssessment:
    """Live results of the districts one worker owns."""

    def __init__(self, assessor: Assessor):
        self.assessor = assessor
        self.districts: dict[str, DistrictLive] = {}
        self.causes: dict[ViolationKey, Cause] = {}
        self.evaluations = 0

    def clear(self) -> None:
        self.districts.clear()
        self.causes.clear()

    def set_district(self, district_id: str, state: State | None) -> None:
        """Take a district's new record; its schools are re-evaluated since messages name it."""
        live = self._district(district_id, state)
        for school_id, result in list(live.schools.items()):
            self._replace_school(live, school_id, self.assessor.school(result.record, live.record))

    def set_school(self, district_id: str, school_id: str, state: State | None,
                   district_state: State | None) -> None:
        """Re-evaluate one school from its state (None or closed: it leaves the district)."""
        live = self._district(district_id, district_state)
        record = school_record(state) if state is not None else None
        new = self.assessor.school(record, live.record) if record is not None else None
        self._replace_school(live, school_id, new)

    def violations_now(self, district_ids: Iterable[str]) -> dict[str, set[ViolationKey]]:
        """The violation keys of districts, to compare with after a change."""
        return {d: self._violation_keys(self.districts[d]) if d in self.districts else set() for d in district_ids}

    def refresh(self, before: dict[str, set[ViolationKey]], causes: dict[tuple[str, str | None], Cause]) -> None:
        """Re-evaluate changed districts from their sums; a violation that is new since `before`
        is attributed to the latest event that touched its school, else its district."""
        for district_id, earlier in before.items():
            live = self.districts.get(district_id)
            if live is None:
                continue
            live.result = self.assessor.district(live.record, live.balance)
            self.evaluations += 1
            now = self._violation_keys(live)
            for key in now - earlier:
                cause = causes.get((district_id, key[2])) or causes.get((district_id, None))
                if cause is not None:
                    self.causes[key] = cause
            for key in [k for k in self.causes if k[1] == district_id and k not in now]:
                del self.causes[key]

    def report(self, district_ids: Iterable[str] | None = None) -> Report:
        """The live report of the given districts (all owned ones by default)."""
        wanted = self.districts if district_ids is None else {d: self.districts[d] for d in district_ids if d in self.districts}
        districts = [live.result for live in wanted.values() if live.result is not None]
        schools = [r for live in wanted.values() for r in live.schools.values()]
        report = build_report(self.assessor, districts, schools)
        for violation in report.violations:
            violation.cause = self.causes.get(violation_key(violation))
        return report

    def _district(self, district_id: str, state: State | None) -> DistrictLive:
        record = (district_record(state) if state is not None else None) or District(id=district_id, name=district_id)
        live = self.districts.get(district_id)
        if live is None:
            live = self.districts[district_id] = DistrictLive(record)
        live.record = record
        return live

    def _replace_school(self, live: DistrictLive, school_id: str, new: SchoolResult | None) -> None:
        old = live.schools.pop(school_id, None)
        live.balance.replace(old.contribution if old else None, new.contribution if new else None)
        self.evaluations += 1
        if new is not None:
            live.schools[school_id] = new

    def _violation_keys(self, live: DistrictLive) -> set[ViolationKey]:
        found = [v for r in live.schools.values() for v in r.findings.violations]
        if live.result is not None:
            found += live.result.findings.violations
        return {violation_key(v) for v in found}

