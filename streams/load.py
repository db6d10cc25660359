"""A snapshot as events: the baseline each district and school starts from."""

from __future__ import annotations

import datetime as dt

from schemas import events as ev
from schemas.snapshot import Snapshot


def snapshot_events(snapshot: Snapshot, source: str = "junheng-load", revision: int = 0) -> list[ev.Event]:
    """One district.snapshot per district and one school.snapshot per school.

    Loading the same snapshot twice changes nothing (same as_of and revision: duplicates); a
    corrected snapshot of the same date needs a higher `revision` (at the same revision, each
    record that differs is dead-lettered); a newer as_of replaces an older snapshot whatever its
    revision.

    The events are dated at the last second of the as_of day in China Standard Time, the time
    zone a date is read in (streams/future.py): a snapshot dated today (China time) is then less
    than a day ahead of the clock, and workers take it. At 23:59:59 UTC, as they were dated
    before, eight hours later, one loaded in the first eight hours of its day would be refused.
    """
    at = dt.datetime.combine(snapshot.as_of, dt.time(23, 59, 59), tzinfo=ev.CHINA_STANDARD_TIME)
    stamp = f"{snapshot.as_of.isoformat()}.r{revision}"
    events: list[ev.Event] = [
        ev.DistrictSnapshot(event_id=f"snapshot:{d.id}:{stamp}", source=source, district=d.id,
                            occurred_at=at, version=revision, as_of=snapshot.as_of, record=d)
        for d in snapshot.districts
    ]
    events += [
        ev.SchoolSnapshot(event_id=f"snapshot:{s.id}:{stamp}", source=source, district=s.district,
                          school=s.id, occurred_at=at, version=revision, as_of=snapshot.as_of, record=s)
        for s in snapshot.schools
    ]
    return events
