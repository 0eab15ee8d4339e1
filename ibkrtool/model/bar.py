"""Bars and bar sizes in the field's words. IB's spellings (``"5 mins"``) are parsed and produced here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from ibkrtool.errors import InputError


class BarUnit(str, Enum):
    SECOND = "s"
    MINUTE = "m"
    HOUR = "h"
    DAY = "d"
    WEEK = "w"
    MONTH = "mo"


_UNIT_SECONDS = {BarUnit.SECOND: 1, BarUnit.MINUTE: 60, BarUnit.HOUR: 3600, BarUnit.DAY: 86400, BarUnit.WEEK: 604800}
_IB_UNIT_WORD = {
    BarUnit.SECOND: ("sec", "secs"),
    BarUnit.MINUTE: ("min", "mins"),
    BarUnit.HOUR: ("hour", "hours"),
    BarUnit.DAY: ("day", "day"),
    BarUnit.WEEK: ("week", "week"),
    BarUnit.MONTH: ("month", "month"),
}
_ALIASES = {
    "s": BarUnit.SECOND, "sec": BarUnit.SECOND, "secs": BarUnit.SECOND, "second": BarUnit.SECOND,
    "seconds": BarUnit.SECOND,
    "m": BarUnit.MINUTE, "min": BarUnit.MINUTE, "mins": BarUnit.MINUTE, "minute": BarUnit.MINUTE,
    "minutes": BarUnit.MINUTE, "t": BarUnit.MINUTE,
    "h": BarUnit.HOUR, "hr": BarUnit.HOUR, "hour": BarUnit.HOUR, "hours": BarUnit.HOUR,
    "d": BarUnit.DAY, "day": BarUnit.DAY, "days": BarUnit.DAY,
    "w": BarUnit.WEEK, "wk": BarUnit.WEEK, "week": BarUnit.WEEK, "weeks": BarUnit.WEEK,
    "mo": BarUnit.MONTH, "mon": BarUnit.MONTH, "month": BarUnit.MONTH, "months": BarUnit.MONTH,
}
# IB's own list of historical bar sizes (TWS API "Historical Bar Data", valid bar sizes).
IB_BAR_SIZES: tuple[str, ...] = (
    "1 secs", "5 secs", "10 secs", "15 secs", "30 secs",
    "1 min", "2 mins", "3 mins", "5 mins", "10 mins", "15 mins", "20 mins", "30 mins",
    "1 hour", "2 hours", "3 hours", "4 hours", "8 hours",
    "1 day", "1 week", "1 month",
)
_PATTERN = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")


@dataclass(frozen=True, order=True)
class BarSize:
    """A bar length: ``count`` units. ``str()`` is the short canonical label stored in the database (``5m``)."""

    count: int
    unit: BarUnit

    @classmethod
    def parse(cls, text: str) -> BarSize:
        """Parse ``1s``, ``5m``, ``5 mins``, ``1 hour``, ``1d``, ``1W``, ``1M`` (month; ``1m`` is a minute).

        Raises ``InputError`` naming the accepted forms.
        """
        match = _PATTERN.match(text or "")
        if not match:
            raise InputError(f"bar size {text!r} is not understood; use e.g. 1s, 5s, 1m, 5m, 1h, 1d or IB's '5 mins'")
        count, word = int(match[1]), match[2]
        unit = BarUnit.MONTH if word == "M" else _ALIASES.get(word.lower())
        if unit is None or count <= 0:
            raise InputError(f"bar size {text!r} is not understood; use e.g. 1s, 5s, 1m, 5m, 1h, 1d or IB's '5 mins'")
        return cls(count, unit)

    def __str__(self) -> str:
        return f"{self.count}{self.unit.value}"

    @property
    def seconds(self) -> int:
        """Length in seconds; months have no fixed length and raise ``InputError``."""
        if self.unit is BarUnit.MONTH:
            raise InputError("monthly bars have no fixed length in seconds")
        return self.count * _UNIT_SECONDS[self.unit]

    @property
    def is_intraday(self) -> bool:
        return self.unit in (BarUnit.SECOND, BarUnit.MINUTE, BarUnit.HOUR)

    @property
    def ib(self) -> str:
        """IB's ``barSizeSetting`` spelling (``"1 secs"``, ``"5 mins"``, ``"1 hour"``)."""
        singular, plural = _IB_UNIT_WORD[self.unit]
        word = plural if (self.count > 1 or self.unit is BarUnit.SECOND) else singular
        return f"{self.count} {word}"

    @property
    def is_ib_size(self) -> bool:
        """True if IB serves historical bars of this size."""
        return self.ib in IB_BAR_SIZES


class WhatToShow(str, Enum):
    TRADES = "TRADES"
    MIDPOINT = "MIDPOINT"
    BID = "BID"
    ASK = "ASK"
    BID_ASK = "BID_ASK"

    @classmethod
    def parse(cls, text: str) -> WhatToShow:
        try:
            return cls(text.strip().upper())
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise InputError(f"what-to-show {text!r} is not one of {allowed}") from None


@dataclass(frozen=True)
class Bar:
    """One OHLCV bar. ``start`` is the bar's opening instant, tz-aware UTC. ``wap``/``bar_count`` may be None."""

    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float | None = None
    bar_count: int | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("Bar.start must be timezone-aware (UTC)")


BAR_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "wap", "bar_count")
