"""Bars CSV in and out.

In: a time column (``ts``, ``timestamp``, ``datetime``, ``date`` or ``time``; any case) holding ISO 8601 stamps
(with an offset, or naive), epoch seconds (UTC), IB's ``yyyymmdd hh:mm:ss [zone]`` or ``yyyymmdd``; columns
``open, high, low, close`` (required), ``volume`` (optional: forex MIDPOINT bars have none), ``wap``/``average``/
``vwap`` and ``count``/``barCount``/``bar_count`` (optional). Naive stamps need ``tz`` (the zone they were written
in). IB's -1 "unknown" in volume/wap/count becomes NaN. A malformed file is refused whole with one line naming the
line number and column: ``bars.csv:1234: 'high' is not a number ('1.2.3')``.
Out: ``ts`` first, ISO 8601 UTC (``2024-01-02T14:30:00Z``), then the bar columns; floats round-trip exactly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from ibkrtool.errors import InputError
from ibkrtool.model import BAR_COLUMNS
from ibkrtool.store.frames import bars_frame

TIME_COLUMNS = ("ts", "timestamp", "datetime", "date", "time")
_ALIASES = {"wap": ("wap", "average", "vwap"), "bar_count": ("bar_count", "barcount", "count")}
_EPOCH = re.compile(r"^\d{9,10}(\.\d+)?$")
_IB_DATE = re.compile(r"^\d{8}$")
_IB_STAMP = re.compile(r"^(\d{8})[ T-]+(\d{2}:\d{2}:\d{2})(?:\s+(\S+))?$")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)


class _Bad(Exception):
    """A malformed cell: row position (0-based, data rows) and message."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row


def read_bars_csv(source: str | Path | IO[str], tz: str | None = None, name: str | None = None) -> pd.DataFrame:
    """Read a bars CSV into a bars frame (UTC ``ts`` index). ``tz`` is the IANA zone of naive stamps.

    Raises ``InputError`` (one line, ``name:line:`` first) for the first problem found; nothing is returned then.
    """
    name = name or (Path(source).name if isinstance(source, (str, Path)) else "<stdin>")
    zone = _zone(tz)
    raw = _read_text_table(source, name)
    try:
        return _parse(raw, zone, name)
    except _Bad as bad:
        raise InputError(f"{name}:{raw.index[bad.row] + 1}: {bad}") from None  # index 0 is the header


def _zone(tz: str | None) -> ZoneInfo | None:
    if tz is None:
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"unknown time zone {tz!r}; use an IANA name such as America/New_York or UTC") from None


