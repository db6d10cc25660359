"""Evaluating a rule pack: per school, per district, and for a whole snapshot.

The work is split the way the streaming service needs it: a school is evaluated on its own and
yields its contribution to the district sums; a district is evaluated from those sums. A batch
assessment is the same two steps over every school, so the live and batch reports agree.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from rules.balance import Contribution, DistrictBalance, IndicatorBalance
from rules.compare import comparison, holds
from rules.indicators import IDS
from rules.messages import place_names, render, unreported_messages, unreported_note
from rules.pace import same_progress, year_gone
from rules.pack import LEVELS, Rule, RulePack
from rules.places import DistrictLevelPlace, DistrictPlace, SchoolPlace, Standards
from rules.quantities import QUANTITIES, RESOURCE_QUANTITIES, Measure, Observation, Scope, Value
from rules.sections import SectionFacts, excluded_reason, school_sections, sections_outside_resources
from schemas.report import (
    DistrictIndicator, DistrictReport, DistrictSection, NotEvaluated, Report, SchoolIndicator,
    SchoolReport, SchoolSection, Violation,
)
from schemas.snapshot import District, School, Snapshot

ROUND = 4


@dataclass(slots=True)
class Breach:
    """A violated rule at a place; its bilingual messages are rendered only when reported."""

    rule: str
    district: str
    school: str | None
    section: str | None
    value: float
    limit: float
    definition: Rule
    observation: Observation
    names: "_Names"

    def violation(self) -> Violation:
        return Violation.model_construct(
            rule=self.rule, district=self.district, school=self.school, section=self.section,
            value=round(self.value, ROUND), limit=self.limit, severity=self.definition.severity.value,
            **_messages(self.definition, self.observation, self.limit, self.names), cause=None,
        )


@dataclass(frozen=True, slots=True)
class _Step:
    """A rule made ready for places of one kind, location and level: its measure, its own limit
    there and its comparison, looked up once rather than at each of the twenty-odd checks of a
    school evaluation (a worker makes one for nearly every event of a national share)."""

    rule: Rule
    measure: Measure
    #: The quantity's value alone (`Quantity.value`), where the rule's own limit decides.
    value: Value | None
    params: Mapping[str, float]
    #: The rule's threshold for the places' level or kind (`Rule.limit_for`), None without one.
    limit: float | None
    holds: Callable[[float, float], bool]
    resource: bool

    @classmethod
    def of(cls, rule: Rule, key: str | None) -> "_Step":
        quantity, limit = QUANTITIES[rule.quantity], rule.limit_for(key)
        return cls(rule, quantity.measure, quantity.value if limit is not None else None, rule.params, limit,
                   comparison(rule.op), rule.quantity in RESOURCE_QUANTITIES)

    def paced(self, share: float) -> "_Step":
        """This step with its limit prorated to `share` of the year gone (`Rule.prorate`), to
        six places: the limit a report shows is the one applied (5% × 8/12 is 0.033333)."""
        return dataclasses.replace(self, limit=round(self.limit * share, 6)) if self.limit is not None else self


@dataclass
class Findings:
    violations: list[Breach] = field(default_factory=list)
    not_evaluated: list[NotEvaluated] = field(default_factory=list)


@dataclass
class SchoolResult:
    """What one school adds to a report, and to its district's sums; its report part is built
    each time a report is asked for, and not kept: a worker holds every school's result, and
    keeping each part after the first /metrics scrape added 500 MiB and 3 million objects to a
    worker's national share (its full garbage collection went from 0.8 to 2.4 s)."""

    school_id: str
    district_id: str
    name: str
    excluded: str | None
    sections: list[SectionFacts]
    compliance: dict[str, bool | None]
    findings: Findings
    contribution: Contribution
    assessor: "Assessor"

    @property
    def report(self) -> SchoolReport:
        sections = {
            s.level: SchoolSection.model_construct(compliant=self.compliance[s.level],
                                                   indicators=self.assessor._section_indicators(s),
                                                   split_by_students=list(s.split_by_students))
            for s in self.sections
        }
        return SchoolReport.model_construct(id=self.school_id, district=self.district_id, name=self.name,
                                            excluded=self.excluded, sections=sections)


