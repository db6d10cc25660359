"""The worker keeps its state out of the collector's generations, and still frees cycles."""

from __future__ import annotations

import gc
import weakref

import pytest

from streams.freezing import Freezer


class Node:
    def __init__(self):
        self.other = None


@pytest.fixture(autouse=True)
def thawed():
    yield
    gc.unfreeze()


def cycle() -> weakref.ref:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_objects_alive_after_a_round_are_left_out_of_collections():
    kept = [Node() for _ in range(100)]
    Freezer(full_every=3600).after_round()
    young = {id(o) for o in gc.get_objects()}
    assert not any(id(node) in young for node in kept)
    assert gc.get_freeze_count() >= len(kept)


def test_a_cycle_that_dies_after_a_round_waits_for_the_full_collection():
    now = [0.0]
    freezer = Freezer(full_every=60, clock=lambda: now[0])
    alive = cycle()
    freezer.after_round()
    gc.collect()
    assert alive() is not None  # frozen: no ordinary collection looks at it

    now[0] = 59.0
    assert not freezer.collect_all_when_due()
    assert alive() is not None

    now[0] = 60.0
    assert freezer.collect_all_when_due()
    assert alive() is None
    assert gc.get_freeze_count() > 0  # frozen again after the full collection
    assert not freezer.collect_all_when_due()  # the next one is a full interval later


def test_a_cycle_that_dies_within_a_round_is_collected_as_usual():
    freezer = Freezer(full_every=3600)
    freezer.after_round()
    alive = cycle()
    gc.collect()
    assert alive() is None
