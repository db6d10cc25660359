"""The Faust application: topics, tables, the folding agent and the worker's web endpoints.

Records are keyed by district, so a district's schools share one partition and its sums are
computed where its schools' state lives. Tables have the source topic's partition count, and each
changed state goes to the changelog partition of the records that changed it. The agent consumes
without automatic acks: `ChangelogWriter` acks records once the broker holds their effects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Iterable

import faust
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.log import server_logger
from faust.web import Request, Response, View
from faust.web import drivers as web_drivers
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from alerts.metrics import MetricsText
from junheng.turns import left_going
from prometheus_client import CONTENT_TYPE_LATEST
from rules.evaluate import Assessor
from rules.pack import load_packs
from schemas.china_time import china_today
from streams.ahead import RenderAhead
from streams.fetching import use_fetch_wait
from streams.freezing import Freezer
from streams.heap import HeapTrimmer
from streams.live import LiveAssessment
from streams.pauses import CollectorPauses
from streams.pipeline import MAX_RECORD_BYTES, DeadLetter, Pipeline, RecordResult
from streams.security import faust_credentials
from streams.settings import Settings
from streams.stall import watch as watch_broker
from streams.positions import Positions, Verdict
from streams.report_json import report_json_in_steps
from streams.writer import ChangelogWriter, Letter

log = logging.getLogger(__name__)

JSON = faust.Schema(key_serializer="raw", value_serializer="json")


DAY_MS = 24 * 3600 * 1000
#: A worker's `/metrics` body is written in pieces of about this size. Its national share
#: (131 MiB) written whole took 0.30 s to reach curl, and 0.05 to 0.08 s in pieces of 1 MiB
#: with no joined copy: asyncio copies what the socket does not take at once into its buffer.
SEND_PIECE_BYTES = 1 << 20


class OwnPagesWeb(AiohttpWeb):
    """Faust's aiohttp server, serving the pages the app registers and none of Faust's own."""

    # Faust's settings for its pages (web_tables_enabled, ...) cannot turn off its index at /
    # ({"status": "OK"}), which has no setting at all: the driver lists none of them.
    default_blueprints = debug_blueprints = optional_blueprints = production_blueprints = ()


web_drivers.DRIVERS["junheng"] = f"{__name__}:OwnPagesWeb"


class _MalformedRequestsQuietly(logging.Filter):
    """aiohttp's server logs a request it cannot parse (a request line over its 8190 bytes, a
    bad header) with its traceback at ERROR. The client has its 400 and the reason: the worker is
    not at fault, so one INFO line without the traceback says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        if not server_logger.isEnabledFor(logging.INFO):
            return False
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg, record.args = "a malformed request from %s was answered %s: %s", (
            remote, exc.code, str(exc.message).partition("\n")[0][:200])
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.exc_info = record.exc_text = None
        return True


_MALFORMED_QUIETLY = _MalformedRequestsQuietly()


