"""Resample bars to a larger size, aligned the way IB aligns its own bars.

``resample_bars`` is pure numpy (bins from integer clock arithmetic and ``searchsorted`` over session bounds, values
from ``ufunc.reduceat``); ``resample_stored`` at the end is the I/O edge that reads a stored series in chunks.

Alignment rule (source: TWS API "Historical Bar Data" — bars are stamped with their start; IB's own RTH hourly bars
for US stocks come stamped 09:30, 10:00, 11:00 …, as ib_insync/ib_async users see; the sim, ``ibkrtool.sim.market``,
implements the same rule and the tests hold us to it):

* Intraday bins (seconds, minutes, hours) are aligned to the clock in the exchange time zone (New York for every
  instrument ibkrtool trades): a bar at local time ``t`` falls in the bin starting ``floor(t / L) * L`` (counted
  from the Unix epoch in local time, which for lengths dividing a day is "from local midnight").
  A bin cut by the session start is labelled with the session start (09:30, not 09:00). The local offset is the
  session's offset at its open (no session spans a DST change).
* Daily bins are one exchange session each (stocks 09:30–16:00, or 04:00–20:00 for all hours; forex 17:00→17:00
  New York, labelled by the closing date), stamped with the session's open instant in UTC — not the UTC day.
  Weekly bins group the sessions of one Monday–Friday week, stamped at the first session's open.
* Labels are bar STARTS in UTC. Source bars outside every given session are dropped.

Aggregation: open first, high max, low min, close last, volume sum, wap = volume-weighted mean of the source waps
(bars without volume or wap are left out; NaN if none has both), bar_count sum (NaN if all unknown). Empty bins
produce no bar. A bin is *partial* when its source bars cover less time than a full bin (the target length, or the
whole session for daily bins): the session-cut first/last bins, the first/last bins of the data, bins with a hole.
Note that seconds without trades have no TRADES bar, so thin markets make bins "partial" too.
The ``partial`` flag travels in CSV output only: the bars table has no such column, so stored bins are kept
either way (unless ``drop_partial``), like IB's own session-cut bars, and a later run over completed data replaces
them (the store's upsert is last-write-wins).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ibkrtool.errors import InputError
from ibkrtool.model import BAR_COLUMNS, BarSize, BarUnit

NEW_YORK = ZoneInfo("America/New_York")
_US = 1_000_000  # microseconds per second; times are handled as int64 epoch microseconds


class SessionLike(Protocol):
    """What the resampler needs of a session (``ibkrtool.calendars.Session`` fits): UTC open/close instants."""

    @property
    def open(self): ...

    @property
    def close(self): ...


def check_target(source: BarSize, target: BarSize) -> None:
    """Raise ``InputError`` unless ``target`` can be built from ``source`` bars (a whole multiple, not smaller)."""
    if target.unit is BarUnit.MONTH or source.unit is BarUnit.MONTH:
        raise InputError("monthly bars are not supported by resample; use 1d or 1w")
    if target.unit in (BarUnit.DAY, BarUnit.WEEK) and target.count != 1:
        raise InputError(f"target {target} is not supported; daily and weekly targets are 1d and 1w")
    if target.is_intraday and not source.is_intraday:
        raise InputError(f"cannot resample {source} bars to the smaller size {target}")
    if target.is_intraday and target.seconds % source.seconds != 0:
        raise InputError(f"target {target} is not a whole multiple of the source size {source}")
    if target.unit is BarUnit.DAY and source.unit is BarUnit.WEEK:
        raise InputError(f"cannot resample {source} bars to the smaller size {target}")


def resample_bars(
    bars: pd.DataFrame,
    source: BarSize,
    target: BarSize,
    sessions: Sequence[SessionLike] | None,
    drop_partial: bool = False,
    zone: tzinfo = NEW_YORK,
) -> pd.DataFrame:
    """Resample a bars frame (UTC ``ts`` index, sorted, unique) from ``source`` to ``target`` size.

    ``sessions``: the exchange sessions covering the bars (``ibkrtool.calendars.sessions``), sorted; required for
    daily and weekly targets; without them intraday bins are only clock-aligned in ``zone`` and never cut at a
    session start. Source bars are taken to sit on IB's grid of the source size (as IB and the store deliver them).
    Returns a bars frame of the house convention plus a boolean ``partial`` column (all False when
    ``drop_partial``, which removes partial bins). Raises ``InputError`` for a target that is not a whole multiple
    of the source, unsorted or duplicated timestamps, missing price columns, or a daily target without sessions.
    """
    check_target(source, target)
    t = _epoch_us(bars)
    values = {c: _column(bars, c) for c in BAR_COLUMNS}
    if sessions is None:
        if not target.is_intraday:
            raise InputError(f"{target} bins follow exchange sessions; name the instrument (--symbol) to know them")
        bins = _clock_bins(t, _offsets_us(bars.index, zone), source, target)
    else:
        bins = _session_bins(t, source, target, sessions, zone)
        if bins.keep is not None:
            values = {c: v[bins.keep] for c, v in values.items()}
    return _aggregate(values, bins, drop_partial)


@dataclass(frozen=True)
class _Bins:
    """Bins as runs of rows: ``first`` row of each bin, its UTC label, the time a full bin spans and the time its
    source bars cover (all µs); ``keep`` masks the rows inside the sessions (None = all rows)."""

    first: np.ndarray
    labels: np.ndarray
    expected: np.ndarray
    covered: np.ndarray
    keep: np.ndarray | None = None


_NO_BINS = np.empty(0, np.int64)


def _epoch_us(bars: pd.DataFrame) -> np.ndarray:
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise InputError("bars must be indexed by tz-aware UTC bar start timestamps (ts)")
    t = index.as_unit("us").asi8
    if t.size > 1 and not (t[1:] > t[:-1]).all():
        raise InputError("bar timestamps are unsorted or duplicated; sort and deduplicate them first")
    return t


def _column(bars: pd.DataFrame, name: str) -> np.ndarray:
    if name not in bars.columns:
        if name in ("open", "high", "low", "close"):
            raise InputError(f"bars lack the column {name}; resample needs open, high, low, close")
        return np.full(len(bars), np.nan)
    return bars[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _offsets_us(index: pd.DatetimeIndex, zone: tzinfo) -> np.ndarray | int:
    """UTC offset of the local clock in ``zone`` at each timestamp in µs (one int if it never changes).

    Offsets change only on whole UTC hours (every DST rule in use does), so they are computed once per distinct
    hour and spread back: a few thousand conversions instead of millions.
    """
    hours = index.as_unit("us").asi8 // (3600 * _US)
    if hours.size == 0:
        return 0
    first = _run_starts(hours)
    stamps = pd.DatetimeIndex((hours[first] * 3600 * _US).astype("datetime64[us]")).tz_localize("UTC")
    per_hour = stamps.tz_convert(zone).tz_localize(None).as_unit("us").asi8 - stamps.as_unit("us").asi8
    if (per_hour == per_hour[0]).all():
        return int(per_hour[0])
    return np.repeat(per_hour, np.diff(np.r_[first, hours.size]))


def _run_starts(key: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """Indices where ``key`` changes (plus index 0 and the ``extra`` indices): the first row of each run."""
    boundary = np.empty(key.size, dtype=bool)
    boundary[:1] = True
    np.not_equal(key[1:], key[:-1], out=boundary[1:])
    if extra is not None:
        boundary[extra] = True
    return np.flatnonzero(boundary)


def _at(values: np.ndarray | int, rows: np.ndarray) -> np.ndarray | int:
    return values if isinstance(values, int) else values[rows]


def _clock_bins(t: np.ndarray, offset: np.ndarray | int, source: BarSize, target: BarSize) -> _Bins:
    """Bins on the local clock only: label = ``floor((t + offset) / L) * L - offset``."""
    if t.size == 0:
        return _Bins(_NO_BINS, _NO_BINS, _NO_BINS, _NO_BINS)
    length = target.seconds * _US
    key = (t + offset) // length
    first = _run_starts(key)
    labels = key[first] * length - _at(offset, first)
    rows_per_bin = np.diff(np.r_[first, t.size])
    return _Bins(first, labels, np.full(first.size, length), rows_per_bin * (source.seconds * _US))


def _session_bins(t: np.ndarray, source: BarSize, target: BarSize, sessions: Sequence[SessionLike], zone: tzinfo
                  ) -> _Bins:
    """Bins within exchange sessions: rows are split per session (searchsorted over the session bounds), then
    clock bins cut at the session open, or one bin per session (day) or per week."""
    opens = np.array([_us(s.open) for s in sessions], dtype=np.int64)
    closes = np.array([_us(s.close) for s in sessions], dtype=np.int64)
    if opens.size > 1 and not (opens[1:] > opens[:-1]).all():
        raise InputError("sessions must be sorted by open time")
    lo = np.searchsorted(t, opens)
    seg = np.maximum(np.searchsorted(t, closes) - lo, 0)
    keep = None
    if seg.sum() != t.size:  # some rows lie outside every session: drop them
        keep = np.zeros(t.size, dtype=bool)
        for a, n in zip(lo[seg > 0].tolist(), seg[seg > 0].tolist(), strict=True):
            keep[a : a + n] = True
        t = t[keep]
    if t.size == 0:
        return _Bins(_NO_BINS, _NO_BINS, _NO_BINS, _NO_BINS, keep)
    held = np.flatnonzero(seg)  # sessions with rows, their row counts and first rows
    counts = seg[held]
    starts = np.cumsum(counts) - counts
    offs = np.array([_offset_us(sessions[i].open, zone) for i in held.tolist()], dtype=np.int64)
    if target.is_intraday:
        first, labels, expected = _intraday(t, target, starts, counts, offs, opens[held])
    else:
        first, labels, expected = _periods(target, starts, held, opens, closes, sessions)
    covered = _covered(t, source, first, starts, counts, offs, opens[held], closes[held])
    return _Bins(first, labels, expected, covered, keep)


def _intraday(t: np.ndarray, target: BarSize, starts: np.ndarray, counts: np.ndarray, offs: np.ndarray,
              opens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    length = target.seconds * _US
    off_row: np.ndarray | int = int(offs[0]) if (offs == offs[0]).all() else np.repeat(offs, counts)
    key = (t + off_row) // length
    first = _run_starts(key, starts)  # a session start always opens a bin
    session = np.searchsorted(starts, first, side="right") - 1
    labels = np.maximum(key[first] * length - _at(off_row, first), opens[session])  # cut by the open: at the open
    return first, labels, np.full(first.size, length)


def _periods(target: BarSize, starts: np.ndarray, held: np.ndarray, opens: np.ndarray, closes: np.ndarray,
             sessions: Sequence[SessionLike]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Daily: one bin per session, at its open. Weekly: the sessions of one Monday-Friday week, at the first open
    with data; a full week is every session of that week in ``sessions``."""
    if target.unit is BarUnit.DAY:
        return starts, opens[held], (closes - opens)[held]
    days = np.array([_label_day(s) for s in sessions], dtype=np.int64)
    week = (days + 3) // 7  # 1970-01-01 was a Thursday: (day + 3) // 7 steps on Mondays
    week_first = _run_starts(week)
    week_length = np.add.reduceat(closes - opens, week_first)
    group = _run_starts(week[held])
    expected = week_length[np.searchsorted(week[week_first], week[held][group])]
    return starts[group], opens[held][group], expected