@dataclass
class DistrictResult:
    """A district's findings, and what its report part is built from each time one is asked for
    (not kept, like a school's)."""

    district: District
    #: level → (its section totals, its indicators' figures, the results of its rules by id)
    levels: dict[str, tuple[tuple[int, ...], dict[str, IndicatorBalance], dict[str, bool | None]]]
    findings: Findings
    assessor: "Assessor"
    #: The sums its district-scope rules read (`Quantity.reads`), as they were.
    read: tuple = ()

    @property
    def report(self) -> DistrictReport:
        sections = {level: self.assessor._district_section(level, *parts) for level, parts in self.levels.items()}
        return DistrictReport.model_construct(id=self.district.id, name=self.district.name, sections=sections)


class Assessor:
    """A rule pack fixed at one date, ready to evaluate schools and districts."""

    def __init__(self, pack: RulePack, as_of: dt.date):
        self.pack = pack
        self.as_of = as_of
        rules = pack.in_force(as_of)
        self.rules = {scope: [r for r in rules if r.scope is scope] for scope in Scope}
        self.standards = Standards(_standards(self.rules[Scope.section]))
        self._fits: dict[tuple, tuple[_Step, ...]] = {}
        self._district_steps = tuple(_Step.of(r, None) for r in self.rules[Scope.district])
        self.cv_rules = {r.quantity[: -len(".cv")]: r for r in self.rules[Scope.district_section]
                         if r.quantity.endswith(".cv")}
        # Rule id → the indicator whose district figures, with the level's count of schools,
        # alone decide it (see `district`): its outcome, and its breach or its finding of
        # schools that did not report, are all there is to keep.
        self._cv_indicator = {r.id: r.quantity[: -len(".cv")] for r in self.rules[Scope.district_section]
                              if r.quantity.endswith(".cv")}
        self._district_reads = tuple(dict.fromkeys(key for r in self.rules[Scope.district]
                                                   for key in QUANTITIES[r.quantity].reads))
        #: Whether its results move with the date itself, beyond the rules in force: a rule
        #: prorated over the year has a limit that grows every month (a worker evaluates again).
        self.dated = any(r.prorate for r in self.rules[Scope.school])
        self._paced: dict[tuple[int, int], _Step] = {}

    def same_limits(self, other: "Assessor") -> bool:
        """Whether `other` (of the same pack) holds every place to what this one does: the same
        rules, and for rules prorated over the year, the same time progress."""
        return self.rules == other.rules and (not self.dated or same_progress(self.as_of, other.as_of))

    def on(self, day: dt.date) -> "Assessor":
        """The assessor for `day`: a copy of this one dated `day` when the same rules are in
        force then (its prepared rules shared), a new one when they are not."""
        if self.pack.in_force(day) != self.pack.in_force(self.as_of):
            return Assessor(self.pack, day)
        moved = copy.copy(self)
        moved.as_of, moved._paced = day, {}
        return moved

    def school(self, school: School, district: District, money_year: int | None = None) -> SchoolResult:
        """Evaluate a school's section and school rules and compute its contribution.
        `money_year` is the fiscal year of its budget and training spend (a rule prorated over
        the year is held to the share of that year gone); None: the year of the assessment."""
        sections = school_sections(school)
        findings = Findings()
        compliance: dict[str, bool | None] = {}
        kind, location = school.kind.value, school.location.value
        for section in sections:
            names = _Names.of(district, school, section.level)
            outcome = None
            for step in self._steps(Scope.section, kind, location, section.level):
                result = self._check(step, section, names, findings, district.id, school.id, section.level)
                if step.rule.quantity == "compliance":
                    outcome = result
            compliance[section.level] = outcome
        # A teaching point under 50 students is outside the resource area, not outside the
        # class-size limit: its sections meet the other section rules, and add nothing to the
        # district's sections or its report.
        for section in sections_outside_resources(school):
            names = _Names.of(district, school, section.level)
            for step in self._steps(Scope.section, kind, location, section.level):
                if not step.resource:
                    self._check(step, section, names, findings, district.id, school.id, section.level)
        names = _Names.of(district, school, None)
        place = SchoolPlace(school, tuple(sections), school.students, school.classes)
        for step in self._steps(Scope.school, kind, location, None):
            if step.rule.prorate:
                step = self._on_pace(step, self.as_of.year if money_year is None else money_year)
            self._check(step, place, names, findings, district.id, school.id, None)
        return SchoolResult(school.id, school.district, school.name, excluded_reason(school), sections, compliance,
                            findings, _contribution(school, sections, compliance), self)

    def _steps(self, scope: Scope, kind: str | None, location: str | None, level: str | None) -> tuple[_Step, ...]:
        """The rules of a scope that apply to a kind of school, place and level, in pack order,
        made ready with the limit of that level (section and district-section scopes) or kind
        (school scope); there are few combinations, and every evaluation asks for them."""
        key = (scope, kind, location, level)
        steps = self._fits.get(key)
        if steps is None:
            limit_key = kind if scope is Scope.school else level
            steps = self._fits[key] = tuple(_Step.of(r, limit_key) for r in self.rules[scope]
                                            if _when_fits(r, kind, location, level))
        return steps

    def _on_pace(self, step: _Step, year: int) -> _Step:
        # Every school of a kind and year meets the same limit on a day: made once.
        key = (id(step), year)
        paced = self._paced.get(key)
        if paced is None:
            paced = self._paced[key] = step.paced(year_gone(year, self.as_of))
        return paced

    def district(self, district: District, balance: DistrictBalance,
                 previous: DistrictResult | None = None) -> DistrictResult:
        """Evaluate a district's rules from its sums. With `previous`, the district's last result
        for the same record, a coefficient-of-variation rule whose indicator's figures are the
        same object as then, over as many schools of its level, keeps its outcome (a school's
        change usually moves one or two of the fourteen), and so do the district-scope rules when
        the sums they read are as then."""
        findings = Findings()
        # Outcomes are kept only from the same rules: not across a day that changed them.
        same_record = previous is not None and previous.district is district and previous.assessor.rules is self.rules
        kept = previous.levels if same_record else {}
        found = _by_rule_and_section(previous.findings) if kept else ({}, {})
        levels = {level: self._district_level(district, balance, level, kept.get(level), found, findings)
                  for level in balance.levels()}
        read = tuple(balance.total(*key) for key in self._district_reads)
        if same_record and previous.read == read:
            findings.violations.extend(b for b in previous.findings.violations if b.section is None)
            findings.not_evaluated.extend(n for n in previous.findings.not_evaluated if n.section is None)
        else:
            names = _Names.of(district, None, None)
            place = DistrictPlace(district, balance)
            for step in self._district_steps:
                self._check(step, place, names, findings, district.id, None, None)
        return DistrictResult(district, levels, findings, self, read)

    def _district_level(self, district: District, balance: DistrictBalance, level: str, kept: tuple | None,
                        found: tuple[dict, dict], findings: Findings) -> tuple:
        """One level's section totals, indicator figures and rule outcomes (see `district`)."""
        names = _Names.of(district, None, level)
        totals = balance.total("level", level)
        place = DistrictLevelPlace(district, level, balance, totals[0])
        # The figures are the balance's own objects, replaced (never changed) when its sums
        # move, so the report part built later shows this evaluation.
        figures = {ind: balance.indicator(ind, level) for ind in IDS}
        old_totals, old_figures, old_results = kept or ((), {}, {})
        # A school section that came or went without the indicator leaves its figures as they
        # were, yet changes how many schools did not report it.
        same_schools = old_totals[:1] == totals[:1]
        breaches, undetermined = found
        results = {}
        for step in self._steps(Scope.district_section, None, None, level):
            rule = step.rule
            indicator = self._cv_indicator.get(rule.id)
            if (indicator is not None and same_schools and rule.id in old_results
                    and old_figures.get(indicator) is figures[indicator]):
                results[rule.id] = old_results[rule.id]
                if (rule.id, level) in breaches:
                    findings.violations.append(breaches[rule.id, level])
                elif (rule.id, level) in undetermined:
                    findings.not_evaluated.append(undetermined[rule.id, level])
            else:
                results[rule.id] = self._check(step, place, names, findings, district.id, None, level)
        return totals, figures, results

    def _check(self, step: _Step, place, names, findings: Findings, district_id, school_id, level) -> bool | None:
        """Evaluate one rule at one place: True holds, False violated, None not evaluated."""
        if step.value is not None:
            value = step.value(place, step.params, self.standards)
            if value is not None and step.holds(value, step.limit):
                return True
        rule = step.rule
        observation = step.measure(place, step.params, self.standards)
        if observation is None:
            return None
        value = observation.value
        if value is None:
            findings.not_evaluated.append(_not_evaluated(rule, observation, None, names, district_id, school_id, level))
            return None
        limit = observation.limit if observation.limit is not None else step.limit
        if limit is None:
            return None
        if step.holds(value, limit):
            if observation.unreported:
                # Held by the places that reported, the rule may still fail on the others: a
                # district is not balanced on part of its schools. Beyond the limit on them,
                # though, it is a violation all the same (below): a school that stops reporting
                # must not silence an alert.
                findings.not_evaluated.append(_not_evaluated(rule, observation, limit, names, district_id,
                                                             school_id, level))
                return None
            return True
        findings.violations.append(Breach(rule.id, district_id, school_id, level, value, limit,
                                          rule, observation, names))
        return False

    def _section_indicators(self, section: SectionFacts) -> dict[str, SchoolIndicator]:
        standards = self.standards.by_level.get(section.level, {})
        out = {}
        for ind in IDS:
            value, standard = section.indicators[ind], standards.get(ind)
            ok = holds(value, ">=", standard) if value is not None and standard is not None else None
            out[ind] = SchoolIndicator.model_construct(value=_round(value), standard=standard, ok=ok)
        return out

    def _district_section(self, level: str, totals: tuple[int, ...], figures_of: dict[str, IndicatorBalance],
                          results: dict) -> DistrictSection:
        # Built without validation, like the school parts: every field is computed here.
        sections, compliant, students, _undetermined = totals
        indicators = {}
        for ind in IDS:
            figures = figures_of[ind]
            rule = self.cv_rules.get(ind)
            cv_limit = rule.limit_for(level) if rule else None
            # A section without the figure is left out of the indicator's sums, not counted as
            # zero: the two counts the CV rule compares (`quantities._cv`) say how many.
            unreported = sections - figures.schools
            indicators[ind] = DistrictIndicator.model_construct(
                value=_round(figures.mean), cv=_round(figures.cv),
                cv_limit=float(cv_limit) if cv_limit is not None else None,
                ok=results.get(rule.id) if rule else None, schools_unreported=unreported or None)
        return DistrictSection.model_construct(students=students, schools=sections, schools_compliant=compliant,
                                               indicators=indicators)


