"""What a worker does with one Kafka record: decode, fold, store, re-evaluate, dead-letter.

Kept apart from Faust so that the hot path reads top-down and can be exercised without a broker.
Folding does not write: a changed school or district waits in `unwritten` until the worker takes
all of them at once (`take_writes`), so a school touched by a thousand events between two writes
costs one store write and one changelog record.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Callable, Collection, Iterator, MutableMapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from alerts.health import Health
from junheng.turns import Turns
from schemas import events as ev
from schemas.loading import describe
from schemas.report import Cause
from streams import future
from streams import state as fold
from streams.live import LiveAssessment

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 64 * 1024 * 1024


@dataclass
class DeadLetter:
    """An event, or a record, that could not be applied: its reason and its original bytes."""

    reason: str
    original: bytes
    event_type: str = "unknown"


@dataclass(frozen=True)
class Write:
    """One school or district state to store and send to its table's changelog."""

    table: str  # "schools" or "districts"
    key: str
    state: fold.State
    partition: int


@dataclass
class RecordResult:
    dead_letters: list[DeadLetter] = field(default_factory=list)
    applied: int = 0


def decode(value: bytes | None) -> tuple[list[tuple[ev.Event, bytes | None]], list[DeadLetter]]:
    """The events of a record (one event or a batch), each with its original bytes where the
    record holds only that event; what cannot be read becomes dead letters."""
    if value is None:
        return [], [DeadLetter("empty record / 空记录", b"")]
    if len(value) > MAX_RECORD_BYTES:
        return [], [DeadLetter(f"record larger than {MAX_RECORD_BYTES >> 20} MiB / 记录过大", value)]
    try:
        # The fast path: pydantic parses and validates the whole record in one call.
        record = ev.RECORD.validate_json(value)
    except ValidationError:
        return _decode_each(value)
    if isinstance(record, ev.Batch):
        return [(event, None) for event in record.events], []
    return [(record, value)], []


def _decode_each(value: bytes) -> tuple[list[tuple[ev.Event, bytes | None]], list[DeadLetter]]:
    """The slow path for a record with a fault: find which events are bad, and why."""
    try:
        doc = json.loads(value)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return [], [DeadLetter(f"not valid JSON: {_short(exc)} / 不是有效的 JSON", value)]
    # Fields beside "events" in a batch envelope are ignored here: the events are what matters.
    is_batch = isinstance(doc, dict) and isinstance(doc.get("events"), list) and "type" not in doc
    if not is_batch:
        event, dead = _one(doc, value)
        return ([(event, value)] if event else []), ([dead] if dead else [])
    limit = ev.Batch.model_fields["events"].metadata[0].max_length
    if len(doc["events"]) > limit:
        # Folded one by one here, a batch past the limit held the event loop for seconds.
        return [], [DeadLetter(f"a batch of {len(doc['events']):,} events; at most {limit:,} / 批量事件过多", value)]
    events, dead_letters = [], []
    for item in doc["events"]:
        original = _item_bytes(item)
        event, dead = _one(item, original)
        if event:
            events.append((event, None))
        if dead:
            dead_letters.append(dead)
    return events, dead_letters


#: Schools evaluated again at each flush after a day brought other limits (`Pipeline.take_day`):
#: a bounded share of a round, so that a worker goes on folding meanwhile (a national share's
#: 100,000 school evaluations at once would hold it for seconds).
AGAIN_SCHOOLS = 500