def _covered(t: np.ndarray, source: BarSize, first: np.ndarray, starts: np.ndarray, counts: np.ndarray,
             offs: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """Time covered by each bin's source bars (µs): one source length per bar, less the parts of each session's
    first and last bars outside the session (an hourly bar stamped 09:30 covers 30 minutes)."""
    if not source.is_intraday:  # daily and weekly source bars cover their sessions
        return np.add.reduceat(np.repeat(closes - opens, counts), first)
    length = source.seconds * _US
    covered = np.diff(np.r_[first, t.size]) * length
    head, tail = starts, starts + counts - 1
    grid_start = (opens + offs) // length * length - offs
    head_cut = np.where(t[head] == opens, opens - grid_start, 0)
    tail_cut = np.maximum((t[tail] + offs) // length * length - offs + length - closes, 0)
    np.subtract.at(covered, np.searchsorted(first, head, side="right") - 1, head_cut)
    np.subtract.at(covered, np.searchsorted(first, tail, side="right") - 1, tail_cut)
    return covered


def _label_day(session: SessionLike) -> int:
    day = getattr(session, "date", None) or getattr(session, "label", None)
    if day is None:
        day = pd.Timestamp(session.close).tz_convert(NEW_YORK).date()
    return int((pd.Timestamp(day) - pd.Timestamp("1970-01-01")).days)


def _us(when: object) -> int:
    return int(pd.Timestamp(when).as_unit("us").asm8.astype(np.int64))


def _offset_us(when: object, zone: tzinfo) -> int:
    stamp = pd.Timestamp(when)
    return int(stamp.tz_convert(zone).utcoffset().total_seconds()) * _US


def _aggregate(values: dict[str, np.ndarray], bins: _Bins, drop_partial: bool) -> pd.DataFrame:
    first = bins.first
    if first.size == 0:
        return _frame(_NO_BINS, {c: np.empty(0) for c in BAR_COLUMNS}, np.empty(0, bool))
    last = np.r_[first[1:] - 1, values["close"].size - 1]
    out = {
        "open": values["open"][first],
        "high": np.maximum.reduceat(values["high"], first),
        "low": np.minimum.reduceat(values["low"], first),
        "close": values["close"][last],
        "volume": _nan_sum(values["volume"], first),
        "wap": _weighted(values["wap"], values["volume"], first),
        "bar_count": _nan_sum(values["bar_count"], first),
    }
    partial = bins.covered < bins.expected
    labels = bins.labels
    if drop_partial:
        out = {c: v[~partial] for c, v in out.items()}
        labels, partial = labels[~partial], partial[~partial]
    return _frame(labels, out, partial)


def _nan_sum(x: np.ndarray, first: np.ndarray) -> np.ndarray:
    known = ~np.isnan(x)
    if known.all():
        return np.add.reduceat(x, first)
    total = np.add.reduceat(np.where(known, x, 0.0), first)
    return np.where(np.add.reduceat(known, first) > 0, total, np.nan)


def _weighted(wap: np.ndarray, volume: np.ndarray, first: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(wap) & ~np.isnan(volume)
    if valid.all():
        num, den = np.add.reduceat(wap * volume, first), np.add.reduceat(volume, first)
    else:
        num = np.add.reduceat(np.where(valid, wap * volume, 0.0), first)
        den = np.add.reduceat(np.where(valid, volume, 0.0), first)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _frame(ts_us: np.ndarray, columns: dict[str, np.ndarray], partial: np.ndarray) -> pd.DataFrame:
    index = pd.DatetimeIndex(ts_us.astype("datetime64[us]"), name="ts").tz_localize("UTC")
    frame = pd.DataFrame({c: columns[c] for c in BAR_COLUMNS}, index=index)
    frame["partial"] = partial
    return frame


def sessions_for(instrument: object, bars: pd.DataFrame, rth: bool) -> list:
    """The exchange sessions (``ibkrtool.calendars``) around the bars' time range, for ``resample_bars``.
    Raises ``InputError`` for dates outside the exchange calendar's coverage."""
    from ibkrtool import calendars

    if len(bars) == 0:
        return []
    local = bars.index[[0, -1]].tz_convert(NEW_YORK)
    first, last = local[0].date(), local[1].date()
    return calendars.sessions(instrument, first - pd.Timedelta(days=7), last + pd.Timedelta(days=7), rth)


def infer_bar_size(bars: pd.DataFrame) -> BarSize:
    """The source bar size of bars without a label: the smallest step between consecutive bar starts
    (``1s``, ``5m``, ``1h``; a step of a day or more reads as ``1d``). Raises ``InputError`` with fewer than two bars
    or an irregular step (not whole seconds)."""
    if len(bars) < 2:
        raise InputError("cannot tell the bar size of fewer than two bars; give --bar-size")
    step_us = int(np.diff(bars.index.as_unit("us").asi8).min())
    if step_us % _US:
        raise InputError("bar starts are not on whole seconds; give --bar-size")
    seconds = step_us // _US
    if seconds >= 86_400 - 3600 * 6:  # sessions shorter than a day still step a day or more
        return BarSize.parse("1d")
    for unit, length in (("h", 3600), ("m", 60)):
        if seconds % length == 0:
            return BarSize.parse(f"{seconds // length}{unit}")
    return BarSize.parse(f"{seconds}s")


# ---------------------------------------------------------------------------------------------------------------------
# The I/O edge: stored series -> resampled series, read in month-sized chunks on parallel connections.

DAYS_PER_CHUNK = 31  # about a month: roughly one PostgreSQL partition per read


def resample_stored(engine: object, conid: int, instrument: object, source: BarSize, target: BarSize, what: str,
                    rth: bool = True, start: object = None, end: object = None, drop_partial: bool = False,
                    workers: int = 2) -> tuple[pd.DataFrame, int]:
    """Resample a stored series (``start <= ts < end``, tz-aware UTC, either optional) and return the new bars and
    the number of source bars read; the caller writes them (``store.bars.write_bars``) in its own transaction.

    The series is read in chunks of about ``DAYS_PER_CHUNK`` days, as many per worker, cut at instants no session
    contains (week-ends for weekly targets) so no bin is cut in two, on up to ``workers`` connections at once
    (PostgreSQL; SQLite reads on one). The exchange calendar is built meanwhile: it costs a quarter of a second,
    and the cuts do not need it. Raises ``InputError`` when nothing is stored in the range, ``StoreError`` when
    the database fails.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ibkrtool import calendars
    from ibkrtool.store.bars import read_bars
    from ibkrtool.store.engine import is_postgres

    check_target(source, target)
    lo, hi = _stored_span(engine, conid, str(source), what, start, end)
    pool = max(1, workers if is_postgres(engine) else 1)
    bounds = _chunk_bounds(instrument.is_forex, target, lo, hi, pool)  # type: ignore[attr-defined]
    zone_dates = pd.DatetimeIndex([lo, hi]).tz_convert(NEW_YORK)
    days = (zone_dates[0].date() - pd.Timedelta(days=7), zone_dates[1].date() + pd.Timedelta(days=7))

    with ThreadPoolExecutor(pool + 1) as executor:
        sessions = executor.submit(calendars.sessions, instrument, days[0], days[1], rth)

        def one(chunk: tuple[object, object]) -> tuple[pd.DataFrame, int]:
            bars = read_bars(engine, conid, str(source), what, chunk[0], chunk[1], whole=True)  # a month at most
            return resample_bars(bars, source, target, sessions.result(), drop_partial), len(bars)

        parts = list(executor.map(one, bounds))
    return pd.concat([p[0] for p in parts]), sum(p[1] for p in parts)


def _stored_span(engine: object, conid: int, size: str, what: str, start: object, end: object) -> tuple:
    """First and last stored bar start of the series within ``[start, end)`` (an index-only probe)."""
    from sqlalchemy import func, select

    from ibkrtool.store.tables import bars as table

    query = select(func.min(table.c.ts), func.max(table.c.ts)).where(
        table.c.conid == conid, table.c.bar_size == size, table.c.what_to_show == what)
    if start is not None:
        query = query.where(table.c.ts >= start)
    if end is not None:
        query = query.where(table.c.ts < end)
    with engine.connect() as conn:
        first, last = conn.execute(query).one()
    if first is None:
        raise InputError(f"no {size} {what} bars of conid {conid} are stored in that range")
    return pd.Timestamp(first).tz_convert("UTC"), pd.Timestamp(last).tz_convert("UTC")


def _chunk_bounds(is_forex: bool, target: BarSize, lo: pd.Timestamp, hi: pd.Timestamp, workers: int) -> list:
    """``[start, end)`` read ranges covering ``[lo, hi]``: about ``DAYS_PER_CHUNK`` days each, as many per worker,
    cut where no session runs, so no bin is cut in two.

    Cuts: 06:00 UTC for stocks (01:00-02:00 New York: no NYSE session, regular or extended 04:00-20:00, spans it);
    17:00 New York for forex (IDEALPRO's daily roll, where one session ends and the next begins); Saturday 06:00
    UTC for weekly targets (both markets are shut from Friday evening to Sunday evening New York).
    """
    span = hi - lo
    parts = max(1, round(span / pd.Timedelta(days=DAYS_PER_CHUNK)))
    parts = -(-parts // workers) * workers
    cuts: list = []
    for i in range(1, parts):
        cut = _quiet_instant(lo + span * i / parts, is_forex, target.unit is BarUnit.WEEK)
        if lo < cut <= hi and (not cuts or cut > cuts[-1]):
            cuts.append(cut)
    edges = [lo, *cuts, hi + pd.Timedelta(microseconds=1)]
    return [(a.to_pydatetime(), b.to_pydatetime()) for a, b in itertools.pairwise(edges)]


def _quiet_instant(near: pd.Timestamp, is_forex: bool, weekly: bool) -> pd.Timestamp:
    """The last instant at or before ``near`` that no session (no week, if ``weekly``) contains."""
    if weekly:
        day = near.tz_convert("UTC").normalize()
        cut = day - pd.Timedelta(days=(day.day_of_week - 5) % 7) + pd.Timedelta(hours=6)
        return cut if cut <= near else cut - pd.Timedelta(days=7)
    if is_forex:
        day = near.tz_convert(NEW_YORK).date()
        roll = pd.Timestamp(datetime.combine(day, time(17), NEW_YORK))
        if roll > near:
            roll = pd.Timestamp(datetime.combine(day - timedelta(days=1), time(17), NEW_YORK))
        return roll.tz_convert("UTC")
    cut = near.tz_convert("UTC").normalize() + pd.Timedelta(hours=6)
    return cut if cut <= near else cut - pd.Timedelta(days=1)


