"""China Standard Time, the time zone junheng reads a date or a timestamp without an offset in."""

import datetime as dt

#: School systems in China keep local time; a date (a snapshot's as_of) ends at its midnight here.
CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