def topic_partitions(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """Every topic the worker uses, with its partition count and config, to declare before
    starting. Changelogs are compacted: they hold the state, one record per school or district.
    Events are kept a week (state does not depend on them once folded), dead letters a month."""
    compacted = {"cleanup.policy": "compact"}
    return {
        settings.topic: (settings.partitions, {"retention.ms": str(7 * DAY_MS)}),
        settings.dead_letter_topic: (settings.partitions, {"retention.ms": str(30 * DAY_MS)}),
        f"{settings.app_id}-schools-changelog": (settings.partitions, compacted),
        f"{settings.app_id}-districts-changelog": (settings.partitions, compacted),
        f"{settings.app_id}-positions-changelog": (settings.partitions, compacted),
    }


def faust_app(settings: Settings) -> faust.App:
    """A Faust application with the worker's broker, consumer and producer settings, and nothing
    of its own: the worker's, and the plain agent `junheng bench` measures its ceiling with."""
    producer = {"producer_max_batch_size": settings.producer_max_batch_size} if settings.producer_max_batch_size else {}
    app = faust.App(
        settings.app_id,
        # Faust lets environment variables override what it is given here (WEB_PORT, WEB_BIND,
        # BROKER_URL, APP_WEB_ENABLED, ... and APP_ENV_PREFIX, which renames them all): an
        # operator's WEB_PORT=8080 made a worker listen on 0.0.0.0:8080 instead of the
        # JUNHENG_WEB_HOST and port it was told. Given an empty environment, it reads none of them.
        env={},
        broker=settings.broker,
        store="rocksdb://" if settings.store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        # Faust listens on every interface whatever its web_host (which only names the worker in
        # its URLs): the address to listen on is web_bind.
        web_bind=settings.web_host,
        web_port=settings.web_port,
        # Its default comes from FAUST_WEB_TRANSPORT (faust/types/_env.py), which env={} does
        # not cover: unix://... put the pages on a socket file and nothing on the port.
        web_transport="tcp://",
        web_in_thread=False,
        # Faust's own pages would show a school's whole state (/table/schools/<id>/), the
        # cluster's layout (/router/), its sensors and service graph: the worker serves the pages
        # the app registers (/metrics, /report, /ready) and nothing else (SECURITY.md). Faust's
        # web_*_enabled settings only choose among the driver's pages, of which it has none.
        web="junheng://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        topic_disable_leader=True,
        # Faust's defaults (session 60 s, rebalance 60 s) make a fresh worker wait half a
        # minute before its first event; a few seconds is enough on one machine or one rack.
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(0.5, settings.session_timeout / 4),
        broker_rebalance_timeout=settings.session_timeout,
        broker_commit_interval=1.0,
        producer_linger_ms=5,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        stream_wait_empty=False,
        broker_credentials=faust_credentials(settings),
        # A dead letter carries the rejected record's bytes: the producer must take any record
        # the pipeline reads (Faust's default of 1 MB crashed the agent on a 10 MB record).
        producer_max_request_size=MAX_RECORD_BYTES + 1024 * 1024,
        producer_request_timeout=settings.write_timeout,
        **producer,
    )
    use_fetch_wait(app, settings.fetch_wait)
    return app


def faust_worker(app: faust.App, settings: Settings) -> faust.Worker:
    """The Faust worker that runs `app`. Its debug mode is off whatever FAUST_DEBUG says, as the
    app's settings are whatever Faust's variables say (`faust_app`): that mode starts a blocking
    detector signalling the event loop and tries to open a console on port 50101."""
    return faust.Worker(app, loglevel=settings.log_level, quiet=True, debug=False)


def create_app(settings: Settings) -> faust.App:
    """A configured worker application; run it with `faust.Worker(app).execute_from_commandline()`."""
    app = faust_app(settings)
    if _MALFORMED_QUIETLY not in server_logger.filters:
        server_logger.addFilter(_MALFORMED_QUIETLY)
    events = app.topic(settings.topic, partitions=settings.partitions, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw")
    schools = app.Table("schools", partitions=settings.partitions, default=None, schema=JSON)
    districts = app.Table("districts", partitions=settings.partitions, default=None, schema=JSON)
    positions_table = app.Table("positions", partitions=settings.partitions, default=None, schema=JSON)
    assessor = Assessor(load_packs(settings.rules), settings.as_of or china_today(time.time()))
    # The pipeline reads and writes the tables' stores directly: their changelog records are
    # sent by the writer, not by Faust's buffered table assignment.
    pipeline = Pipeline(schools.data, districts.data, LiveAssessment(assessor),
                        future_tolerance=settings.future_tolerance)
    positions = Positions(positions_table.data)
    writer = ChangelogWriter(pipeline, positions,
                             {"schools": schools, "districts": districts, "positions": positions_table},
                             # Faust's own aiokafka producer, once the worker has started it.
                             ack=None, producer=lambda: app.producer._ensure_producer())
    freezer = Freezer(settings.full_collection_interval)
    source = _WorkerSource(app, settings, pipeline, freezer, positions)
    watch_broker(app, settings, pipeline.health)
    # A render that outlasts a round (a scrape's, left going after its answer, or one ahead) may
    # meet a build of gained partitions; it waits for the build to end.
    metrics = MetricsText(source, school_series=settings.school_series, settled=lambda: not pipeline.building)

    buffered = []  # the agent's record buffer, once it runs
    last_record_at = [0.0]  # when the agent last took a record (time.monotonic)

    @app.agent(events)
    async def fold(stream):
        manual = stream.noack()
        writer.ack = manual.ack
        buffered.append(stream.channel.queue)
        async for record in manual.events():
            last_record_at[0] = time.monotonic()
            message = record.message
            verdict = positions.admit(message.partition, message.offset, message.generation_id)
            if verdict is Verdict.NOT_RESUMED:
                continue
            if verdict is Verdict.SKIPPED_AHEAD:
                await read_again(message)
                continue
            if verdict is Verdict.HELD:
                writer.handled(record)
                continue
            key = record.key.decode("utf-8", "replace") if record.key is not None else ""
            try:
                result = pipeline.handle(record.value, message.partition, key)
            except Exception as exc:
                # A fault of the worker's own must not lose the record: Faust would start the
                # agent again past it (a batch mixing time zones did, before fb8275c).
                app.log.exception("folding a record failed; it goes to the dead-letter topic / 记录处理失败，已转入死信")
                result = RecordResult([DeadLetter(f"the worker failed to fold this record ({exc!r}) / 工作进程处理该记录失败",
                                                  record.value or b"")])
            # Sent by the next write: a dead letter that fails fails that write, before the
            # record's position is stored, and is not an error of the agent's (Faust would start
            # the agent again and go on past the record).
            writer.handled(record, [dead_letter(record, dead) for dead in result.dead_letters])
            if writer.full():  # back-pressure: otherwise the writer's own timer writes
                await writer.write()

    def dead_letter(record, dead) -> Letter:
        message = record.message
        return Letter(settings.dead_letter_topic, record.key, dead.original, (
            ("junheng-reason", dead.reason.encode()),
            ("junheng-event-type", dead.event_type.encode()),
            ("junheng-source", f"{message.topic}/{message.partition}/{message.offset}".encode()),
        ))

    async def seek(tp, offset: int) -> None:
        # In the consumer's own thread; and Faust drops a delivered record whose offset is below
        # the last one it delivered on that partition (Consumer._read_offset), which a fetch
        # already under way can push past the records the seek brings back: forget that mark.
        app.consumer._read_offset[tp] = None
        await app.consumer._thread.seek_wait({tp: offset})
        app.consumer._read_offset[tp] = None

    async def send_back(tp, why: str) -> None:
        # The consumer reads the partition again from the position its state needs.
        pipeline.health.rereads += 1
        wanted = positions.next[tp.partition]
        app.log.info("%s on %s: reading again from %s", why, tp, wanted)
        await seek(tp, wanted)

    async def read_again(message):
        if positions.should_seek(message.partition):
            await send_back(message.tp, f"records skipped before offset {message.offset}")

    async def resume_from_positions():
        # Faust's stream passes over every record fetched between a rebalance and the moment
        # flow resumes, and those are not fetched again; so once flow is back, each partition is
        # read again from the position its recovered state needs (from the start if none).
        # Until then the agent leaves records alone (NOT_RESUMED).
        generation = app.consumer_generation_id
        if (positions.generation == generation or app.rebalancing or not app.flow_control.is_active()
                or not app.tables.recovery.completed.is_set()):
            return
        tps = list(_owned(app, settings).values())
        earliest = await app.consumer.earliest_offsets(*tps) if tps else {}
        starts = {tp.partition: positions.stored(tp.partition, default=earliest.get(tp) or 0) for tp in tps}
        positions.resume(generation, starts)
        for tp in tps:
            await seek(tp, starts[tp.partition])

    def records_waiting() -> bool:
        """Whether records wait in the agent's buffer, to be folded."""
        return any(queue.qsize() for queue in buffered)

    async def read_stalled_again():
        if positions.generation != app.consumer_generation_id or app.rebalancing:
            return
        owned = _owned(app, settings)
        try:
            highwaters = {p: app.consumer.highwater(tp) for p, tp in owned.items()}
        except Exception:  # partitions are moving: the next tick looks again
            return
        busy = records_waiting()
        quiet = positions.STALL_AFTER_BUSY if busy else positions.STALL_AFTER
        for partition in positions.stalled(highwaters, busy):
            await send_back(owned[partition], f"no progress for {quiet:.0f} s with records waiting")

    ahead = RenderAhead()
    ahead_task: list[asyncio.Future | None] = [None]

    def render_ahead_if_due() -> None:
        running = ahead_task[0] is not None and not ahead_task[0].done()
        if ahead.due(pipeline.assigned, sum(pipeline.health.events.values()), pipeline.live.stamp,
                     running or metrics.rendering):
            ahead_task[0] = asyncio.ensure_future(metrics.render_ahead(busy=folding))
            ahead_task[0].add_done_callback(say_if_rendering_ahead_failed)

    def folding() -> bool:
        # A render ahead runs only in the gaps between bursts of records: rendering beside a
        # steady stream, even in 10 ms steps, raised p50 at 1,000 single events/s from 0.06 to
        # 0.16 s in a national run.
        quiet_for = time.monotonic() - last_record_at[0]
        return quiet_for < settings.evaluate_interval or records_waiting()

    def say_if_rendering_ahead_failed(task: asyncio.Future) -> None:
        if not task.cancelled() and task.exception() is not None:
            app.log.warning("rendering /metrics ahead failed (%r): the next scrape renders it / "
                            "指标预渲染失败，下次抓取时渲染", task.exception())

    def turn_the_day() -> None:
        # A worker runs for months: the rules in force (a pack's `applies_from`) and the reports'
        # date follow China's calendar, not the day it started, unless `as_of` pins them.
        day = china_today(time.time())
        if settings.as_of is None and pipeline.take_day(day):
            app.log.info("limits change on %s (rules coming into force, or a month of the year's time "
                         "progress): every district is evaluated again / %s 起生效规则或时间进度有变，各区县重新评估",
                         day, day)

    @app.timer(interval=settings.evaluate_interval)
    async def evaluate():
        turn_the_day()
        await resume_from_positions()
        await read_stalled_again()
        await source.sync()
        freezer.after_round()
        render_ahead_if_due()

    # Writing waits for the broker's acknowledgements; on its own timer, neither folding nor
    # evaluation waits for it (in the agent it held a quick run at 1,000 events/s to a 3 s p50).
    @app.timer(interval=settings.evaluate_interval)
    async def write_changes():
        if writer.events or pipeline.unwritten:
            await writer.write()  # a failure crashes the worker: see streams/writer.py

    trimmer = HeapTrimmer()
    pauses = CollectorPauses()

    @app.task
    async def watch_collector():
        # Installed when the worker starts, not when an app is built (tests build many).
        pauses.install()

    @app.timer(interval=settings.heap_trim_interval)
    async def trim_heap():
        freezer.collect_all_when_due()
        took = trimmer.trim()
        if took >= 0.1:
            app.log.info("returning freed memory to the OS held the worker for %.2f s", took)
        for generation, seconds in pauses.take():
            app.log.info("a garbage collection of generation %d held the worker for %.2f s / 垃圾回收暂停", generation, seconds)

    @app.on_before_shutdown.connect
    async def write_before_stopping(app, **kwargs):
        # A worker stopped on purpose leaves nothing to be read again after it restarts.
        try:
            await asyncio.wait_for(writer.write(), timeout=30)
        except Exception as exc:  # the broker is gone: the records will be read again instead
            app.log.warning("changes not written before stopping (%r): they will be read again from the "
                            "events topic / 停止前未能写入变更，重启后将从事件主题重读", exc)

    owned_before: list[frozenset[int]] = [frozenset()]

    @app.on_partitions_assigned.connect
    async def note_partitions_recovered_anew(app, assigned, **kwargs):
        # A partition assigned now but not at the last rebalance had its tables recovered from
        # the changelog, perhaps with another worker's changes: its districts are built again
        # even if this worker owned it before and no sync saw the assignment in between.
        owned = frozenset(tp.partition for tp in assigned if tp.topic == settings.topic)
        pipeline.recovered_anew(owned - owned_before[0])
        owned_before[0] = owned

    @app.on_partitions_revoked.connect
    async def write_before_partitions_move(app, revoked, **kwargs):
        # Faust has stopped handing records to the agent by now: write what it folded, so the
        # changelog the next owner recovers from holds every change this worker made.
        await writer.write()

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            deadline = time.monotonic() + settings.scrape_budget
            await _synced_within(source, settings.scrape_budget)
            body = await metrics.render_in_steps(max(0.0, deadline - time.monotonic()))
            # Sent before the render the budget left going resumes (MetricsText.sending): a
            # response returned to aiohttp is written after the handler, interleaved with it.
            async with metrics.sending():
                if accepts_gzip(request.headers.get("Accept-Encoding", "")):
                    return await _sent(request, body.gzip_pieces(), body.gzip_length(), CONTENT_TYPE_LATEST,
                                       encoding="gzip")
                return await _sent(request, body.parts, body.text_length(), CONTENT_TYPE_LATEST)

    def settled(owned: frozenset[int]) -> bool:
        """Whether the live assessment holds exactly the partitions the worker owns, with no
        rebalance, table recovery or build under way: a district it does not hold then is not
        this worker's."""
        return app.tables.recovery.completed.is_set() and not app.rebalancing and pipeline.holds(owned)

    @app.page("/report")
    class ReportView(View):
        async def get(self, request: Request) -> Response:
            wanted = request.query.getall("district", []) or None
            await source.sync(wanted)
            unheld = [d for d in dict.fromkeys(wanted or ()) if not pipeline.live.has_district(d)]
            if unheld:
                body, status = _not_held(unheld, settled(source.owned()))
                return self.json(body, status=status)
            report = await pipeline.live.report_in_steps(wanted)
            return self.bytes(await report_json_in_steps(report), content_type="application/json")

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            owned = source.owned()
            # Not until the live assessment holds the partitions it owns: after Faust's recovery
            # the next evaluation round builds their districts, and until that build ends /report
            # waits and /metrics shows only the districts kept (it said ready with no school
            # built, between the recovery and that round).
            ready = bool(owned) and settled(owned)
            return self.json({"ready": ready, "partitions": sorted(owned), "building": pipeline.building,
                              "schools": sum(len(d.schools) for d in pipeline.live.districts.values()),
                              "handled": sum(pipeline.health.events.values())},
                             status=200 if ready else 503)

    app.junheng_pipeline = pipeline  # for tests and the benchmark
    return app


def _not_held(districts: list[str], settled: bool) -> tuple[dict, int]:
    """The JSON body and status of /report asked for `districts` the live assessment lacks."""
    names = ", ".join(districts[:5]) + (f" … ({len(districts)} in all)" if len(districts) > 5 else "")
    if settled:
        # Answered 200 with an empty report, a mistyped district read as "no violations".
        return {"error": f"district {names} is not held by this worker / 该工作进程未持有区县 {names}",
                "districts": districts}, 404
    # /report waits for a build under way (source.sync), but not for a rebalance or Faust's
    # recovery of the tables, after which another build may bring the district: until then
    # nobody can say whether the worker holds it, and /ready answers 503 too.
    return {"error": f"this worker is taking over its partitions and cannot tell yet whether it holds district "
                     f"{names}: ask again shortly / 工作进程正在接管分区，尚不能确定是否持有区县 {names}，请稍后再试",
            "districts": districts}, 503


async def _synced_within(source: "_WorkerSource", seconds: float) -> None:
    """Sync the live state, waiting for it `seconds` at most: a build of gained partitions
    (about 25 s for the whole country) goes on after, and /metrics shows the districts kept."""
    # Not awaited once the wait is over: its error, if any, is the evaluation round's to meet.
    syncing = left_going(asyncio.ensure_future(source.sync()))
    await asyncio.wait({syncing}, timeout=seconds)
    if syncing.done():
        syncing.result()


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header takes a gzip body (RFC 9110, section 12.5.3): gzip
    listed with a q-value above 0, or, gzip not listed, `*` with one."""
    # prometheus_client's gzip_accepted looks for the name only: "gzip;q=0", a client's "anything
    # but gzip", got gzip. A q-value that is not a number counts as 0: the plain body is one
    # every client reads.
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *params = item.split(";")
        coding = coding.strip().lower()
        if coding not in ("gzip", "*"):
            continue
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        weights[coding] = max(weight, weights.get(coding, weight))
    return weights.get("gzip", weights.get("*", 0.0)) > 0


async def _sent(request: Request, parts: Iterable[bytes], length: int, content_type: str,
                encoding: str | None = None) -> web.StreamResponse:
    """The body made of `parts` (`length` bytes in all, in `encoding` if given) written to the
    client in pieces of about `SEND_PIECE_BYTES`: returns once aiohttp has handed the last one
    to the connection."""
    # The body depends on the request's Accept-Encoding: a cache between must know it.
    headers = {"Content-Type": content_type, "Vary": "Accept-Encoding",
               **({"Content-Encoding": encoding} if encoding else {})}
    response = web.StreamResponse(headers=headers)
    response.content_length = length
    try:
        await response.prepare(request)
        piece: list[bytes] = []
        size = 0
        for part in parts:
            piece.append(part)
            size += len(part)
            if size >= SEND_PIECE_BYTES:
                await response.write(b"".join(piece))
                piece, size = [], 0
        await response.write(b"".join(piece))
        await response.write_eof()
    except ConnectionError as exc:
        # The client left (Prometheus at its scrape timeout, say): not the worker's error, and
        # raised to aiohttp it is logged as one, with its traceback. aiohttp closes the
        # connection when it finds it gone.
        log.info("%s left before the end of %s (%s)", request.remote, request.path, exc)
    return response


def _owned(app: faust.App, settings: Settings) -> dict:
    """The events topic's partitions this worker owns now, by number."""
    return {tp.partition: tp for tp in app.assignor.assigned_actives() if tp.topic == settings.topic}


class _WorkerSource:
    """The metrics source of one worker: reports of the partitions it owns now."""

    def __init__(self, app: faust.App, settings: Settings, pipeline: Pipeline, freezer: Freezer,
                 positions: Positions):
        self.app, self.settings, self.pipeline, self.freezer = app, settings, pipeline, freezer
        self.positions = positions

    def owned(self) -> frozenset[int]:
        try:
            return frozenset(_owned(self.app, self.settings))
        except Exception:  # no assignment yet while the consumer group forms
            return frozenset()

    async def sync(self, districts: Collection[str] | None = None) -> None:
        """Bring the live assessment up to every record folded, or, with `districts`, only
        those districts' (`Pipeline.flush`)."""
        if self.app.tables.recovery.completed.is_set() and not self.app.rebalancing:
            # A build makes millions of objects nationally: frozen as it goes, as after every
            # evaluation round, or collections scan them (in-process over 800 districts,
            # generation-1 collections held build steps for 0.16 and 0.20 s).
            await self.pipeline.sync_in_steps(self.owned(), between_steps=self.freezer.after_round,
                                              districts=districts)

    def districts(self):
        return self.pipeline.renderable()

    def health(self):
        health = self.pipeline.health
        health.consumer_lag = self._lag()
        return health

    def _lag(self) -> dict[tuple[str, int], int]:
        """Per owned partition, the records between its end and the next one its state needs.

        Not from Faust's offset of the last record read alone: a worker restarted with nothing
        new to read has read none, and counting from 0 reported the whole partition (a week of
        records) as lag, enough for JunhengConsumerLagHigh, until the partition's next record.
        A partition whose position is not known yet (between a rebalance and the resume from
        the stored positions, with no record read) has no sample rather than a made-up one."""
        lag = {}
        try:
            consumer = self.app.consumer
            resumed = self.positions.generation == self.app.consumer_generation_id
            for partition, tp in _owned(self.app, self.settings).items():
                end = consumer.highwater(tp)
                # Faust keeps the offset of the last record read per partition, without an API.
                read = consumer._read_offset.get(tp)
                position = self.positions.next.get(partition) if resumed else None
                if position is None and read is not None:
                    position = read + 1
                if end is not None and position is not None:
                    lag[(tp.topic, tp.partition)] = max(0, end - position)
        except Exception:  # lag is best effort while partitions move
            return lag
        return lag

