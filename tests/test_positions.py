"""Positions: a partition's records are folded strictly in order from the stored position."""

from hypothesis import given
from hypothesis import strategies as st

from streams.positions import Positions, Verdict

FOLD, HELD, AHEAD = Verdict.FOLD, Verdict.HELD, Verdict.SKIPPED_AHEAD


def test_a_partition_never_folded_starts_where_the_consumer_starts():
    positions = Positions({})
    assert positions.admit(0, 17, generation=1) is FOLD
    assert positions.next == {0: 18}


def test_older_records_are_held_and_newer_ones_are_refused_until_the_gap_is_read():
    positions = Positions({"2": {"next": 45}})
    assert positions.admit(2, 44, generation=1) is HELD
    assert positions.admit(2, 56, generation=1) is AHEAD
    assert positions.next[2] == 45
    assert [positions.admit(2, offset, generation=1) for offset in (45, 46, 46, 48)] == [FOLD, FOLD, HELD, AHEAD]
    assert positions.next[2] == 47


def test_a_new_generation_starts_again_from_the_store():
    store = {"1": {"next": 10}}
    positions = Positions(store)
    assert positions.admit(1, 10, generation=1) is FOLD
    store["1"] = {"next": 30}  # recovered from the changelog after the partition came back
    assert positions.admit(1, 11, generation=2) is HELD
    assert positions.admit(1, 30, generation=2) is FOLD


def test_moved_positions_are_taken_once():
    positions = Positions({})
    positions.admit(0, 5, generation=1)
    positions.admit(3, 9, generation=1)
    positions.admit(3, 10, generation=1)
    assert positions.take_moved() == {0: 6, 3: 11}
    assert positions.take_moved() == {}


def test_a_seek_is_asked_for_once_until_it_has_had_time_to_work(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("streams.positions.time.monotonic", lambda: now[0])
    positions = Positions({})
    assert positions.should_seek(0) and not positions.should_seek(0)
    now[0] += Positions.RESEEK_AFTER
    assert positions.should_seek(0)


@given(st.lists(st.integers(min_value=0, max_value=30), max_size=200), st.integers(min_value=0, max_value=10))
def test_whatever_is_delivered_the_folded_offsets_run_on_without_a_gap(deliveries, start):
    positions = Positions({"0": {"next": start}})
    folded = [offset for offset in deliveries if positions.admit(0, offset, generation=1) is FOLD]
    assert folded == list(range(start, start + len(folded)))
