"""Historical bars from IB: request sizing (IB's durations per bar size) and one request → one DataFrame.

Every request uses ``formatDate=2`` (epoch seconds → UTC) and an explicit UTC ``endDateTime`` (``yyyymmdd-hh:mm:ss``),
so no time zone is ever guessed (facts §4, §6.9).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from ibkrtool.errors import IbRefused, PacingError
from ibkrtool.ib import errors as codes
from ibkrtool.ib.compat import IB, Contract, RequestError
from ibkrtool.model import BAR_COLUMNS, BarSize

log = logging.getLogger(__name__)
UTC = timezone.utc
DAY_S = 86_400

# Span of one request per bar size, ≈2000 bars or fewer (facts §4: "suggested chunk per request").
_MAX_SPAN_S = {
    "1 secs": 1800, "5 secs": 3600, "10 secs": 14400, "15 secs": 14400, "30 secs": 28800,
    "1 min": DAY_S, "2 mins": 2 * DAY_S, "3 mins": 7 * DAY_S, "5 mins": 7 * DAY_S, "10 mins": 7 * DAY_S,
    "15 mins": 7 * DAY_S, "20 mins": 7 * DAY_S, "30 mins": 7 * DAY_S,
    "1 hour": 30 * DAY_S, "2 hours": 30 * DAY_S, "3 hours": 30 * DAY_S, "4 hours": 30 * DAY_S, "8 hours": 30 * DAY_S,
    "1 day": 365 * DAY_S, "1 week": 365 * DAY_S, "1 month": 365 * DAY_S,
}
# IB keeps bars of 30 s or less for about six months (facts §4).
SMALL_BAR_MAX_S = 30
SMALL_BAR_HISTORY = timedelta(days=180)


class NoData(Exception):
    """IB answered that the range holds no data (an empty covered range, not an error)."""


def max_span_s(bar_size: BarSize) -> int:
    """Longest window (seconds) one request for ``bar_size`` should cover. Raises ``KeyError`` for non-IB sizes."""
    return _MAX_SPAN_S[bar_size.ib]


def duration_text(span_s: float) -> str:
    """IB ``durationStr`` covering at least ``span_s`` seconds: ``"1800 S"`` up to a day, else ``"N D"``."""
    if span_s <= DAY_S:
        return f"{max(1, math.ceil(span_s))} S"
    return f"{math.ceil(span_s / DAY_S)} D"


def end_text(end: datetime) -> str:
    """IB ``endDateTime`` in the zone-free UTC form ``yyyymmdd-hh:mm:ss``; ``end`` must be tz-aware."""
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    return end.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")


@dataclass(frozen=True)
class BarsRequest:
    """One historical request, in IB's words."""

    end: str
    duration: str
    bar_size: str
    what_to_show: str
    rth: bool


class BarsAnswer:
    """IB's answer to one historical request, kept as the client delivered it until ``frame()`` converts it.

    A backfill converts while it waits for IB's pacing windows, so converting never delays decoding the next
    answer (and with it the next release, bench/pacing.py).
    """

    __slots__ = ("_bars", "bar_size")

    def __init__(self, bars: list, bar_size: BarSize) -> None:
        self._bars = bars
        self.bar_size = bar_size

    def __len__(self) -> int:
        return len(self._bars)

    def frame(self) -> pd.DataFrame:
        """The bars DataFrame (index ``ts`` UTC bar start, -1 → NaN)."""
        return bars_frame(self._bars, self.bar_size)


