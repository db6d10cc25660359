"""Counters a worker keeps about its own work, read by the metrics collector at scrape time."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Health:
    """A worker's pipeline counters since it started.

    `events` counts handled events by (type, outcome), outcome being one of `applied`,
    `duplicate`, `stale`, `rejected` (contracts.md §3); `consumer_lag` is the number of messages
    behind the end of each owned (topic, partition); `newest_event_time` is the event time (Unix
    seconds) of the newest applied event, None before the first, and never later than the
    worker's clock when it applied it (an event may be a little ahead, streams/future.py);
    `broker_stalls` counts the outages of the broker the worker saw (one per outage,
    streams/stall.py) and `broker_stalled` is True while one lasts; `rereads` counts the times
    the consumer was sent back to a partition's position: records arrived ahead of it, or the
    partition had records waiting and made no progress (streams/positions.py).
    """

    events: dict[tuple[str, str], int] = field(default_factory=dict)
    dead_lettered: int = 0
    consumer_lag: dict[tuple[str, int], int] = field(default_factory=dict)
    newest_event_time: float | None = None
    rule_evaluations: int = 0
    broker_stalls: int = 0
    broker_stalled: bool = False
    rereads: int = 0