def assess(snapshot: Snapshot, pack: RulePack, as_of: dt.date | None = None) -> Report:
    """The assessment report of a whole snapshot under a rule pack."""
    assessor = Assessor(pack, as_of or snapshot.as_of)
    by_district: dict[str, list[School]] = {d.id: [] for d in snapshot.districts}
    for school in snapshot.schools:
        by_district[school.district].append(school)
    school_results, district_results = [], []
    for district in snapshot.districts:
        balance = DistrictBalance()
        for school in by_district[district.id]:
            result = assessor.school(school, district, snapshot.as_of.year)
            balance.add(result.contribution)
            school_results.append(result)
        district_results.append(assessor.district(district, balance))
    return build_report(assessor, district_results, school_results)


def build_report(assessor: Assessor, districts: Iterable[DistrictResult], schools: Iterable[SchoolResult],
                 not_evaluated_of: Iterable[SchoolResult] | None = None) -> Report:
    """Assemble a report in a canonical order, whichever order the parts were evaluated in. Its
    rules not evaluated are the districts' and those of `not_evaluated_of` (`schools` by default)."""
    districts, schools = list(districts), list(schools)
    violations = [b.violation() for part in (*districts, *schools) for b in part.findings.violations]
    unevaluated = schools if not_evaluated_of is None else not_evaluated_of
    missing = [n for part in (*districts, *unevaluated) for n in part.findings.not_evaluated]
    return _assembled(assessor, [d.report for d in districts], [s.report for s in schools], violations, missing)


