"""The worker's live assessment: per-school results and per-district sums kept up to date.

A school's change re-evaluates that school and replaces its contribution to its district's sums;
the district is then re-evaluated from the sums. Every violation remembers the event that last
moved it across its line, so a district lead sees what changed, not only that something did.
Each step costs the same however large the district: nothing here walks all of its schools.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import orjson
from pydantic import ValidationError

from alerts.health import Health
from junheng.turns import Turns
from rules.balance import DistrictBalance
from rules.evaluate import Assessor, DistrictResult, SchoolResult, build_report, merge_reports
from schemas.report import Cause, Report, Violation
from schemas.snapshot import District
from streams.state import State, district_record, school_record_and_year

ViolationKey = tuple[str, str, str | None, str | None]
#: Gives the cause of the violations an evaluation makes appear; called only when some do.
CauseOf = Callable[[], Cause]


def violation_key(v: Violation) -> ViolationKey:
    return (v.rule, v.district, v.school, v.section)


@dataclass
class DistrictLive:
    record: District
    balance: DistrictBalance = field(default_factory=DistrictBalance)
    schools: dict[str, SchoolResult] = field(default_factory=dict)
    result: DistrictResult | None = None
    #: Changes whenever anything /metrics shows of the district changes (see LiveAssessment.stamp).
    version: int = 0
    #: School id → the stamp of its last evaluation, for renderers that keep each school's lines.
    school_versions: dict[str, int] = field(default_factory=dict)
    #: Its sums' change count at its last evaluation; -1 once its record is replaced.
    evaluated_changes: int = -1


class LiveAssessment:
    """Live results of the districts one worker owns."""

    def __init__(self, assessor: Assessor):
        self.assessor = assessor
        self.districts: dict[str, DistrictLive] = {}
        self.causes: dict[ViolationKey, Cause] = {}
        #: (district, school or None) of each place whose causes changed since `take_moved_causes`.
        self.moved_causes: set[tuple[str, str | None]] = set()
        self.evaluations = 0
        # One counter for all districts, so that a district dropped and built again never
        # reuses a version a cache may still hold.
        self.stamp = 0

    def clear(self) -> None:
        self.districts.clear()
        self.causes.clear()
        self.moved_causes.clear()

    def set_district(self, district_id: str, state: State | None) -> list[str]:
        """Take a district's new record; returns its schools when their evaluation reads what it
        changed, for the caller to re-evaluate. A school's evaluation reads the district's id and
        name only (its messages name the district): a district.updated of the teacher pay or the
        migrant-children figures re-evaluated all its schools, about 68 evaluations an event."""
        before = self.districts.get(district_id)
        name = before.record.name if before is not None else None
        live = self._district(district_id, state)
        return list(live.schools) if live.record.name != name else []

    def drop_district(self, district_id: str) -> None:
        """Forget a district and the causes of its violations (its partition moved away)."""
        live = self.districts.pop(district_id, None)
        if live is None:
            return
        for result in (live.result, *live.schools.values()):
            for violation in result.findings.violations if result is not None else ():
                self.causes.pop(violation_key(violation), None)
        # Its states are another worker's now: nothing of it is to be written from here.
        self.moved_causes = {place for place in self.moved_causes if place[0] != district_id}

    def has_district(self, district_id: str) -> bool:
        return district_id in self.districts

    def set_school(self, district_id: str, school_id: str, state: State | None, cause: CauseOf | None = None) -> None:
        """Re-evaluate one school from its state (None or closed: it leaves the district); its
        violations that are new are attributed to the cause `cause()` gives. Set the district first."""
        live = self._district(district_id, None)
        record, money_year = school_record_and_year(state) if state is not None else (None, None)
        new = self.assessor.school(record, live.record, money_year) if record is not None else None
        self._replace_school(live, school_id, new, cause)

    def refresh(self, district_id: str, cause: CauseOf | None = None) -> None:
        """Re-evaluate a district from its sums; its new violations are attributed to `cause()`.
        A district whose record and sums are those of its last evaluation is left as it is."""
        live = self.districts.get(district_id)
        if live is None:
            return
        if (live.result is not None and live.evaluated_changes == live.balance.changes
                and live.result.assessor.rules is self.assessor.rules):
            return  # neither its record, its sums nor its rules moved: the same result, no new violation
        old = live.result
        live.result = self.assessor.district(live.record, live.balance, old)
        live.evaluated_changes = live.balance.changes
        self.evaluations += 1
        self._touch(live)
        self._attribute((district_id, None), old.findings.violations if old else [], live.result.findings.violations,
                        cause)

    def causes_of(self, district_id: str, school_id: str | None) -> str | None:
        """The causes of a school's violations (a district's own for None) as JSON text, kept in
        its state so that they outlive a restart or a move of its partition; None without any."""
        result = self._result(district_id, school_id)
        if result is None:
            return None
        kept = []
        for violation in result.findings.violations:
            cause = self.causes.get(violation_key(violation))
            if cause is not None:
                kept.append((violation.rule, violation.section, cause.event_id, cause.type, cause.source,
                             cause.occurred_at.isoformat()))
        return orjson.dumps(sorted(kept, key=lambda k: (k[0], k[1] or ""))).decode() if kept else None

    def take_moved_causes(self) -> set[tuple[str, str | None]]:
        """The places whose violations' causes changed since the last call."""
        moved, self.moved_causes = self.moved_causes, set()
        return moved

    def restore_causes(self, district_id: str, school_id: str | None, text: str | None) -> None:
        """Take back causes `causes_of` gave, for the violations the place has now. Text that
        cannot be read (a state written by another version) restores nothing."""
        result = self._result(district_id, school_id)
        if result is None or not text:
            return
        try:
            kept = {(rule, section): Cause(event_id=event_id, type=kind, source=source, occurred_at=at)
                    for rule, section, event_id, kind, source, at in orjson.loads(text)}
        except (ValueError, TypeError, ValidationError):
            return
        for violation in result.findings.violations:
            cause = kept.get((violation.rule, violation.section))
            if cause is not None:
                self.causes[violation_key(violation)] = cause

    def renderable(self) -> Iterator[tuple[str, int, Mapping[str, int], Callable[[Collection[str] | None], Report]]]:
        """Each district as `alerts.metrics.MetricsText` reads it: its id, version, schools'
        versions, and its report with only the schools asked for."""
        for district_id, district in self.districts.items():
            yield district_id, district.version, district.school_versions, functools.partial(self.report, [district_id])

    def report(self, district_ids: Iterable[str] | None = None, school_ids: Collection[str] | None = None) -> Report:
        """The live report of the given districts (all owned ones by default), with only the
        given schools of theirs when `school_ids` is set. Such a report still lists the rules not
        evaluated at every school of its districts: /metrics renders its count of them per
        district from it, among the district's own lines (alerts/metrics.py DistrictSource)."""
        wanted = self.districts if district_ids is None else {d: self.districts[d] for d in district_ids if d in self.districts}
        districts = [live.result for live in wanted.values() if live.result is not None]
        every_school = [r for live in wanted.values() for r in live.schools.values()]
        schools = every_school
        if school_ids is not None:
            schools = [r for r in every_school if r.school_id in school_ids]
        report = build_report(self.assessor, districts, schools, not_evaluated_of=every_school)
        for violation in report.violations:
            violation.cause = self.causes.get(violation_key(violation))
        return report

    async def report_in_steps(self, district_ids: Iterable[str] | None = None,
                              step_seconds: float = 0.05) -> Report:
        """The same report as `report`, for a worker's event loop: built district by district in
        steps of about `step_seconds` that give the loop back, since a worker's national share
        takes seconds to report, and folding goes on meanwhile. Each district's part shows one
        moment of that district; a district the worker stopped owning meanwhile is left out."""
        wanted = list(self.districts) if district_ids is None else [d for d in dict.fromkeys(district_ids) if d in self.districts]
        parts, turns = [], Turns(step_seconds)
        for district_id in wanted:
            parts.append((district_id, self.report([district_id])))
            await turns.pause()
        return merge_reports(self.assessor, [part for district_id, part in parts if district_id in self.districts])

    def _result(self, district_id: str, school_id: str | None) -> DistrictResult | SchoolResult | None:
        live = self.districts.get(district_id)
        if live is None:
            return None
        return live.result if school_id is None else live.schools.get(school_id)

    def _district(self, district_id: str, state: State | None) -> DistrictLive:
        live = self.districts.get(district_id)
        if live is None or state is not None:
            record = (district_record(state) if state is not None else None) or District(id=district_id, name=district_id)
            if live is None:
                live = self.districts[district_id] = DistrictLive(record)
            live.record = record
            live.evaluated_changes = -1
            self._touch(live)
        return live

    def _touch(self, live: DistrictLive) -> None:
        self.stamp += 1
        live.version = self.stamp

    def _replace_school(self, live: DistrictLive, school_id: str, new: SchoolResult | None, cause: CauseOf | None) -> None:
        old = live.schools.pop(school_id, None)
        live.school_versions.pop(school_id, None)
        live.balance.replace(old.contribution if old else None, new.contribution if new else None)
        self.evaluations += 1
        self._touch(live)
        if new is not None:
            live.schools[school_id] = new
            live.school_versions[school_id] = self.stamp
        self._attribute((live.record.id, school_id), old.findings.violations if old else [],
                        new.findings.violations if new else [], cause)

    def _attribute(self, place: tuple[str, str | None], old: list[Violation], new: list[Violation],
                   cause: CauseOf | None) -> None:
        before = {violation_key(v) for v in old}
        after = {violation_key(v) for v in new}
        moved = False
        for key in before - after:
            moved |= self.causes.pop(key, None) is not None
        appeared = after - before
        if cause is not None and appeared:
            # Built only here: most evaluations make no violation appear.
            made = cause()
            for key in appeared:
                self.causes[key] = made
            moved = True
        if moved:
            self.moved_causes.add(place)


class LiveSource:
    """A live assessment as `alerts.metrics.MetricsText` reads it outside a worker, with an empty
    health (a worker's own source adds its consumer's lag: streams/app.py)."""

    def __init__(self, live: LiveAssessment):
        self.live = live

    def districts(self):
        return self.live.renderable()

    def health(self) -> Health:
        return Health()
