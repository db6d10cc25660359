"""An alert's expression held through a gap in which no worker exports its district.

A worker restarting, partitions moving between workers and failed scrapes each leave a gap in
which Prometheus marks every series of the district stale. Without a hold, each gap resolved the
district's alerts and restarted their `for:` wait (`hold_unexported` in alerts/windows.yaml).
"""

from __future__ import annotations


def held_through_gaps(now: str, last: str) -> str:
    """The series of `now`; and, where no worker exports the district at all, those of `last`
    (the same series as last seen within the hold, `last_over_time(...[hold])`)."""
    return f"(\n{now}\n)\nor\n(\n{last}\n    unless on (district) junheng_district_info\n)"
