"""Events dated ahead of the worker's clock: refused, with their reason, to the dead-letter topic.

A school system whose clock is wrong, or a typo (2999 for 2029), dates an event in the future.
Accepted, such an event did lasting harm: the newest event time went ahead of the clock, which
pinned `junheng_event_lag_seconds` at 0 (and blinded the alert on a stuck worker); and since a
snapshot supersedes only changes dated on or before its `as_of`, a future-dated value outlived
every later snapshot. A snapshot dated in the future did the opposite harm: every real change
dated up to its `as_of` would have been taken as already counted, and dropped.

So an event is refused when its `occurred_at`, or for a snapshot the end of its `as_of` day, lies
more than a tolerance (`JUNHENG_FUTURE_TOLERANCE`) after the worker's clock. A date without a
time of day is read in China Standard Time, as a timestamp without an offset is (schemas/events.py).
Only the streams layer reads the wall clock, and "now" is always given to these functions.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from schemas.china_time import CHINA_STANDARD_TIME

if TYPE_CHECKING:  # streams/settings.py imports this module: the event models took 23 ms more
    from schemas import events as ev

#: JUNHENG_FUTURE_TOLERANCE's default, seconds: one day. School systems' clocks drift, and their
#: time zones differ from China Standard Time (a timestamp sent in local time without an offset
#: is read as +08:00), by hours, not days; and a snapshot dated today (China time) is accepted from
#: the first second of that day, while one dated tomorrow is always refused. A wrong year, month
#: or day is caught.
FUTURE_TOLERANCE = 24 * 3600.0

_EPOCH = dt.date(1970, 1, 1).toordinal()
_DAY = dt.timedelta(days=1)
WORKER_CLOCK = ("the worker's clock", "工作进程时钟")


class Horizon:
    """How far ahead events may be dated, from one reading of a clock: up to `tolerance` seconds
    after `now` (Unix seconds). `clock` names whose clock it is, in English and Chinese."""

    __slots__ = ("now", "tolerance", "clock", "_surely", "_latest")

    def __init__(self, now: float, tolerance: float, clock: tuple[str, str] = WORKER_CLOCK):
        self.now, self.tolerance, self.clock = now, tolerance, clock
        # A timestamp whose own date is two days before the latest moment's date (UTC) is before
        # it whatever its offset (less than a day either way), so most events (a backlog's, a
        # bench's) pass on their date alone: comparing two aware datetimes cost 0.8 µs, a date 50 ns.
        self._surely = int((now + tolerance) // 86400) + _EPOCH - 2
        self._latest: dt.datetime | None = None

    @property
    def latest(self) -> dt.datetime:
        """The latest moment an event may speak for."""
        if self._latest is None:
            self._latest = dt.datetime.fromtimestamp(self.now + self.tolerance, dt.timezone.utc)
        return self._latest

    def refuses(self, event: ev.Event) -> str | None:
        """The dead-letter reason for an event dated too far ahead, or None (`too_far_ahead`)."""
        if event.occurred_at.toordinal() <= self._surely and "as_of" not in event.__dict__:
            return None
        return too_far_ahead(event, self.latest, self.tolerance, self.clock)


def ends_after(day: dt.date, moment: dt.datetime) -> bool:
    """Whether a date (China Standard Time) ends after `moment`: a snapshot as of that day
    counts every change dated up to its end. (Its start is compared: the day after 9999-12-31
    is no date.)"""
    return dt.datetime.combine(day, dt.time(), tzinfo=CHINA_STANDARD_TIME) > moment - _DAY


def too_far_ahead(event: ev.Event, latest: dt.datetime, tolerance: float,
                  clock: tuple[str, str] = WORKER_CLOCK) -> str | None:
    """The dead-letter reason for an event dated after `latest`, `tolerance` seconds after the
    clock `clock` names (see `Horizon`), or None for one that is not."""
    # A snapshot's as_of first: `junheng load` dates its events at the end of that day.
    as_of = event.__dict__.get("as_of")  # snapshots only; a plain look-up, as in Pipeline._load
    if as_of is not None and ends_after(as_of, latest):
        return (f"as_of {as_of.isoformat()} ends more than {_span(tolerance)} after {clock[0]} "
                f"({_now(latest, tolerance)}): a snapshot counts every change dated up to the end of its as_of, "
                f"so one dated ahead would drop real changes still to come (JUNHENG_FUTURE_TOLERANCE) "
                f"/ 快照日期 as_of 的结束时刻晚于{clock[1]}逾 {_span_zh(tolerance)}，其后的真实变更将被当作已计入而忽略")
    if event.occurred_at > latest:
        return (f"occurred_at {event.occurred_at.isoformat()} is more than {_span(tolerance)} ahead of {clock[0]} "
                f"({_now(latest, tolerance)}): check the sending system's clock (JUNHENG_FUTURE_TOLERANCE) "
                f"/ 事件时间 occurred_at 超前于{clock[1]}逾 {_span_zh(tolerance)}，请检查发送系统的时钟")
    return None


def _now(latest: dt.datetime, tolerance: float) -> str:
    now = latest - dt.timedelta(seconds=tolerance)
    return now.astimezone(CHINA_STANDARD_TIME).isoformat(timespec="seconds")


def _span(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{seconds:g} s"


def _span_zh(seconds: float) -> str:
    for unit, size in (("天", 86400), ("小时", 3600), ("分钟", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} 秒"
