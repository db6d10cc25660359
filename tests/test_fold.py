"""Folding events: any order, with duplicates, gives the simulator's own final snapshot."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from junheng.examples import rural_county, suzhou_sip
from rules.evaluate import assess
from rules.pack import load_packs
from schemas import events as ev
from schemas.snapshot import Snapshot
from streams import state as st_
from streams.load import snapshot_events
from streams.simulate import Simulator

PACK = load_packs(["national-2017"])
SIP = suzhou_sip()


def fold(events, as_of=SIP.as_of) -> tuple[Snapshot, list[str]]:
    schools, districts, outcomes = {}, {}, []
    for event in events:
        outcomes.append(st_.apply(event, schools, districts).outcome)
    records = [st_.school_record(s) for s in schools.values()]
    snapshot = Snapshot(as_of=as_of, districts=[st_.district_record(d) for d in districts.values()],
                        schools=sorted((r for r in records if r), key=lambda r: r.id))
    return snapshot, outcomes


@pytest.mark.parametrize("make", [suzhou_sip, rural_county])
def test_loading_a_snapshot_gives_it_back(make):
    snapshot = make()
    folded, outcomes = fold(snapshot_events(snapshot), snapshot.as_of)
    assert set(outcomes) == {"applied"}
    assert assess(folded, PACK) == assess(snapshot, PACK)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(1, 400), shuffle_seed=st.integers(0, 10_000))
def test_shuffled_duplicated_changes_fold_to_the_simulated_truth(seed, count, shuffle_seed):
    sim = Simulator(SIP, seed=seed)
    changes = sim.events(count)
    rng = random.Random(shuffle_seed)
    noisy = changes + rng.sample(changes, k=len(changes) // 3)
    rng.shuffle(noisy)
    folded, outcomes = fold(snapshot_events(SIP) + noisy)
    assert "rejected" not in outcomes
    assert outcomes.count("duplicate") + outcomes.count("stale") >= len(changes) // 3
    assert assess(folded, PACK, SIP.as_of) == assess(sim.snapshot(), PACK, SIP.as_of)


def test_events_dated_inside_the_snapshot_are_stale():
    sim = Simulator(SIP, seed=3, start=dt.datetime(2023, 8, 1, tzinfo=dt.timezone.utc))
    _, outcomes = fold(snapshot_events(SIP) + sim.events(5))
    assert outcomes[-5:] == ["stale"] * 5


def test_unknown_school_is_rejected_with_a_reason():
    sim = Simulator(SIP, seed=4)
    event = sim.next_event().model_copy(update={"school": "nope"})
    with pytest.raises(st_.Rejected, match="unknown school nope"):
        st_.apply(event, {}, {})


def test_a_state_written_with_image_pairs_as_dicts_folds_on_like_one_with_pairs_as_text():
    # Before image pairs were kept as JSON text, the changelog held them as objects: a worker
    # recovering such a state must fold later events into it the same way.
    import orjson

    sim = Simulator(SIP, seed=11)
    first, later = sim.events(300), sim.events(300)
    schools, districts = {}, {}
    for event in snapshot_events(SIP) + first:
        st_.apply(event, schools, districts)
    as_text = orjson.loads(orjson.dumps(schools))
    as_dicts = {sid: {**s, "images": {k: orjson.loads(v) for k, v in s["images"].items()}}
                for sid, s in orjson.loads(orjson.dumps(schools)).items()}
    assert any(s["images"] for s in as_dicts.values())
    folded = []
    for start in (as_text, as_dicts):
        theirs, their_districts = start, orjson.loads(orjson.dumps(districts))
        outcomes = [st_.apply(event, theirs, their_districts).outcome for event in later]
        folded.append((outcomes, sorted((sid, st_.school_record(s)) for sid, s in theirs.items())))
    assert folded[0] == folded[1]
    assert folded[0][1] == sorted((sid, st_.school_record(s)) for sid, s in _fold_all(first + later).items())


def _fold_all(changes):
    schools, districts = {}, {}
    for event in snapshot_events(SIP) + changes:
        st_.apply(event, schools, districts)
    return schools


def test_district_figures_updated_apply():
    # District states keep no running sums: every district.updated failed on reading them
    # (KeyError 'sums'), and the worker dead-lettered its whole record as a fault of its own.
    schools, districts = {}, {}
    for event in snapshot_events(SIP):
        st_.apply(event, schools, districts)
    district = SIP.districts[0]
    update = ev.DistrictUpdated(event_id="d1", source="test", district=district.id, version=1,
                                occurred_at=dt.datetime(2023, 10, 9, tzinfo=dt.timezone.utc),
                                teacher_avg_pay_cny=201000.0)
    assert st_.apply(update, schools, districts) == st_.Outcome("applied", district_changed=True)
    assert st_.district_record(districts[district.id]) == district.model_copy(update={"teacher_avg_pay_cny": 201000.0})
