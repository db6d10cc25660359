"""The `/metrics` of a worker (contracts.md §3), built from its reports at scrape time.

Every scrape lists the districts the worker owns now, so a series disappears as soon as its
violation clears or its partition moves to another worker, and nothing goes stale after a
rebalance. The worker keeps the rendered lines and renders again only what changed, school by
school (`MetricsText`); `ReportCollector` builds everything at each scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from alerts.gzipped import deflated, gzip_length, gzip_pieces
from alerts.health import Health
from junheng.turns import Turns, left_going
from schemas.report import Report

SchoolSeries = Literal["all", "violations"]
PLACE = ("district", "school", "section")


class MetricsSource(Protocol):
    """What a worker offers the collector: its current reports and its counters."""

    def reports(self) -> Iterable[Report]: ...

    def health(self) -> Health: ...


class ReportHolder:
    """A thread-safe holder of the latest reports and counters, for a process that computes
    reports in one thread and serves `/metrics` from another."""

    def __init__(self, reports: Iterable[Report] = (), health: Health | None = None):
        self._lock = threading.Lock()
        self._reports = tuple(reports)
        self._health = health or Health()

    def publish(self, reports: Iterable[Report], health: Health | None = None) -> None:
        """Replace the reports (and the counters, when given) seen by the next scrape."""
        with self._lock:
            self._reports = tuple(reports)
            if health is not None:
                self._health = health

    def reports(self) -> Iterable[Report]:
        with self._lock:
            return self._reports

    def health(self) -> Health:
        with self._lock:
            return self._health


class ReportCollector(Collector):
    """A custom collector exporting a worker's reports and pipeline counters.

    `school_series="violations"` exports the school-level series (indicators and names) only
    for schools with at least one violation: at national scale (about 207,000 schools) the full
    set is millions of series, while the violating schools are what alerts and drill-downs need.
    """

    def __init__(self, source: MetricsSource, school_series: SchoolSeries = "all",
                 clock: Callable[[], float] = time.time):
        self.source = source
        self.school_series = _policy(school_series)
        self.clock = clock

    def describe(self) -> list:
        # Describing nothing keeps registration from calling collect() before the worker is up.
        return []

    def collect(self) -> Iterator:
        reports = list(self.source.reports())
        yield from _report_families(reports, self.school_series)
        yield from _health_families(self.source.health(), self.clock(), districts_behind=0)


class DistrictSource(Protocol):
    """What a worker offers the cached renderer, for each district it owns now: a version that
    changes whenever anything of the district changes, a version per school that changes when
    that school's results do, and a way to build the district's report with only some schools
    (all of them for None), its district-level parts always included. Those include the rules not
    evaluated at every school of the district, whichever schools are asked for: their count per
    district and rule is one of the district's own lines, rendered again whenever it changes."""

    def districts(self) -> Iterable[tuple[str, int, Mapping[str, int], Callable[[Collection[str] | None], Report]]]: ...

    def health(self) -> Health: ...


@dataclass(slots=True)
class _District:
    """A district's rendered lines: per family its text, the district's own lines first and then
    each school's, schools by id, with where each part ends."""

    version: int
    schools: dict[str, int]  # school id → the version its lines show, by id
    bodies: list[bytes]
    ends: list[array]  # per family: end offsets of the district's own lines, then of each school's
    packed: list[bytes]  # per family, its body `deflated`, for a gzip-encoded scrape


@dataclass(slots=True)
class Body:
    """A `/metrics` body as its parts (see `MetricsText.body`), and each part deflated."""

    parts: list[bytes]
    packed: list[bytes]

    def text(self) -> bytes:
        """The body as one text (a copy: a worker sends the parts instead)."""
        return b"".join(self.parts)

    def text_length(self) -> int:
        """The length of the text."""
        return sum(map(len, self.parts))

    def gzip_length(self) -> int:
        """The length of the gzip-encoded body."""
        return gzip_length(self.packed)

    def gzip_pieces(self) -> Iterator[bytes]:
        """The body gzip-encoded, in pieces (alerts/gzipped.py)."""
        return gzip_pieces(self.parts, self.packed)


