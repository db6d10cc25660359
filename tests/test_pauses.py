"""Garbage-collector pauses recorded for the worker's log."""

from __future__ import annotations

import gc

from streams.pauses import CollectorPauses


def test_collections_over_the_threshold_are_recorded_once_and_none_after_uninstalling():
    pauses = CollectorPauses(threshold=0.0).install()
    try:
        gc.collect()
        gc.collect(0)
        taken = pauses.take()
    finally:
        pauses.uninstall()
    assert [generation for generation, _ in taken][-2:] == [2, 0]
    assert all(seconds >= 0 for _, seconds in taken)
    assert pauses.take() == []
    gc.collect()
    assert pauses.take() == []


def test_collections_under_the_threshold_are_not_recorded():
    pauses = CollectorPauses(threshold=60.0).install()
    try:
        gc.collect()
    finally:
        pauses.uninstall()
    assert pauses.take() == []
