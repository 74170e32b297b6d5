"""The wall clock of live streams, in one configured time zone: written, and read back.

An event of a live or pulled stream carries the Unix time it began (``wall_start``). Its user
asks "what happened at 10:30?" and expects "from 10:31:05 to 10:31:14 UTC" back, not stream
times ("from 27.8 s to 36.5 s"). One zone serves both directions — ``language.timezone``: the
clock times a question names are read in it, and answers write their times in it and say which
it is — so the question, the text and the citations' ``wall_start``/``wall_end`` agree. The
default is UTC, not the process's zone: every replica of a shared store then answers alike, and
a container's zone is UTC anyway unless someone set it (``local`` opts into the process's zone).

The reverse, :func:`marks`, reads clock times back out of an answer, for the check that a
decoder's phrasing states no time its evidence lacks (:mod:`eventvstream.language.grounding`).
Files have no wall clock; their times stay stream times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from datetime import time as day_time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LOCAL = "local"  # the one ``language.timezone`` value that is not a zone's name


def zone(name: str) -> tzinfo | None:
    """The zone a ``language.timezone`` value names: UTC, an IANA name ("Europe/Berlin"), or
    ``local`` (None: the process's zone, from TZ or /etc/localtime). ValueError when unknown."""
    key = name.strip()
    if key.lower() == "utc":
        return timezone.utc
    if key.lower() == LOCAL:
        return None
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin', 'UTC' or "
            "'local' (the server process's zone)"
        ) from exc


@dataclass(frozen=True)
class Clock:
    """Unix times <-> the clock on the wall in one zone (None: the process's local zone)."""

    tz: tzinfo | None = timezone.utc

    @classmethod
    def named(cls, name: str) -> Clock:
        return cls(zone(name))

    def at(self, unix: float) -> datetime:
        """The aware local date and time of ``unix`` in this zone."""
        if self.tz is None:
            return datetime.fromtimestamp(unix).astimezone()
        return datetime.fromtimestamp(unix, self.tz)

    def unix(self, day: date, seconds: float) -> float:
        """The Unix time of ``seconds`` after midnight on ``day`` by this zone's clock."""
        whole = int(seconds)
        if not 0 <= whole < 86400:  # "25:10" read as a clock: past midnight, as elapsed time
            return self.unix(day, 0.0) + seconds
        hours, rest = divmod(whole, 3600)
        moment = datetime.combine(day, day_time(hours, rest // 60, rest % 60))
        if self.tz is None:
            return moment.timestamp() + (seconds - whole)  # naive: read as the local zone
        return moment.replace(tzinfo=self.tz).timestamp() + (seconds - whole)

    def latest(self, seconds: float, now: float) -> float:
        """The latest Unix time at or before ``now`` whose clock reads ``seconds`` after
        midnight: "since 23:00" asked at 01:00 means yesterday's 23:00."""
        today = self.at(now).date()
        moment = self.unix(today, seconds)
        return self.unix(today - timedelta(days=1), seconds) if moment > now else moment

    def label(self, unix: float) -> str:
        """The zone's name as the answer says it: "UTC", "CET"; never digits (a digit would
        read as a stated time or a stray number to the answer checks)."""
        for name in (self.at(unix).tzname(), getattr(self.tz, "key", None)):
            if name and not any(c.isdigit() for c in name):
                return name
        return "local time"

    def moment(self, unix: float, now: float) -> str:
        """'10:31:05 UTC', with the date in front when it is not ``now``'s day."""
        return f"{self._time(unix, self.at(now).date())} {self.label(unix)}"

    def span(self, start: float, end: float, now: float) -> str:
        """'10:31:05 to 10:31:14 UTC'; each end dated when its day is not the day before it."""
        first = self._time(start, self.at(now).date())
        second = self._time(end, self.at(start).date())
        return f"{first} to {second} {self.label(start)}"

    def _time(self, unix: float, day: date) -> str:
        """'10:31:05' (seconds cut, as a clock shows them), '2026-12-01 10:31:05' off ``day``."""
        moment = self.at(unix)
        text = moment.strftime("%H:%M:%S")
        return text if moment.date() == day else f"{moment:%Y-%m-%d} {text}"


# A clock time as an answer may write it: 10:31, 10:31:05, 0:04.8, 9:05 pm, 2026-12-01 10:31:05.
_MARK = re.compile(
    r"(?<![\d.:])(?:(\d{4})-(\d{2})-(\d{2})[ T])?(\d{1,2}):(\d{2})(?::(\d{2}))?(\.\d+)?"
    r"(?![\d:])(?:\s*([ap])\.?m\b\.?)?",
    re.I,
)


@dataclass(frozen=True)
class Mark:
    """A clock time written in a text, with both its readings: a time of day (``day_s``
    seconds after midnight, on ``day`` when a date was written, lasting ``precision`` s: a
    minute for "10:31") and a stream time ("1:30" is 90 s into a video)."""

    text: str
    day: date | None
    day_s: float
    precision: float
    stream_s: float

    def within(self, clock: Clock, start: float, end: float) -> bool:
        """Whether this time of day, on any date it could mean, overlaps Unix [start, end]."""
        days = {self.day} if self.day else {clock.at(start).date(), clock.at(end).date()}
        return any(
            (moment := clock.unix(day, self.day_s)) <= end and moment + self.precision >= start
            for day in days
        )


def marks(text: str) -> list[Mark]:
    """Every clock time ``text`` states (not unit times like "5 s": those are stream times)."""
    found: list[Mark] = []
    for m in _MARK.finditer(text):
        year, month, day, hours, minutes, seconds, fraction, meridiem = m.groups()
        h, mi, s = int(hours), int(minutes), int(seconds or 0)
        stream = (h * 3600 + mi * 60 + s) if seconds else (h * 60 + mi)
        stream += float(fraction or 0.0)
        if meridiem:
            h = h % 12 + (12 if meridiem.lower() == "p" else 0)
        try:
            on = date(int(year), int(month), int(day)) if year else None
        except ValueError:  # "2026-13-45": not a date; the time alone is still checked
            on = None
        precision = 1.0 if seconds else 60.0
        found.append(Mark(m.group(0), on, h * 3600 + mi * 60 + s, precision, stream))
    return found


def strip_marks(text: str) -> str:
    """``text`` without its clock times (what is left may still state unit times)."""
    return _MARK.sub(" ", text)