#: The longest a render ahead holds the event loop before giving it back, and how long it waits
#: before looking again while records wait to be folded or a scrape renders.
AHEAD_STEP_SECONDS = 0.01


class MetricsText:
    """A worker's `/metrics` text, with each school's series rendered once per change.

    At national scale a worker owns over a million series, while a scrape interval sees a small
    share of its schools change. Each district's lines are rendered by prometheus_client from its
    report and kept; when the district changes, only its own lines and those of its schools that
    changed are rendered again, from a report holding just those schools, and the rest is kept.
    A scrape gathers the districts' text under each family's header. The text equals what
    `ReportCollector` gives for the same reports, and a district the worker no longer owns is
    dropped at the next scrape.
    """

    def __init__(self, source: DistrictSource, school_series: SchoolSeries = "all",
                 clock: Callable[[], float] = time.time, step_seconds: float = 0.05,
                 settled: Callable[[], bool] = lambda: True):
        self.source = source
        #: Whether the source's districts may be read: a worker's are not while it builds the
        #: partitions it gained (their districts are partly built); nothing is rendered meanwhile.
        self.settled = settled
        self.school_series = _policy(school_series)
        self.clock = clock
        self.step_seconds = step_seconds
        self._districts: dict[str, _District] = {}
        self._headers = [_split_family(family)[0] for family in _report_families([], school_series)]
        self._packed_headers = [deflated(header) for header in self._headers]
        self._rendering = asyncio.Lock()
        self._catching_up: asyncio.Future | None = None
        self._sending = 0

    def render(self, deadline: float | None = None) -> bytes:
        """The whole `/metrics` body, in one synchronous step. With a `deadline` (a
        `time.monotonic()` reading), a district whose lines are out of date once it has passed
        keeps its lines as last rendered, or is left out if it has none; the body's
        `junheng_metrics_districts_behind` counts such districts. So does every district out of
        date while the source is not settled."""
        return self.body(deadline).text()

    def body(self, deadline: float | None = None) -> Body:
        """`render`'s body as its parts in order: each family's header and the districts' kept
        text, not copied (sent as they are, they spare a worker a second copy of its text), with
        each part's deflated chunk, kept beside its text since it was rendered."""
        kept: dict[str, _District] = {}
        behind = 0
        settled = self.settled()
        for district_id, version, schools, report in self.source.districts():
            cached = self._districts.get(district_id)
            current = cached is not None and cached.version == version
            if current or (settled and (deadline is None or time.monotonic() < deadline)):
                kept[district_id] = self._current(district_id, version, schools, report)
                continue
            behind += 1
            if cached is not None:
                kept[district_id] = cached
        self._districts = kept
        parts, packed = [], []
        for index, (header, packed_header) in enumerate(zip(self._headers, self._packed_headers)):
            parts.append(header)
            packed.append(packed_header)
            for district in kept.values():
                parts.append(district.bodies[index])
                packed.append(district.packed[index])
        health = CollectorRegistry()
        health.register(_Families(*_health_families(self.source.health(), self.clock(), behind)))
        parts.append(generate_latest(health))
        packed.append(deflated(parts[-1]))
        return Body(parts, packed)

    async def render_in_steps(self, budget: float | None = None) -> Body:
        """The same body as `render`, as its `body`, for a worker's event loop: the districts
        changed since the last scrape are rendered in steps of about `step_seconds`, giving the
        loop back between steps, so that a scrape that finds most districts changed (at national
        scale about 15 s of rendering per worker) does not hold folding up. The parts are then
        gathered in one step, rendering only what changed meanwhile, so they show one moment of
        the worker's state.

        With a `budget` in seconds, the parts are gathered once that long has gone by, whatever is
        left: a district not rendered again by then shows its lines as last rendered (see
        `render`), and the render goes on after the answer, so that a later scrape finds it
        done. Prometheus gives up on a scrape after its timeout (10 s by default), and a scrape
        that times out leaves every series of the worker stale; one that answers with some lines
        a little old does not.

        A scrape abandoned half way leaves the render going; one render runs at a time, and a
        scrape that comes during it waits for it (within its budget) rather than starting another."""
        catching_up = self._catch_up()
        if budget is None:
            await asyncio.shield(catching_up)
            return self.body()
        deadline = time.monotonic() + budget
        await asyncio.wait({catching_up}, timeout=budget)
        return self.body(deadline)

    def _catch_up(self) -> asyncio.Future:
        """The render of what changed, under way or started now."""
        if self._catching_up is None or self._catching_up.done():
            # A render that fails after its scrape answered is not awaited by anyone: the next
            # scrape renders those districts itself and meets the error there.
            self._catching_up = left_going(asyncio.ensure_future(self._render_changed_alone()))
        return self._catching_up

    async def _render_changed_alone(self) -> None:
        async with self._rendering:
            await self._render_changed(self.step_seconds, hold=lambda: self._sending > 0)

    @contextlib.asynccontextmanager
    async def sending(self):
        """Wrap the sending of a scrape's body: meanwhile the render its budget left going
        waits. Interleaved with it on the event loop, a scrape of 600 districts' text (52 MiB,
        in-process through aiohttp) took 1.28 and 1.54 s, and 0.56 and 0.58 s with the render
        waiting (0.18 to 0.25 s with nothing left to render)."""
        self._sending += 1
        try:
            yield
        finally:
            self._sending -= 1

    @property
    def rendering(self) -> bool:
        """Whether a scrape's render is under way."""
        return self._rendering.locked()

    async def render_ahead(self, busy: Callable[[], bool] = lambda: False) -> None:
        """Render the districts changed since the last scrape and keep them for the next one,
        without joining a body (streams/ahead.py says when a worker does). Work that a worker's
        events wait for comes first: before each district this waits while `busy()` (records
        arriving or waiting to be folded) and while a scrape renders, and it gives the loop back
        every `AHEAD_STEP_SECONDS`. A scrape that comes meanwhile renders what is left itself."""
        await self._render_changed(min(self.step_seconds, AHEAD_STEP_SECONDS),
                                   hold=lambda: busy() or self._rendering.locked())

    async def _render_changed(self, step_seconds: float, hold: Callable[[], bool] = lambda: False) -> None:
        """Render each district whose version moved, giving the loop back every `step_seconds`.
        Before each it waits while `hold()` is true or the source is not settled (a build), in
        steps of `AHEAD_STEP_SECONDS`; after such a wait it lists the districts again, since
        their versions may have moved meanwhile (a build gives every district it builds a new
        one), so that it does not go on with the versions from before the wait."""
        turns = Turns(step_seconds)
        while True:
            for district_id, version, schools, report in list(self.source.districts()):
                cached = self._districts.get(district_id)
                if cached is not None and cached.version == version:
                    continue
                if hold() or not self.settled():
                    while hold() or not self.settled():
                        await asyncio.sleep(AHEAD_STEP_SECONDS)
                    break  # list the districts again
                self._districts[district_id] = self._current(district_id, version, schools, report)
                await turns.pause()
            else:
                return

    def _current(self, district_id: str, version: int, schools: Mapping[str, int],
                 report: Callable[[Collection[str] | None], Report]) -> _District:
        """The district's lines as of `version`, rendering again only its own lines and those of
        the schools whose version moved."""
        cached = self._districts.get(district_id)
        if cached is not None and cached.version == version:
            return cached
        order = dict(sorted(schools.items()))
        changed = None if cached is None else {s for s, v in order.items() if cached.schools.get(s) != v}
        fresh = self._owned_lines(report(None if changed is None else sorted(changed)))
        kept_at = {school_id: position for position, school_id in enumerate(cached.schools, 1)} if cached else {}
        bodies, ends = [], []
        for index, lines in enumerate(fresh):
            chunks = [lines.get("", b"")]
            for school_id in order:
                if changed is None or school_id in changed:
                    chunks.append(lines.get(school_id, b""))
                else:
                    chunks.append(_kept(cached, index, kept_at[school_id]))
            bodies.append(b"".join(chunks))
            ends.append(array("I", itertools.accumulate(map(len, chunks))))
        # Compressed now, in the render's steps, so that a scrape only joins what it sends.
        return _District(version, order, bodies, ends, [deflated(body) for body in bodies])

    def _owned_lines(self, report: Report) -> list[dict[str, bytes]]:
        """Per family, its sample lines by owner: "" for the district's own, else the school id."""
        out = []
        for family in _report_families([report], self.school_series):
            lines = _split_family(family)[1].split(b"\n")[:-1]
            owners = [sample.labels.get("school", "") for sample in family.samples]
            if len(lines) != len(owners):  # every sample of a gauge family is one line
                raise RuntimeError(f"{family.name}: {len(lines)} lines for {len(owners)} samples")
            by_owner: dict[str, list[bytes]] = {}
            for owner, line in zip(owners, lines):
                by_owner.setdefault(owner, []).append(line + b"\n")
            out.append({owner: b"".join(chunk) for owner, chunk in by_owner.items()})
        return out


