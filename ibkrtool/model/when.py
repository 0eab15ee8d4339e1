"""The one time rule for everything typed by a user or read from a file.

- A date (``2026-11-20``) means that trading day of the instrument, in its exchange's zone; as an end it is
  inclusive (the whole day).
- A datetime needs a zone (``2026-11-20T14:30:00Z``, ``…-05:00``) or an explicit ``--tz``: a naive time is
  refused, because guessing New York for one command and UTC for another shifted data by five hours.
- Inside, every instant is a tz-aware UTC ``datetime``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ibkrtool.errors import InputError

UTC = timezone.utc

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def zone_named(name: str, option: str = "--tz") -> ZoneInfo:
    """The IANA zone ``name``; ``InputError`` naming ``option`` when unknown."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"{option} {name!r}: unknown time zone; use an IANA name such as America/New_York "
                         "or UTC") from None


@dataclass(frozen=True)
class When:
    """A bound typed by the user: a trading ``day`` or an ``instant`` (tz-aware UTC), exactly one of them."""

    text: str
    day: date | None = None
    instant: datetime | None = None

    @classmethod
    def parse(cls, text: str, option: str, tz: ZoneInfo | None = None) -> When:
        """Parse ``text`` given for ``option``; ``tz`` reads a zone-less datetime (from ``--tz``).

        Raises ``InputError`` with the fix: the accepted forms, or how to add a zone.
        """
        raw = text.strip()
        if _DATE.match(raw):
            try:
                return cls(raw, day=date.fromisoformat(raw))
            except ValueError:
                raise InputError(f"{option} {text!r} is not a calendar date") from None
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise InputError(f"{option} {text!r} is not a date (2026-11-20) or a datetime with a zone "
                             "(2026-11-20T14:30:00Z)") from None
        if moment.tzinfo is None:
            if tz is None:
                raise InputError(f"{option} {text!r} has no time zone: add one ({raw}Z, {raw}-05:00) or give "
                                 "--tz America/New_York")
            moment = moment.replace(tzinfo=tz)
        return cls(raw, instant=moment.astimezone(UTC))

    @classmethod
    def optional(cls, text: str | None, option: str, tz: ZoneInfo | None = None) -> When | None:
        """``parse`` for an option that may be absent."""
        return None if text is None or not text.strip() else cls.parse(text, option, tz)

    def start_in(self, zone: ZoneInfo, roll: time | None = None) -> datetime:
        """As a start: when the trading day begins in ``zone`` (UTC) — midnight, or the ``roll`` time of the day
        before for markets whose day starts the evening before (forex: 17:00 New York) —, or the instant itself."""
        if self.instant is not None:
            return self.instant
        assert self.day is not None
        if roll is not None:
            return datetime.combine(self.day - timedelta(days=1), roll, zone).astimezone(UTC)
        return datetime.combine(self.day, time(0), zone).astimezone(UTC)

    def end_in(self, zone: ZoneInfo, roll: time | None = None) -> datetime:
        """As an (exclusive) end: when the trading day ends (the day is inclusive), or the instant itself."""
        if self.instant is not None:
            return self.instant
        assert self.day is not None
        if roll is not None:
            return datetime.combine(self.day, roll, zone).astimezone(UTC)
        return datetime.combine(self.day + timedelta(days=1), time(0), zone).astimezone(UTC)

    def __str__(self) -> str:
        return self.text


def bounds(start: When | None, end: When | None, zone: ZoneInfo, roll: time | None = None
           ) -> tuple[datetime | None, datetime | None]:
    """``[start, end)`` in UTC for an instrument whose exchange is in ``zone`` (and whose trading day starts at
    ``roll`` the evening before, if it does); ``InputError`` when inverted."""
    lo = start.start_in(zone, roll) if start is not None else None
    hi = end.end_in(zone, roll) if end is not None else None
    if lo is not None and hi is not None and lo >= hi:
        raise InputError(f"--start {start} is not before --end {end}")
    return lo, hi