class Pipeline:
    """Folds records into school and district tables and keeps the live assessment current.

    Folding happens per record; writing and evaluation are coalesced. `handle` folds a record and
    keeps each state it changed in `unwritten`, where reads find it first; `take_writes` hands all
    of them over at once. `flush` re-evaluates each changed school and district once, however many
    events touched it since the last flush. The worker flushes on a short timer and before every
    read (of the districts read, for a report of some), so a read always sees every event handled
    before it in what it reads.

    `schools` and `districts` are the stores: plain mappings from id to state. An event dated
    more than `future_tolerance` seconds after `clock()` (Unix seconds: the wall clock, or a
    test's) is dead-lettered (streams/future.py).
    """

    def __init__(self, schools: MutableMapping, districts: MutableMapping, live: LiveAssessment,
                 health: Health | None = None, future_tolerance: float = future.FUTURE_TOLERANCE,
                 clock: Callable[[], float] = time.time):
        self.schools = schools
        self.districts = districts
        self.live = live
        self.health = health or Health()
        self.assigned: frozenset[int] | None = None
        self.stale: set[int] = set()
        self.dirty_schools: dict[str, str] = {}
        self.dirty_districts: set[str] = set()
        self.causes: dict[tuple[str, str | None], ev.Event] = {}
        self.unwritten: dict[tuple[str, str], Write] = {}
        self.building = False
        self.future_tolerance = future_tolerance
        self.clock = clock
        #: Districts to evaluate again under a new day's rules (`take_day`), in insertion order.
        self.again: dict[str, None] = {}
        self._sync_lock = asyncio.Lock()

    def handle(self, value: bytes | None, partition: int, key: str | None = None) -> RecordResult:
        """Apply one record's events to the tables; return what must go to the dead-letter topic.
        With `key` (the record's key as text, "" for none: a worker passes it), an event of
        another district than the key is refused: its district's state is kept in the key's
        partition, beside the partition where it belongs, and a restart could bring that stale
        copy back (seen: a school's figures of a year before, after a newer snapshot)."""
        events, dead_letters = decode(value)
        if key is not None:
            events, misplaced = _keyed_by_district(events, key, value)
            dead_letters += misplaced
        for dead in dead_letters:
            self._count(dead.event_type, fold.REJECTED)
        schools: dict[str, fold.State] = {}
        districts: dict[str, fold.State] = {}
        changed_schools: set[str] = set()
        changed_districts: set[str] = set()
        applied = 0
        newest = None
        horizon = future.Horizon(self.clock(), self.future_tolerance)
        for event, original in events:
            ahead = horizon.refuses(event)
            if ahead is not None:
                dead_letters.append(self._rejected(ahead, event, original))
                continue
            self._load(event, schools, districts)
            try:
                outcome = fold.apply(event, schools, districts)
            except fold.Rejected as exc:
                dead_letters.append(self._rejected(str(exc), event, original))
                continue
            except Exception as exc:
                # A fault of junheng's own, in this event alone (`apply` took its changes back):
                # the record's other events fold as usual, and this one is kept as a dead letter
                # with the fault, to be sent again once the fault is fixed.
                log.exception("folding an event failed; it goes to the dead-letter topic / 事件处理失败，已转入死信")
                dead_letters.append(self._rejected(f"the worker failed to fold this event ({exc!r}) / 工作进程处理该事件失败",
                                                   event, original))
                continue
            self._count(event.type, outcome.outcome)
            if outcome.outcome != fold.APPLIED:
                continue
            applied += 1
            for school_id in outcome.schools:
                changed_schools.add(school_id)
                self.causes[(event.district, school_id)] = event
            # A district-level violation (a CV, a share) is moved by the latest event in it.
            self.causes[(event.district, None)] = event
            if outcome.district_changed:
                changed_districts.add(event.district)
            newest = event.occurred_at if newest is None or event.occurred_at > newest else newest
        if newest is not None:
            # No later than the clock: an event accepted a little ahead of it (within the
            # tolerance) would otherwise hold the event lag at 0 until the clock caught up.
            self._note_event_time(min(newest.timestamp(), horizon.now))
        self._keep_unwritten(schools, changed_schools, districts, changed_districts, partition)
        for school_id in changed_schools:
            self.dirty_schools[school_id] = schools[school_id]["district"]
        self.dirty_districts |= changed_districts
        return RecordResult(dead_letters, applied)

    def take_writes(self) -> list[Write]:
        """Every state changed since the last call, once each; the caller stores them. Once the
        live assessment follows the worker's partitions (its first `sync`), they are evaluated
        first, so that each carries the causes of its violations (`LiveAssessment.causes_of`).
        Before, an evaluation would find none of a school's violations known, and attribute all
        of them to its latest event."""
        if self.assigned is not None:
            self.flush()
        writes, self.unwritten = list(self.unwritten.values()), {}
        return writes

    def school(self, school_id: str) -> fold.State | None:
        """A school's newest state, written or not."""
        return self._newest_state("schools", school_id)

    def district(self, district_id: str) -> fold.State | None:
        """A district's newest state, written or not."""
        return self._newest_state("districts", district_id)

    def flush(self, districts: Collection[str] | None = None) -> int:
        """Re-evaluate every school and district changed since the last flush, or only those of
        `districts`; a violation that appears is attributed to the latest event that touched its
        school, else its district. While a build is under way it does nothing: the records
        folded meanwhile stay marked."""
        if self.building:  # its changes wait for the build to end (see `syncing`)
            return 0
        if districts is not None:
            return self._flush_districts(set(districts))
        if self.assigned is not None:
            self._forget_unowned()
        again, again_districts = self._take_again(AGAIN_SCHOOLS)
        schools = {**again, **self.dirty_schools}
        evaluated = self._evaluate(schools, set(schools.values()) | self.dirty_districts | again_districts)
        self.dirty_schools, self.dirty_districts, self.causes = {}, set(), {}
        return evaluated

    def _take_again(self, schools: int, districts: Collection[str] | None = None) -> tuple[dict[str, str], set[str]]:
        """The next districts to evaluate again (`take_day`) and their schools (school →
        district): whole districts up to about `schools` schools, or those of `districts`. A new
        day's rules reach a worker's national share in steps, not in one flush that held the
        worker for seconds."""
        taken_schools: dict[str, str] = {}
        taken: set[str] = set()
        wanted = list(self.again) if districts is None else [d for d in districts if d in self.again]
        for district_id in wanted:
            if districts is None and len(taken_schools) >= schools:
                break
            del self.again[district_id]
            live = self.live.districts.get(district_id)
            if live is not None:  # else dropped since (its partition moved): its new owner evaluates it
                taken.add(district_id)
                taken_schools.update(dict.fromkeys(live.schools, district_id))
        return taken_schools, taken

    def _flush_districts(self, wanted: set[str]) -> int:
        # A read of a few districts (/report?district=) evaluates their changes alone: a read
        # that evaluated the whole worker's took 41% of a quick worker's time when read every
        # 20 ms (PERFORMANCE.md, items 51 and 53). The rest waits for the next round.
        schools = {s: d for s, d in self.dirty_schools.items() if d in wanted}
        districts = wanted & self.dirty_districts
        if self.assigned is not None:  # as `_forget_unowned`, for these districts
            schools = {s: d for s, d in schools.items() if self._owned("schools", s)}
            districts = {d for d in districts if self._owned("districts", d)}
        again, again_districts = self._take_again(0, wanted)  # a read sees the day's rules
        schools = {**again, **schools}
        evaluated = self._evaluate(schools, set(schools.values()) | districts | again_districts)
        self.dirty_schools = {s: d for s, d in self.dirty_schools.items() if d not in wanted}
        self.dirty_districts -= wanted
        self.causes = {place: event for place, event in self.causes.items() if place[0] not in wanted}
        return evaluated

    def _evaluate(self, schools: dict[str, str], touched: set[str]) -> int:
        """Re-evaluate `schools` (school → district) and the districts `touched`, keeping the
        causes of violations that moved."""
        if not schools and not touched:
            return 0
        for district_id in touched:
            if district_id in self.dirty_districts or not self.live.has_district(district_id):
                for school_id in self.live.set_district(district_id, self.district(district_id)):
                    schools.setdefault(school_id, district_id)
        for school_id, district_id in schools.items():
            event = self.causes.get((district_id, school_id))
            self.live.set_school(district_id, school_id, self.school(school_id), _cause_of(event) if event else None)
        for district_id in touched:
            event = self.causes.get((district_id, None))
            self.live.refresh(district_id, _cause_of(event) if event else None)
        for district_id, school_id in self.live.take_moved_causes():
            self._keep_causes(district_id, school_id)
        self.health.rule_evaluations = self.live.evaluations
        return len(schools) + len(touched)

    def sync(self, assigned: frozenset[int], districts: Collection[str] | None = None) -> None:
        """Keep the live assessment to the partitions owned now; otherwise flush (only the
        changes of `districts`, when given).

        When they change, the districts of partitions no longer owned are dropped, and those of
        partitions newly owned (or recovered anew, see `recovered_anew`) are built from the
        tables. Districts of partitions kept throughout are neither evaluated nor rendered for
        /metrics again: a worker's national share takes tens of seconds to evaluate and render,
        and a rebalance usually moves only some of its partitions."""
        for _ in self.syncing(assigned, districts):
            pass

    async def sync_in_steps(self, assigned: frozenset[int], step_seconds: float = 0.05,
                            between_steps: Callable[[], None] = lambda: None,
                            districts: Collection[str] | None = None) -> None:
        """`sync`, giving the event loop back every `step_seconds` of a build, so that records
        are folded and the worker answers meanwhile (building half of the national country took
        14 s in one step), and calling `between_steps` each time (the worker freezes what the
        build made so far, `streams/freezing.py`). A caller that comes while a build is under
        way waits for its end, then syncs: nobody reads a partly built state. With `districts`,
        a sync that builds nothing evaluates only their changes (`flush`)."""
        async with self._sync_lock:
            steps, turns = self.syncing(assigned, districts), Turns(step_seconds, before_each=between_steps)
            try:
                for _ in steps:
                    await turns.pause()
            finally:
                steps.close()  # cancelled mid-build: the next sync builds those partitions again

    def syncing(self, assigned: frozenset[int], districts: Collection[str] | None = None) -> Iterator[None]:
        """`sync` as a generator that yields between the districts and schools it builds. Records
        may be folded between its steps; `flush` waits until the build ends, and so must readers
        of the live state. A build left unfinished is done again by the next sync."""
        if assigned == self.assigned and not self.stale:
            self.flush(districts)
            return
        previous, self.assigned = self.assigned, assigned
        if previous is None:
            self.dirty_schools, self.dirty_districts, self.causes = {}, set(), {}
            self.live.clear()
        else:
            self.flush()  # what the kept districts folded
        kept = ((previous or frozenset()) & assigned) - self.stale
        self.stale = set()
        gained, done = assigned - kept, False
        self.building = True
        try:
            for district_id in [d for d in self.live.districts if self._partition(d) not in kept]:
                self.live.drop_district(district_id)
                yield
            yield from self._build(gained)
            done = True
        finally:
            self.building = False
            if not done:
                self.stale |= gained
        self.health.rule_evaluations = self.live.evaluations

    def take_day(self, day: dt.date) -> bool:
        """Take the rules in force on `day` (a worker not pinned to a date: its calendar day
        turned). Where other rules are in force than the day before (a pack's `applies_from`
        reached), or a month began and a rule is prorated over the year (`Rule.prorate`), every
        district is evaluated again, a few at each flush (`again`); otherwise only the reports'
        date moves. True when the districts are to be evaluated again."""
        before = self.live.assessor
        if day == before.as_of:
            return False
        self.live.assessor = before.on(day)
        if self.live.assessor.same_limits(before):
            return False
        self.again = dict.fromkeys(self.live.districts)
        return True

    def holds(self, partitions: frozenset[int]) -> bool:
        """Whether the live assessment is built for exactly these partitions, none of them
        waiting to be built again (`recovered_anew`) and no build under way."""
        return self.assigned == partitions and not self.stale and not self.building

    def _build(self, partitions: frozenset[int]) -> Iterator[None]:
        """Evaluate the districts and schools of `partitions` from the tables, with the causes
        their states keep, yielding after each."""
        built, schools = set(), []
        for district_id, state in self._newest("districts"):
            if state.get("partition") in partitions:
                self.live.set_district(district_id, state)
                built.add(district_id)
                yield
        for school_id, state in self._newest("schools"):
            if state.get("partition") in partitions:
                if not self.live.has_district(state["district"]):
                    self.live.set_district(state["district"], None)
                self.live.set_school(state["district"], school_id, state)
                built.add(state["district"])
                schools.append((school_id, state))
                yield
        for district_id in built:
            self.live.refresh(district_id)
            self.live.restore_causes(district_id, None, (self.district(district_id) or {}).get("causes"))
            yield
        for school_id, state in schools:
            self.live.restore_causes(state["district"], school_id, state.get("causes"))

    def _keep_causes(self, district_id: str, school_id: str | None) -> None:
        # A state whose violations' causes changed is written again, even if no event changed it
        # (a district-level violation moved by one school's event). A district with no state of
        # its own (no district event yet) keeps its causes in memory only.
        table, key = ("schools", school_id) if school_id is not None else ("districts", district_id)
        state = self._newest_state(table, key)
        if state is None:
            return
        causes = self.live.causes_of(district_id, school_id)
        if state.get("causes") == causes:
            return
        state["causes"] = causes
        self.unwritten[(table, key)] = Write(table, key, state, state["partition"])

    def _forget_unowned(self) -> None:
        # Records of a partition this worker no longer owns (fetched before it moved away)
        # change its tables but not its live assessment: the partition's owner exports them.
        self.dirty_schools = {school_id: district_id for school_id, district_id in self.dirty_schools.items()
                              if self._owned("schools", school_id)}
        self.dirty_districts = {d for d in self.dirty_districts if self._owned("districts", d)}

    def _owned(self, table: str, key: str) -> bool:
        return (self._newest_state(table, key) or {}).get("partition") in self.assigned

    def recovered_anew(self, partitions: Collection[int]) -> None:
        """Note partitions whose tables Faust recovered from their changelogs since the last
        sync, because this worker was (re)assigned them: the next sync builds them again even if
        it owned them before, as another worker may have folded their events meanwhile."""
        self.stale |= set(partitions)

    def renderable(self):
        """The live districts as `alerts.metrics.MetricsText` reads them
        (`LiveAssessment.renderable`), less those of partitions this worker gave up: a build drops
        them in steps, and their new owner may export them already."""
        districts = self.live.renderable()
        if not self.building:
            return districts
        return (district for district in districts if self._partition(district[0]) in self.assigned)

    def _partition(self, district_id: str) -> int | None:
        """The partition of a live district, from its state or one of its schools'; None when the
        tables no longer hold them (the partition has moved)."""
        state = self.district(district_id)
        if state is None:
            live = self.live.districts.get(district_id)
            school_id = next(iter(live.schools), None) if live is not None else None
            state = self.school(school_id) if school_id is not None else None
        return state.get("partition") if state is not None else None

    def _store(self, table: str) -> MutableMapping:
        return self.schools if table == "schools" else self.districts

    def _newest_state(self, table: str, key: str) -> fold.State | None:
        write = self.unwritten.get((table, key))
        return write.state if write else self._store(table).get(key)

    def _newest(self, table: str) -> list[tuple[str, fold.State]]:
        newest = dict(self._store(table).items())
        newest.update((w.key, w.state) for w in self.unwritten.values() if w.table == table)
        return list(newest.items())

    def _load(self, event: ev.Event, schools: dict, districts: dict) -> None:
        # Plain attribute look-ups: pydantic's __getattr__ is slow for fields a model lacks.
        fields = event.__dict__
        for school_id in (fields.get("school"), fields.get("to_school")):
            self._load_school(school_id, schools)
        # A rotation may also change schools it does not name: those earlier rotations of the
        # teacher reached, and theirs, read from the states of the schools loaded so far
        # (`fold.other_schools`): asked again until it names no school not yet tried.
        tried: set[str] = set()
        while missing := fold.other_schools(event, schools) - tried:
            for school_id in missing:
                self._load_school(school_id, schools)
            tried |= missing
        if event.district not in districts:
            stored = self.district(event.district)
            if stored is not None:
                districts[event.district] = stored

    def _load_school(self, school_id: str | None, schools: dict) -> None:
        if school_id and school_id not in schools:
            stored = self.school(school_id)
            if stored is not None:
                schools[school_id] = stored

    def _keep_unwritten(self, schools, changed_schools, districts, changed_districts, partition: int) -> None:
        for school_id in changed_schools:
            schools[school_id]["partition"] = partition
            self.unwritten[("schools", school_id)] = Write("schools", school_id, schools[school_id], partition)
        for district_id in changed_districts:
            districts[district_id]["partition"] = partition
            self.unwritten[("districts", district_id)] = Write("districts", district_id, districts[district_id], partition)

    def _rejected(self, reason: str, event: ev.Event, original: bytes | None) -> DeadLetter:
        """Count `event` as rejected and make its dead letter (its bytes as received, when known)."""
        self._count(event.type, fold.REJECTED)
        return DeadLetter(reason, original or event.model_dump_json().encode(), event.type)

    def _count(self, event_type: str, outcome: str) -> None:
        key = (event_type, outcome)
        self.health.events[key] = self.health.events.get(key, 0) + 1
        if outcome == fold.REJECTED:
            self.health.dead_lettered += 1

    def _note_event_time(self, stamp: float) -> None:
        if self.health.newest_event_time is None or stamp > self.health.newest_event_time:
            self.health.newest_event_time = stamp