def merge_reports(assessor: Assessor, reports: Iterable[Report]) -> Report:
    """One report from reports of disjoint sets of districts, each in `build_report`'s order."""
    reports = list(reports)
    districts = [_only_district(r) for r in reports]
    # Reports of one district each, as a worker's report in steps gives them: joined in order of
    # district, their violations are in place order already, and sorting a national share's
    # 80,000 again held a worker's event loop 0.17 s.
    in_order = None not in districts
    if in_order:
        reports = [r for _, r in sorted(zip(districts, reports), key=operator.itemgetter(0))]
    return _assembled(assessor, [d for r in reports for d in r.districts], [s for r in reports for s in r.schools],
                      [v for r in reports for v in r.violations], [n for r in reports for n in r.not_evaluated],
                      in_place_order=in_order)


def _only_district(report: Report) -> str | None:
    """The one district `report`'s districts, violations and rules not evaluated are of ("" for
    none), else None. Its schools do not matter: they are sorted by id in any case."""
    ids = {d.id for d in report.districts} | {v.district for v in report.violations}
    ids |= {n.district for n in report.not_evaluated}
    return (ids.pop() if ids else "") if len(ids) <= 1 else None


def _assembled(assessor: Assessor, districts, schools, violations, missing, in_place_order: bool = False) -> Report:
    order = {r.id: i for i, r in enumerate(assessor.pack.rules)}

    def placed(items: list) -> list:
        return items if in_place_order else sorted(items, key=lambda v: _place_order(v, order))

    return Report(
        as_of=assessor.as_of,
        rule_pack=assessor.pack.name,
        districts=sorted(districts, key=_ID),
        schools=sorted(schools, key=_ID),
        violations=placed(violations),
        not_evaluated=placed(missing),
    )