def _kept(district: _District, family: int, position: int) -> bytes:
    """The kept lines of one family of the school at `position` (1-based) in `district`."""
    ends = district.ends[family]
    return district.bodies[family][ends[position - 1]:ends[position]]


class _Families(Collector):
    def __init__(self, *families):
        self.families = families

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator:
        yield from self.families


def _split_family(family) -> tuple[bytes, bytes]:
    """A family's text as prometheus_client renders it: its # HELP and # TYPE lines, and its samples."""
    registry = CollectorRegistry()
    registry.register(_Families(family))
    text = generate_latest(registry)
    help_line, type_line, samples = text.split(b"\n", 2)
    return help_line + b"\n" + type_line + b"\n", samples


def _policy(school_series: str) -> SchoolSeries:
    if school_series not in ("all", "violations"):
        raise ValueError(f"school_series must be 'all' or 'violations', not {school_series!r}")
    return school_series


def metrics_app_bytes(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format, as served on `/metrics`."""
    return generate_latest(registry)


def _report_families(reports: list[Report], school_series: SchoolSeries) -> Iterator:
    school = GaugeMetricFamily("junheng_school_indicator", "Indicator value of a school section",
                               labels=[*PLACE, "indicator"])
    school_info = GaugeMetricFamily("junheng_school_info", "Names of a school and its district (always 1)",
                                    labels=["district", "school", "name", "district_name"])
    district_info = GaugeMetricFamily("junheng_district_info", "Name of a district (always 1)",
                                      labels=["district", "name"])
    district = GaugeMetricFamily("junheng_district_indicator",
                                 "Student-weighted mean of an indicator over a district's schools of one level",
                                 labels=["district", "section", "indicator"])
    cv = GaugeMetricFamily("junheng_district_indicator_cv", "Inter-school coefficient of variation",
                           labels=["district", "section", "indicator"])
    cv_limit = GaugeMetricFamily("junheng_district_indicator_cv_limit",
                                 "Highest coefficient of variation the rule pack allows",
                                 labels=["district", "section", "indicator"])
    unreported = GaugeMetricFamily("junheng_district_indicator_schools_unreported",
                                   "School sections of a level that did not report an indicator's figure: "
                                   "its mean and CV are over the others (absent when all reported)",
                                   labels=["district", "section", "indicator"])
    schools = GaugeMetricFamily("junheng_district_schools", "School sections of a level in a district",
                                labels=["district", "section"])
    compliant = GaugeMetricFamily("junheng_district_schools_compliant",
                                  "School sections of a level that comply (6 of 7 indicators)",
                                  labels=["district", "section"])
    violation = GaugeMetricFamily("junheng_rule_violation", "1 while a rule is violated at a place",
                                  labels=["rule", *PLACE, "severity"])
    value = GaugeMetricFamily("junheng_rule_value", "Observed value of a violated rule",
                              labels=["rule", *PLACE])
    limit = GaugeMetricFamily("junheng_rule_limit", "Limit of a violated rule", labels=["rule", *PLACE])
    not_evaluated = GaugeMetricFamily("junheng_rules_not_evaluated",
                                      "Places in a district (school sections, schools, the district or its levels) "
                                      "where a rule could not be evaluated for want of data (absent when none)",
                                      labels=["district", "rule"])

    for report in reports:
        district_names = {d.id: d.name or d.id for d in report.districts}
        for d in report.districts:
            district_info.add_metric([d.id, district_names[d.id]], 1)
            for level, section in sorted(d.sections.items()):
                schools.add_metric([d.id, level], section.schools)
                compliant.add_metric([d.id, level], section.schools_compliant)
                for ind, figures in sorted(section.indicators.items()):
                    labels = [d.id, level, ind]
                    _add(district, labels, figures.value)
                    _add(cv, labels, figures.cv)
                    _add(cv_limit, labels, figures.cv_limit)
                    _add(unreported, labels, figures.schools_unreported)

        seen: set[tuple[str, ...]] = set()
        for v in report.violations:
            place = [v.district, v.school or "", v.section or ""]
            key = (v.rule, *place)
            if key in seen:  # one series per rule and place, whatever the report repeats
                continue
            seen.add(key)
            violation.add_metric([*key, v.severity], 1)
            value.add_metric(list(key), v.value)
            limit.add_metric(list(key), v.limit)

        for (district_id, rule), places in sorted(_not_evaluated_places(report).items()):
            not_evaluated.add_metric([district_id, rule], places)

        violating = {v.school for v in report.violations if v.school}
        for s in report.schools:
            if school_series == "violations" and s.id not in violating:
                continue
            school_info.add_metric([s.district, s.id, s.name or s.id, district_names.get(s.district, s.district)], 1)
            for level, section in sorted(s.sections.items()):
                for ind, figures in sorted(section.indicators.items()):
                    _add(school, [s.district, s.id, level, ind], figures.value)

    yield from (school, school_info, district_info, district, cv, cv_limit, unreported, schools, compliant,
                violation, value, limit, not_evaluated)


def _not_evaluated_places(report: Report) -> Counter[tuple[str, str]]:
    """The places of each district and rule that the report's rules not evaluated name, a place
    counted once whatever the report repeats (as violations are): O(findings)."""
    places = {(n.district, n.rule, n.school, n.section) for n in report.not_evaluated}
    return Counter((district_id, rule) for district_id, rule, _, _ in places)


def _health_families(health: Health, now: float, districts_behind: int) -> Iterator:
    events = CounterMetricFamily("junheng_events", "Events handled, by type and outcome",
                                 labels=["type", "outcome"])
    for (event_type, outcome), count in sorted(health.events.items()):
        events.add_metric([event_type, outcome], count)
    yield events
    yield CounterMetricFamily("junheng_dead_letter", "Events sent to the dead-letter topic",
                              value=health.dead_lettered)
    yield CounterMetricFamily("junheng_rule_evaluations", "Rule evaluations performed",
                              value=health.rule_evaluations)
    yield CounterMetricFamily("junheng_broker_stalls", "Times the broker stopped answering",
                              value=health.broker_stalls)
    yield GaugeMetricFamily("junheng_broker_stalled", "1 while the broker does not answer the worker's probe",
                            value=1 if health.broker_stalled else 0)
    yield CounterMetricFamily("junheng_rereads", "Times the consumer was sent back to a partition's position: "
                              "records arrived ahead of it, or none came while records waited",
                              value=health.rereads)
    lag = GaugeMetricFamily("junheng_consumer_lag", "Messages behind the end of an owned partition",
                            labels=["topic", "partition"])
    for (topic, partition), behind in sorted(health.consumer_lag.items()):
        lag.add_metric([topic, str(partition)], behind)
    yield lag
    yield GaugeMetricFamily("junheng_metrics_districts_behind",
                            "Owned districts whose lines in this scrape are older than their state, or absent: "
                            "the scrape's render budget ran out, and their render goes on after it",
                            value=districts_behind)
    # Before the first applied event there is no lag to speak of: the series is absent, not 0.
    if health.newest_event_time is not None:
        yield GaugeMetricFamily("junheng_event_lag_seconds",
                                "Now minus the event time of the newest applied event; never below 0 (an event "
                                "accepted within JUNHENG_FUTURE_TOLERANCE ahead of the clock counts as now)",
                                value=max(0.0, now - health.newest_event_time))


def _add(family: GaugeMetricFamily, labels: list[str], value: float | None) -> None:
    # A figure that is not reported is absent from /metrics, never exported as 0.
    if value is not None:
        family.add_metric(labels, value)