def _item_bytes(item) -> bytes:
    """A batch item as JSON text for its dead letter; with `\\u` escapes when it holds what
    UTF-8 cannot encode (a lone surrogate: its dead letter was empty)."""
    for ascii_only in (False, True):
        try:
            return json.dumps(item, ensure_ascii=ascii_only).encode()
        except UnicodeEncodeError:
            continue
        except (ValueError, RecursionError):
            break
    return b""


def _keyed_by_district(events, key: str, value: bytes | None):
    """The events of the key's district, and dead letters for the others."""
    kept, misplaced = [], []
    for event, original in events:
        if event.district == key:
            kept.append((event, original))
            continue
        given = f"the record's key {key!r}" if key else "a record without a key"
        misplaced.append(DeadLetter(
            f"{given} is not the event's district {event.district!r}: publish with the district id as the key "
            f"/ 记录键应为事件所属区县代码", original or event.model_dump_json().encode(), event.type))
    return kept, misplaced


def _cause_of(event: ev.Event) -> Callable[[], Cause]:
    return functools.partial(Cause, event_id=event.event_id, type=event.type, source=event.source,
                             occurred_at=event.occurred_at)


def _one(item, original: bytes) -> tuple[ev.Event | None, DeadLetter | None]:
    event_type = item.get("type") if isinstance(item, dict) and isinstance(item.get("type"), str) else "unknown"
    if event_type not in ev.EVENT_TYPES:
        event_type = "unknown"
    try:
        return ev.EVENT_ADAPTER.validate_python(item), None
    except ValidationError as exc:
        return None, DeadLetter(f"invalid event: {describe(exc, '事件校验失败')}", original, event_type)


def _short(exc: Exception) -> str:
    return str(exc)[:200]
