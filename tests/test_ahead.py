"""When a worker renders /metrics ahead of the scrapes (streams/ahead.py)."""

from __future__ import annotations

from streams.ahead import RenderAhead

OWNED = frozenset({0, 1})


def test_after_a_rebuild_for_new_partitions():
    ahead = RenderAhead()
    assert not ahead.due(None, handled=0, stamp=0, rendering=False)  # nothing assigned yet
    assert ahead.due(OWNED, handled=0, stamp=5, rendering=False)
    assert not ahead.due(OWNED, handled=10, stamp=9, rendering=False)  # folding: left to scrapes
    assert ahead.due(frozenset({1}), handled=20, stamp=12, rendering=False)  # a rebalance


def test_a_rebuild_during_a_render_waits_for_it_to_end():
    ahead = RenderAhead()
    assert not ahead.due(OWNED, handled=0, stamp=5, rendering=True)
    assert not ahead.due(OWNED, handled=4, stamp=6, rendering=True)
    assert ahead.due(OWNED, handled=8, stamp=7, rendering=False)


def test_in_a_round_that_folded_nothing_once_per_change():
    ahead = RenderAhead()
    assert ahead.due(OWNED, handled=0, stamp=5, rendering=False)
    assert not ahead.due(OWNED, handled=100, stamp=40, rendering=False)  # busy
    assert ahead.due(OWNED, handled=100, stamp=40, rendering=False)  # quiet, with changes to render
    assert not ahead.due(OWNED, handled=100, stamp=40, rendering=False)  # quiet, nothing new
    assert not ahead.due(OWNED, handled=100, stamp=41, rendering=True)  # quiet, but a scrape renders
    assert ahead.due(OWNED, handled=100, stamp=41, rendering=False)
