"""How much of a fiscal year is gone: the time progress (时间进度) a rule prorated over the year
holds a figure of the year so far to.

The standard judges some figures over a whole year (Q4: a school spends at least 5% of its annual
public-funds budget on teacher training). Judged on the whole limit from the first day of the
year, every school fell short the day its new budget arrived and stayed short for months: a flood
of critical alerts each January that told nothing. Budget execution in China is followed against
time progress by month, as here: the months of the year ended before the day, so nothing is due in
January, 1/12 from February 1, 11/12 in December, and a year gone is judged on the whole limit.
China's fiscal year is the calendar year.
"""

from __future__ import annotations

import datetime as dt


def year_gone(year: int, day: dt.date) -> float:
    """The share of fiscal year `year` gone on `day`: its months ended before `day`, twelfths;
    0 before the year, 1 once it has ended."""
    if year < day.year:
        return 1.0
    if year > day.year:
        return 0.0
    return (day.month - 1) / 12


def same_progress(day: dt.date, other: dt.date) -> bool:
    """Whether every year's share gone is the same on both days (they are of one month)."""
    return (day.year, day.month) == (other.year, other.month)
