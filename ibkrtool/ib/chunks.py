"""Historical requests for a backfill, planned on the exchange's sessions (pure: no I/O, no clock).

Open-market time in the range, minus what ``coverage`` already holds, is cut into requests of at most IB's
maximum span for the bar size (``history.max_span_s``); neighbouring sessions share a request when they fit, and
closed days cost nothing. Each chunk keeps the open-market pieces it covers, used to clip IB's answer and to
record coverage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pandas as pd

from ibkrtool import calendars
from ibkrtool.ib.history import SMALL_BAR_MAX_S, BarsRequest, duration_text, end_text, max_span_s
from ibkrtool.ib.pacing import HistRequest, PacingPlanner
from ibkrtool.model import BarSize, Instrument

UTC = timezone.utc
Interval = tuple[datetime, datetime]


def session_intervals(instrument: Instrument, bar_size: BarSize, lo: datetime, hi: datetime,
                      rth: bool) -> list[Interval]:
    """The parts of ``[lo, hi)`` where the market is open. Daily and longer bars: one UTC day per session that
    closes inside ``(lo, hi]`` (a session still trading at ``hi`` has no final daily bar yet)."""
    if bar_size.is_intraday:
        return [(s.open, s.close) for s in calendars.sessions_between(instrument, lo, hi, rth)]
    found = calendars.sessions(instrument, lo.date() - timedelta(days=1), hi.date() + timedelta(days=1), rth)
    days = sorted({s.date for s in found if lo < s.close <= hi})
    return [(datetime(d.year, d.month, d.day, tzinfo=UTC), datetime(d.year, d.month, d.day, tzinfo=UTC)
             + timedelta(days=1)) for d in days]


def subtract(intervals: Iterable[Interval], covered: Iterable[Interval]) -> list[Interval]:
    """``intervals`` minus the union of ``covered`` (both half-open), in order."""
    cov = sorted(covered)
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        cursor = lo
        for c_lo, c_hi in cov:
            if c_hi <= cursor or c_lo >= hi:
                continue
            if c_lo > cursor:
                out.append((cursor, c_lo))
            cursor = max(cursor, c_hi)
            if cursor >= hi:
                break
        if cursor < hi:
            out.append((cursor, hi))
    return out


@dataclass(frozen=True)
class Chunk:
    """One historical request: the window ``[start, end)`` it asks for and the open-market pieces it covers."""

    symbol: str
    pieces: tuple[Interval, ...]

    @property
    def start(self) -> datetime:
        return self.pieces[0][0]

    @property
    def end(self) -> datetime:
        return self.pieces[-1][1]

    def request(self, bar_size: BarSize, what_to_show: str, rth: bool) -> BarsRequest:
        span = (self.end - self.start).total_seconds()
        return BarsRequest(end_text(self.end), duration_text(span), bar_size.ib, what_to_show, rth)


def pack(symbol: str, pieces: Sequence[Interval], max_span: timedelta) -> list[Chunk]:
    """Group open-market pieces into requests of at most ``max_span``; a longer piece is split."""
    chunks: list[Chunk] = []
    current: list[Interval] = []
    for lo, hi in pieces:
        while lo < hi:
            if current and lo - current[0][0] < max_span:
                cut = min(hi, current[0][0] + max_span)
            else:
                if current:
                    chunks.append(Chunk(symbol, tuple(current)))
                current = []
                cut = min(hi, lo + max_span)
            current.append((lo, cut))
            lo = cut
    if current:
        chunks.append(Chunk(symbol, tuple(current)))
    return chunks


@dataclass
class SeriesPlan:
    """The requests for one instrument."""

    instrument: Instrument
    conid: int
    bar_size: BarSize
    what_to_show: str
    rth: bool
    range: Interval
    chunks: list[Chunk] = field(default_factory=list)

    def hist_request(self, chunk: Chunk) -> HistRequest:
        r = chunk.request(self.bar_size, self.what_to_show, self.rth)
        return HistRequest(str(self.conid), self.what_to_show, r.bar_size, r.end, r.duration,
                           paced=is_paced(self.bar_size))


def is_paced(bar_size: BarSize) -> bool:
    """IB's pacing rules bind bars of 30 s or less (facts §4); larger bars only avoid identical repeats."""
    return bar_size.is_intraday and bar_size.seconds <= SMALL_BAR_MAX_S


def plan_series(instrument: Instrument, conid: int, bar_size: BarSize, what_to_show: str, rth: bool,
                window: Interval, covered: Iterable[Interval]) -> SeriesPlan:
    """Plan one instrument's requests over ``window`` minus ``covered``. Pure."""
    open_parts = session_intervals(instrument, bar_size, window[0], window[1], rth)
    todo = subtract(open_parts, covered)
    chunks = pack(instrument.display, todo, timedelta(seconds=max_span_s(bar_size)))
    return SeriesPlan(instrument, conid, bar_size, what_to_show, rth, window, chunks)


def estimate_seconds(plans: Sequence[SeriesPlan], planner: PacingPlanner, now: float,
                     per_request_s: float = 0.0) -> float:
    """Seconds until the last request could go out under IB's pacing (plus ``per_request_s`` each).

    Works on a copy of the planner's history; the planner itself is unchanged.
    """
    trial = planner.copy()
    t = now
    for plan in plans:
        for chunk in plan.chunks:
            request = plan.hist_request(chunk)
            t = trial.earliest(request, t)
            trial.record(request, t)
            t += per_request_s
    return max(0.0, t - now)


def clip_to_pieces(bars: pd.DataFrame, pieces: Sequence[Interval]) -> pd.DataFrame:
    """Keep only bars starting inside one of ``pieces`` (IB may return a little more than asked)."""
    if bars.empty:
        return bars
    keep = pd.Series(False, index=bars.index)
    for lo, hi in pieces:
        keep |= (bars.index >= lo) & (bars.index < hi)
    return bars[keep.to_numpy()]


def requests_in(plans: Sequence[SeriesPlan]) -> int:
    return sum(len(p.chunks) for p in plans)