def bars_frame(bars: list, bar_size: BarSize) -> pd.DataFrame:
    """IB BarData list → the bars DataFrame convention (index ``ts`` UTC bar start; -1 → NaN).

    Built column-wise: a 1-second reply holds up to 2,000 bars and a fast backfill converts dozens a second.
    """
    if not bars:
        return empty_bars()
    first = bars[0].date
    if isinstance(first, datetime) and first.tzinfo is not None:  # intraday: an aware instant is its own UTC start
        stamps = np.fromiter((b.date.timestamp() for b in bars), np.float64, len(bars))
    else:
        stamps = np.fromiter((_bar_start(b.date, bar_size).timestamp() for b in bars), np.float64, len(bars))
    values = np.array([(b.open, b.high, b.low, b.close, b.volume, b.average, b.barCount) for b in bars],
                      dtype=np.float64)
    values[:, 4:][values[:, 4:] < 0] = np.nan
    index = pd.DatetimeIndex(np.round(stamps * 1e6).astype("datetime64[us]"), name="ts").tz_localize(UTC)
    df = pd.DataFrame(values, index=index, columns=list(BAR_COLUMNS))
    if not index.is_monotonic_increasing or index.has_duplicates:
        df = df[~df.index.duplicated(keep="last")].sort_index()
    return df


def empty_bars() -> pd.DataFrame:
    """An empty frame with the bars columns and a UTC ``ts`` index."""
    index = pd.DatetimeIndex([], tz=UTC, name="ts")
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_COLUMNS}, index=index)


def _bar_start(value: datetime | date, bar_size: BarSize) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    # daily and longer bars come as dates: label them 00:00 UTC of that date
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


async def fetch_bars(ib: IB, contract: Contract, request: BarsRequest, bar_size: BarSize,
                     timeout_s: float = 60.0, on_sent: Callable[[], None] | None = None,
                     on_answered: Callable[[], None] | None = None) -> pd.DataFrame:
    """Send one ``reqHistoricalData`` and return its bars (UTC, bar start).

    Raises ``PacingError`` (IB 162 pacing / 420 / 100), ``NoData`` (162 "no data"), ``asyncio.TimeoutError``
    (no answer within ``timeout_s``; the request is cancelled), ``IbRefused`` for anything else IB refuses.
    ``on_sent`` is called right after the request left (to book it for pacing), ``on_answered`` as soon as the
    answer, an error or the timeout arrived (before the bars are converted).
    """
    return bars_frame(await fetch_bar_list(ib, contract, request, timeout_s, on_sent, on_answered), bar_size)


async def fetch_bar_list(ib: IB, contract: Contract, request: BarsRequest, timeout_s: float = 60.0,
                         on_sent: Callable[[], None] | None = None,
                         on_answered: Callable[[], None] | None = None) -> list:
    """``fetch_bars`` without the conversion: the client's ``BarData`` list, for ``bars_frame`` later.

    A backfill converts while it waits for IB's pacing windows, so converting never delays decoding the next
    answer (and with it the next release). Same errors and callbacks as ``fetch_bars``.
    """
    ib.RaiseRequestErrors = True
    req_id = ib.client.getReqId()
    future = ib.wrapper.startReq(req_id, contract, container=[])
    if on_answered is not None:  # when the reply is decoded (or the wait ends), not when this task next runs
        future.add_done_callback(lambda _: on_answered())
    ib.client.reqHistoricalData(req_id, contract, request.end, request.duration, request.bar_size,
                                request.what_to_show, request.rth, 2, False, [])
    if on_sent is not None:
        on_sent()
    try:
        return await asyncio.wait_for(future, timeout_s)
    except asyncio.TimeoutError:
        ib.client.cancelHistoricalData(req_id)
        raise
    except RequestError as exc:
        raise _refusal(exc, contract) from None


def _refusal(exc: RequestError, contract: Contract) -> Exception:
    code, message = getattr(exc, "code", 0), getattr(exc, "message", str(exc))
    outcome = codes.classify_historical(code, message)
    name = contract.localSymbol or contract.symbol
    if outcome is codes.HistoricalOutcome.PACING:
        return PacingError(f"IB refused a historical request for {name} for pacing (IB {code}: {message})", code)
    if outcome is codes.HistoricalOutcome.NO_DATA:
        return NoData(message)
    if outcome is codes.HistoricalOutcome.CANCELLED:
        return asyncio.TimeoutError(message)
    return IbRefused(f"IB refused historical data for {name} (IB {code}: {message})", code)
