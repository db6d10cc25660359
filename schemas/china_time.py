"""China Standard Time, the time zone junheng reads a date or a timestamp without an offset in."""

import datetime as dt

#: School systems in China keep local time; a date (a snapshot's as_of) ends at its midnight here.
CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")


def china_today(now: float) -> dt.date:
    """The date in China at `now` (Unix seconds): the day a bureau's rules are taken at."""
    return dt.datetime.fromtimestamp(now, CHINA_STANDARD_TIME).date()
