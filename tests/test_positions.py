"""Positions: a partition's records are folded strictly in order from the position it resumed at."""

from hypothesis import given
from hypothesis import strategies as st

from streams.positions import Positions, Verdict

FOLD, HELD, AHEAD, WAIT = Verdict.FOLD, Verdict.HELD, Verdict.SKIPPED_AHEAD, Verdict.NOT_RESUMED


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_records_wait_until_their_generation_has_resumed():
    positions = Positions({})
    assert positions.admit(0, 17, generation=1) is WAIT
    positions.resume(1, {0: 17})
    assert positions.admit(0, 17, generation=1) is FOLD
    assert positions.admit(1, 0, generation=1) is WAIT  # a partition this worker does not own
    assert positions.admit(0, 18, generation=2) is WAIT  # a rebalance happened since
    assert positions.next == {0: 18}


def test_older_records_are_held_and_newer_ones_refused_until_the_gap_is_read():
    positions = Positions({})
    positions.resume(1, {2: 45})
    assert positions.admit(2, 44, generation=1) is HELD
    assert positions.admit(2, 56, generation=1) is AHEAD
    assert positions.next[2] == 45
    assert [positions.admit(2, offset, generation=1) for offset in (45, 46, 46, 48)] == [FOLD, FOLD, HELD, AHEAD]
    assert positions.next[2] == 47


def test_the_stored_position_is_where_a_partition_resumes():
    positions = Positions({"1": {"next": 30}})
    assert positions.stored(1, default=0) == 30
    assert positions.stored(2, default=7) == 7


def test_moved_positions_are_taken_once():
    positions = Positions({})
    positions.resume(1, {0: 5, 3: 9})
    positions.admit(0, 5, generation=1)
    positions.admit(3, 9, generation=1)
    positions.admit(3, 10, generation=1)
    assert positions.take_moved() == {0: 6, 3: 11}
    assert positions.take_moved() == {}


def test_a_seek_is_asked_for_once_until_it_has_had_time_to_work():
    clock = Clock()
    positions = Positions({}, clock=clock)
    assert positions.should_seek(0) and not positions.should_seek(0)
    clock.now += Positions.RESEEK_AFTER
    assert positions.should_seek(0)


@given(st.lists(st.integers(min_value=0, max_value=30), max_size=200), st.integers(min_value=0, max_value=10))
def test_whatever_is_delivered_the_folded_offsets_run_on_without_a_gap(deliveries, start):
    positions = Positions({})
    positions.resume(1, {0: start})
    folded = [offset for offset in deliveries if positions.admit(0, offset, generation=1) is FOLD]
    assert folded == list(range(start, start + len(folded)))
    assert positions.next[0] == start + len(folded)


def test_a_partition_with_records_waiting_and_no_progress_is_read_again_once_per_stall():
    clock = Clock()
    positions = Positions({}, clock=clock)
    positions.resume(1, {0: 10, 1: 20})
    clock.now += Positions.STALL_AFTER - 0.1
    assert positions.stalled({0: 50, 1: 20}) == []
    clock.now += 0.2
    # Partition 1 has nothing beyond its position: not stalled, only idle.
    assert positions.stalled({0: 50, 1: 20}) == [0]
    assert positions.stalled({0: 50, 1: 20}) == []  # sent back just now
    clock.now += Positions.STALL_AFTER
    assert positions.stalled({0: 50, 1: None}) == [0]  # the seek brought nothing: again
    assert positions.admit(0, 10, generation=1) is FOLD
    clock.now += Positions.STALL_AFTER - 0.1
    assert positions.stalled({0: 50}) == []  # progress since


def test_while_the_agent_is_busy_a_partition_is_read_again_only_after_the_longer_wait():
    clock = Clock()
    positions = Positions({}, clock=clock)
    positions.resume(1, {0: 10})
    clock.now += Positions.STALL_AFTER + 1
    assert positions.stalled({0: 50}, busy=True) == []
    clock.now = 100.0 + Positions.STALL_AFTER_BUSY
    assert positions.stalled({0: 50}, busy=True) == [0]