_ID = operator.attrgetter("id")


def _place_order(item, order: dict[str, int]):
    return (item.district, item.school or "", item.section or "", order.get(item.rule, 1 << 30), item.rule)


def _standards(section_rules: list[Rule]) -> dict[str, dict[str, float]]:
    """Each level's R1–R7 standards, as the indicator rules in force hold each level to them. A
    threshold may be one number for both levels (`threshold: 5.5`): read only from a mapping by
    level, such a standard was dropped, and a section far below it still counted as compliant,
    its indicator shown with no standard beside the violation saying it is short."""
    by_level: dict[str, dict[str, float]] = {}
    for rule in section_rules:
        if rule.quantity not in IDS:
            continue
        for level in LEVELS:
            limit = rule.limit_for(level)
            if limit is not None and (not rule.when.levels or level in rule.when.levels):
                by_level.setdefault(level, {})[rule.quantity] = limit
    return by_level


def _when_fits(rule: Rule, kind: str, location: str, level: str | None) -> bool:
    when = rule.when
    return ((not when.kinds or kind in when.kinds)
            and (not when.locations or location in when.locations)
            and (not when.levels or level is None or level in when.levels))


@dataclass(slots=True)
class _Names:
    """A place, named in messages only when a message is rendered."""

    district_id: str
    district_name: str
    school_id: str | None
    school_name: str | None
    level: str | None

    @classmethod
    def of(cls, district: District, school: School | None, level: str | None) -> "_Names":
        return cls(district.id, district.name, school.id if school else None, school.name if school else None, level)

    def resolve(self) -> dict[str, str]:
        return place_names(self.district_id, self.district_name, self.school_id, self.school_name, self.level)


def _contribution(school: School, sections: list[SectionFacts], compliance: dict[str, bool | None]) -> Contribution:
    """A school's part of its district's sums."""
    parts: dict[tuple[str, ...], tuple[int, ...]] = {}
    for section in sections:
        for ind, value in section.indicators.items():
            if value is not None:
                parts[("ind", ind, section.level)] = (section.students, value)
        outcome = compliance.get(section.level)
        parts[("level", section.level)] = (1, int(outcome is True), section.students, int(outcome is None))
    rotation = (school.rotation_eligible, school.rotated, school.rotated_key)
    if all(v is not None for v in rotation):
        parts[("rotation",)] = (*rotation, 1)
    return parts


def _messages(rule: Rule, observation: Observation, limit: float, names: "_Names") -> dict[str, str]:
    fields = {**observation.detail, **names.resolve(), "value": observation.value, "limit": limit, "unit": rule.unit}
    zh, en = render(rule.message_zh, fields), render(rule.message_en, fields)
    if observation.unreported:
        # Said by the service, not left to the pack's template: a bureau's own template cannot
        # tell a value over some of the schools from one over all of them.
        note_zh, note_en = unreported_note(names.level, observation.missing[0], observation.unreported,
                                           observation.detail.get("schools", 0))
        zh, en = zh + note_zh, en + note_en
    return {"message_zh": zh, "message_en": en}


def _not_evaluated(rule: Rule, observation: Observation, limit: float | None, names: "_Names",
                   district_id: str, school_id: str | None, level: str | None) -> NotEvaluated:
    """A rule left undecided at a place for want of data; one that some of the place's schools
    did not report says how many, and what the figure is over the others."""
    extra = {}
    if observation.unreported:
        extra = unreported_messages(rule.title_zh, rule.title_en, names.resolve(), level, observation.missing[0],
                                    observation.unreported, observation.detail.get("schools", 0),
                                    observation.value, limit)
        extra["schools_unreported"] = observation.unreported
    return NotEvaluated.model_construct(rule=rule.id, district=district_id, school=school_id, section=level,
                                        missing=list(observation.missing), **extra)


def _by_rule_and_section(findings: Findings) -> tuple[dict, dict]:
    """A district's last violations and findings of unreported figures by (rule, level), for
    the rules whose outcome it keeps."""
    return ({(b.rule, b.section): b for b in findings.violations},
            {(n.rule, n.section): n for n in findings.not_evaluated if n.section is not None})


def _round(value: float | None) -> float | None:
    return round(value, ROUND) if value is not None else None