def _read_text_table(source: str | Path | IO[str], name: str) -> pd.DataFrame:
    try:
        # header=None: the header line fixes the field count, so a longer row is an error, not a silent index.
        raw = pd.read_csv(source, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False,
                          skipinitialspace=True, index_col=False)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{name}: the file is empty") from None
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            raise InputError(f"{name}:{match[2]}: expected {match[1]} fields, saw {match[3]}") from None
        raise InputError(f"{name}: not a CSV file ({str(exc).strip().splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise InputError(f"{name}: not a text (UTF-8) CSV file") from None
    raw = raw.fillna("")
    raw.columns = [str(c).strip() for c in raw.iloc[0]]
    raw = raw.iloc[1:]
    return raw[~(raw == "").all(axis=1)]


def _parse(raw: pd.DataFrame, zone: ZoneInfo | None, name: str) -> pd.DataFrame:
    lower = {c.lower(): c for c in raw.columns}
    time_col = _time_column(raw, lower, name)
    ts_us = _stamps(raw[time_col].to_numpy(dtype=object), zone, time_col)
    block = np.full((len(BAR_COLUMNS), len(raw)), np.nan)
    for i, col in enumerate(BAR_COLUMNS):
        found = next((lower[a] for a in _ALIASES.get(col, (col,)) if a in lower), None)
        if found is None and col in ("open", "high", "low", "close"):
            raise InputError(f"{name}:1: missing column '{col}' (found: {', '.join(raw.columns)})")
        if found is not None:
            block[i] = _numbers(raw[found].to_numpy(dtype=object), found, required=i < 4)
    _check_order(ts_us, raw[time_col].to_numpy(dtype=object))
    low_high = np.flatnonzero(block[1] < block[2])
    if len(low_high):
        r = low_high[0]
        raise _Bad(r, f"'high' {float(block[1, r])!r} is below 'low' {float(block[2, r])!r}")
    return bars_frame(ts_us, block)


def _time_column(raw: pd.DataFrame, lower: dict[str, str], name: str) -> str:
    if {"date", "time"} <= lower.keys() and not {"ts", "timestamp", "datetime"} & lower.keys():
        raw["__date_time"] = raw[lower["date"]] + " " + raw[lower["time"]]
        return "__date_time"
    found = next((lower[c] for c in TIME_COLUMNS if c in lower), None)
    if found is None:
        raise InputError(f"{name}:1: no time column; name one of {', '.join(TIME_COLUMNS)} (found: "
                         f"{', '.join(raw.columns)})")
    return found


def _numbers(cells: np.ndarray, col: str, required: bool) -> np.ndarray:
    values = pd.to_numeric(pd.Series(cells), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    empty = np.array([c.strip() == "" for c in cells], dtype=bool)
    bad = np.isnan(values)
    if not required:  # optional columns may be empty or say NaN
        bad &= np.array([c.strip().lower() not in ("", "nan") for c in cells], dtype=bool)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise _Bad(r, f"'{col}' is empty" if empty[r] else f"'{col}' is not a number ({cells[r]!r})")
    if not required:
        values[values == -1] = np.nan  # IB's "unknown" on non-TRADES bars
    return values


def _stamps(cells: np.ndarray, zone: ZoneInfo | None, col: str) -> np.ndarray:
    """Unix epoch microseconds of every cell; ``_Bad`` for the first unparsable, empty or naive-without-tz one."""
    text = pd.Series([c.strip() for c in cells], dtype=object)
    out = np.zeros(len(text), dtype=np.int64)
    kinds = np.select([text.str.match(_EPOCH), text.str.match(_IB_DATE), text.str.match(_IB_STAMP),
                       text.str.contains(_OFFSET)], ["epoch", "ib_date", "ib_stamp", "iso_aware"], "iso_naive")
    for kind in ("epoch", "ib_date", "ib_stamp", "iso_aware", "iso_naive"):
        rows = np.flatnonzero(kinds == kind)
        if len(rows):
            out[rows] = _parse_kind(kind, text.iloc[rows], rows, zone, col)
    return out


def _parse_kind(kind: str, text: pd.Series, rows: np.ndarray, zone: ZoneInfo | None, col: str) -> np.ndarray:
    if kind == "epoch":
        return np.round(text.astype(float).to_numpy() * 1e6).astype(np.int64)
    if kind == "iso_aware":
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        return _micros(parsed, text, rows, col)
    if kind == "ib_stamp":
        parts = text.str.extract(_IB_STAMP)
        naive = pd.to_datetime(parts[0] + " " + parts[1], format="%Y%m%d %H:%M:%S", errors="coerce")
        out = np.zeros(len(text), dtype=np.int64)
        for named, idx in parts.groupby(parts[2].fillna(""), sort=False).groups.items():
            pos = text.index.get_indexer(idx)
            out[pos] = _localised(naive.iloc[pos], text.iloc[pos], rows[pos], _ib_zone(named, rows[pos[0]]) or zone,
                                  col)
        return out
    fmt = "%Y%m%d" if kind == "ib_date" else "ISO8601"
    return _localised(pd.to_datetime(text, format=fmt, errors="coerce"), text, rows, zone, col)


def _ib_zone(named: str, row: int) -> ZoneInfo | None:
    if not named:
        return None
    try:
        return ZoneInfo(named)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Bad(row, f"unknown time zone {named!r} in the timestamp") from None


def _localised(naive: pd.Series, text: pd.Series, rows: np.ndarray, zone: ZoneInfo | None, col: str) -> np.ndarray:
    _fail_unparsed(naive, text, rows, col)
    if zone is None:
        raise _Bad(int(rows[0]), f"'{col}' has no time zone ({text.iloc[0]!r}); pass --tz ZONE (the zone the "
                                 "file was written in, e.g. America/New_York) or write stamps with an offset")
    aware = naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    bad = np.flatnonzero(aware.isna().to_numpy())
    if len(bad):
        raise _Bad(int(rows[bad[0]]), f"'{col}' {text.iloc[bad[0]]!r} does not exist or is ambiguous in {zone.key} "
                                      "(daylight-saving change); write it with an offset")
    return _micros(aware.dt.tz_convert("UTC"), text, rows, col)


def _micros(parsed: pd.Series, text: pd.Series, rows: np.ndarray, col: str) -> np.ndarray:
    _fail_unparsed(parsed, text, rows, col)
    return pd.DatetimeIndex(parsed).as_unit("us").asi8.copy()


def _fail_unparsed(parsed: pd.Series, text: pd.Series, rows: np.ndarray, col: str) -> None:
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        value = text.iloc[bad[0]]
        message = f"'{col}' is empty" if not value else f"'{col}' is not a timestamp ({value!r})"
        raise _Bad(int(rows[bad[0]]), message)


def _check_order(ts_us: np.ndarray, cells: np.ndarray) -> None:
    steps = np.diff(ts_us)
    wrong = np.flatnonzero(steps <= 0)
    if len(wrong):
        r = int(wrong[0]) + 1
        what = "duplicate timestamp" if steps[r - 1] == 0 else "timestamps out of order:"
        raise _Bad(r, f"{what} {cells[r].strip()!r} (after {cells[r - 1].strip()!r} on the line before)")


def write_bars_csv(bars: pd.DataFrame, target: str | Path | IO[str]) -> int:
    """Write a bars frame as CSV: ``ts`` (ISO 8601 UTC, ``Z``) first, then the bar columns. Returns rows written."""
    index = bars.index.tz_convert("UTC") if bars.index.tz is not None else bars.index.tz_localize("UTC")
    stamps = index.as_unit("us").tz_localize(None).to_numpy()
    whole = len(stamps) == 0 or not (stamps.astype(np.int64) % 1_000_000).any()
    out = pd.DataFrame({"ts": np.char.add(np.datetime_as_string(stamps, unit="s" if whole else "us"), "Z")})
    for col in BAR_COLUMNS:
        values = bars[col].to_numpy(dtype=np.float64) if col in bars.columns else np.full(len(bars), np.nan)
        out[col] = pd.array(values, dtype="Int64") if col == "bar_count" else values
    out.to_csv(target, index=False, lineterminator="\n")
    return len(out)
