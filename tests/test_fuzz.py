"""Hostile input: every record is applied or dead-lettered with a reason, never an exception; a bad
snapshot is one SnapshotError of one line; a real worker survives a burst of hostile records."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from junheng.examples import rural_county
from kafka_env import EmbeddedBroker, Worker, read_topic, send_records, wait_until, worker_settings
from rules.evaluate import Assessor
from rules.pack import load_packs
from schemas.loading import SnapshotError, load_snapshot, parse_snapshot
from streams.live import LiveAssessment
from streams.load import snapshot_events
from streams.pipeline import Pipeline, decode
from streams.simulate import Simulator

RURAL = rural_county()
PACK = load_packs(["national-2017"])
LOADED = [e.model_dump_json().encode() for e in snapshot_events(RURAL)]
GOOD = [json.loads(e.model_dump_json()) for e in Simulator(RURAL, seed=41).events(200)]
MIB = 1024 * 1024
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pipeline() -> Pipeline:
    """A pipeline on in-memory tables, as the worker builds it on Faust tables, with the rural
    county loaded."""
    pipe = Pipeline({}, {}, LiveAssessment(Assessor(PACK, RURAL.as_of)))
    for record in LOADED:
        assert not pipe.handle(record, 0).dead_letters
    return pipe


PIPE = pipeline()  # shared: hostile records must not poison it for the next example


# --- hostile values --------------------------------------------------------------------------------

odd_text = st.text(st.sampled_from(["\x00", "\u202e", "\u200f", "\ufeff", "\ud800", "\udfff", "\n", "\"",
                                    "\\", "青", "😀", "a", "\u0301", "\uffff"]), max_size=40)
numbers = st.one_of(st.integers(-(10**400), 10**400), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, -1, 2**62, 2**63, 2**64, -(2**63), 1e308, -1e308, 5e-324]))
scalars = st.one_of(st.none(), st.booleans(), numbers, odd_text)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(odd_text, inner, max_size=4)), max_leaves=12)


@st.composite
def mutated_events(draw) -> dict:
    """A real simulated event with fields replaced, removed or added."""
    event = dict(draw(st.sampled_from(GOOD)))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "remove", "add", "nest"]))
        key = draw(st.sampled_from(sorted(event) or ["type"]))
        if action == "replace":
            event[key] = draw(values)
        elif action == "remove":
            event.pop(key, None)
        elif action == "add":
            event[draw(odd_text)] = draw(values)
        elif isinstance(event.get(key), dict):
            event[key] = {**event[key], draw(st.sampled_from(sorted(event[key]) or ["x"])): draw(values)}
    return event


def encode(doc, ascii_only: bool = True) -> bytes:
    # json.dumps writes NaN as NaN and lone surrogates as \ud800 escapes (ASCII) or as raw
    # surrogate bytes (not ASCII), as a careless producer would.
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


records = st.one_of(
    st.builds(encode, mutated_events(), st.booleans()),
    st.lists(st.one_of(mutated_events(), st.sampled_from(GOOD), values), max_size=5).map(lambda items: encode({"events": items})),
    st.builds(encode, values, st.booleans()),
    st.binary(max_size=200),
    mutated_events().map(encode).flatmap(lambda raw: st.integers(0, len(raw)).map(lambda cut: raw[:cut])),  # truncated
    st.integers(1, 200).map(lambda depth: ("[" * depth + "]" * depth).encode()),
    st.integers(1, 5000).map(lambda depth: ('{"a":' * depth + "1" + "}" * depth).encode()),
)


# --- the decoder and the pipeline ------------------------------------------------------------------

def handled(pipe: Pipeline) -> dict:
    return dict(pipe.health.events)


@FUZZ
@given(records)
def test_every_record_is_applied_or_dead_lettered_with_a_reason(value):
    events, dead = decode(value)
    assert all(isinstance(d.reason, str) and d.reason.strip() for d in dead)
    before = handled(PIPE)
    result = PIPE.handle(value, 0)
    after = handled(PIPE)
    counted = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    rejected = sum(n for (_, outcome), n in counted.items() if outcome == "rejected")
    # Each event of the record is counted once, by outcome; the rejected ones are the dead letters.
    assert sum(counted.values()) == len(events) + len(dead)
    assert rejected == len(result.dead_letters)
    assert all(d.reason.strip() and isinstance(d.original, bytes) for d in result.dead_letters)


@FUZZ
@given(st.lists(st.sampled_from(GOOD), min_size=1, max_size=3), records)
def test_hostile_records_do_not_stop_good_events_behind_them(good, value):
    pipe = pipeline()
    pipe.handle(value, 0)
    for event in good:
        result = pipe.handle(json.dumps(event).encode(), 0)
        assert not result.dead_letters or all(d.reason for d in result.dead_letters)
    assert pipe.live.report() is not None


TEN_MB = {
    "string field": lambda: json.dumps({**GOOD[0], "source": "x" * (10 * MIB)}).encode(),
    "batch of good events": lambda: json.dumps({"events": GOOD * (10 * MIB // len(json.dumps(GOOD)) + 1)}).encode(),
    "brackets": lambda: b"[" * (10 * MIB),
    "digits": lambda: b"9" * (10 * MIB),
    "NUL": lambda: b"\x00" * (10 * MIB),
}


@pytest.mark.parametrize("name", sorted(TEN_MB))
def test_ten_megabyte_records_are_handled(name):
    value = TEN_MB[name]()
    assert len(value) >= 10 * MIB
    pipe = pipeline()
    result = pipe.handle(value, 0)
    if name == "batch of good events":
        assert result.applied >= 1 and not result.dead_letters  # repeats count as duplicates
    else:
        assert len(result.dead_letters) == 1 and result.dead_letters[0].reason


def test_a_record_over_the_limit_is_dead_lettered_unread():
    from streams.pipeline import MAX_RECORD_BYTES

    events, dead = decode(b" " * (MAX_RECORD_BYTES + 1))
    assert not events and "larger than" in dead[0].reason


# --- the snapshot loader ---------------------------------------------------------------------------

SNAPSHOT = json.loads(RURAL.model_dump_json())


@st.composite
def mutated_snapshots(draw) -> dict:
    snap = json.loads(json.dumps(SNAPSHOT))
    target = draw(st.sampled_from([snap, snap["districts"][0], *snap["schools"][:3]]))
    key = draw(st.sampled_from(sorted(target)))
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "replace":
        target[key] = draw(values)
    elif action == "remove":
        del target[key]
    else:
        target[draw(odd_text)] = draw(values)
    return snap


snapshot_texts = st.one_of(
    mutated_snapshots().map(lambda s: json.dumps(s, ensure_ascii=False)),
    mutated_snapshots().map(json.dumps).flatmap(lambda t: st.integers(0, len(t)).map(lambda cut: t[:cut])),
    values.map(json.dumps),
    st.text(max_size=200),
    st.integers(1, 5000).map(lambda depth: "[" * depth + "]" * depth),
)


def one_line_error(call) -> None:
    try:
        call()
    except SnapshotError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        assert len(message) < 2000


@FUZZ
@given(snapshot_texts, st.booleans())
def test_a_bad_snapshot_is_one_snapshot_error_of_one_line(text, yaml_ok):
    one_line_error(lambda: parse_snapshot(text, "fuzz.json", yaml_ok=yaml_ok))


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".json", ".yaml"]))
def test_a_bad_snapshot_file_is_one_snapshot_error_of_one_line(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("snap") / f"fuzz{suffix}"
    path.write_bytes(data)
    one_line_error(lambda: load_snapshot(path))


@pytest.mark.parametrize("where", ["top", "school", "section"])
def test_a_snapshot_error_naming_a_hostile_key_is_one_line(where):
    snap = json.loads(json.dumps(SNAPSHOT))
    target = {"top": snap, "school": snap["schools"][0], "section": snap["schools"][0]["sections"]}[where]
    target["pri\nmary\r\u202e"] = {}
    one_line_error(lambda: parse_snapshot(json.dumps(snap), "hostile.json"))


def test_snapshot_files_that_are_huge_deep_or_aliased(tmp_path):
    cases = {
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep.yaml": "[" * 100_000 + "]" * 100_000,
        "big.json": json.dumps({**SNAPSHOT, "pad": "x" * (10 * MIB)}),
        "laughs.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
            for i in range(12)),
        "bom.json": "\ufeff" + json.dumps(SNAPSHOT),
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        one_line_error(lambda: load_snapshot(path))
    (tmp_path / "latin1.json").write_bytes("{\"as_of\": \"é\"}".encode("latin-1"))
    with pytest.raises(SnapshotError, match="not UTF-8"):
        load_snapshot(tmp_path / "latin1.json")


# --- a real worker ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz-worker")
    with EmbeddedBroker(log_path=tmp / "broker.log") as broker:
        settings = worker_settings(broker, tmp, RURAL.as_of)
        running = Worker(settings, tmp / "worker.log")
        try:
            yield running.ready(timeout=90)
        finally:
            running.stop()


def test_a_worker_survives_a_burst_of_hostile_records_and_applies_the_next_good_event(worker):
    settings = worker.settings
    district = RURAL.districts[0].id
    send_records(settings, [(district, record) for record in LOADED])
    rng = random.Random(13)
    hostile = [
        b"{not json", b"", b"\x00" * 1000, b"[" * 100_000, "\ud800\u202e".encode("utf-8", "surrogatepass"),
        json.dumps({**GOOD[0], "version": 10**30}).encode(),
        json.dumps({**GOOD[1], "occurred_at": "9999-99-99"}).encode(),
        json.dumps({"events": [{**GOOD[2], "school": "431299-999"}, 1, None, "x"]}).encode(),
        json.dumps({**GOOD[3], "source": "x" * (10 * MIB)}).encode(),  # 10 MB
        bytes(rng.getrandbits(8) for _ in range(5000)),
    ]
    send_records(settings, [(district, value) for value in hostile])
    marker = dict(GOOD[4])
    send_records(settings, [(district, json.dumps(marker).encode())])

    def applied_marker():
        metrics = worker.metrics()
        return f'junheng_events_total{{outcome="applied",type="{marker["type"]}"}}' in metrics
    wait_until(applied_marker, 90, what="the good event after the hostile burst applied")
    assert worker.process.poll() is None
    dead = read_topic(settings, settings.dead_letter_topic, count=13, timeout=60)
    reasons = [dict(r.headers)["junheng-reason"].decode() for r in dead]
    assert len(reasons) == 13 and all(reasons), "\n".join(f"{len(r.value)} {h[:90]}" for r, h in zip(dead, reasons))  # every hostile record, and each bad item of the batch
    assert any(len(r.value) >= 10 * MIB for r in dead), "the 10 MB record is dead-lettered with its bytes"
