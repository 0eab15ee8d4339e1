"""Target positions to execute, from a stored strategy run or a positions CSV, as one ``Targets`` value.

Two CSV formats are read (the header tells which; column names are case-insensitive):

* per-bar positions, as ``ibkrtool strategy -o`` writes (``ts,position[,signal][,close,...]``) and other tools
  write: one row per bar, the target decided at that bar's close. The bar's time is the first of the columns
  ``ts``, ``timestamp``, ``datetime``, a ``date`` + ``time`` pair (combined), ``time`` or ``date`` alone. The target
  is ``position``; without one, a numeric ``signal`` column is the target (with one, ``signal`` is the reason text);
* round trips, as ``ibkrtool strategy --trades`` writes (the seed's ``dt_positions.csv``):
  ``side,entry_time,entry_price,exit_time,exit_price,bars_held,reason`` — each row becomes a target of +1/-1 at
  its entry bar and 0 at its exit bar (a reversal, exit time == next entry time, goes straight to the new side).

Either format may carry a ``symbol`` column: its rows are then read as one series per instrument
(``read_positions_file``), each sorted and unique in time on its own.

Times: ISO 8601 with a zone (``…Z``, ``…-05:00``); times written without one need ``tz`` (``--tz``, the zone
the file was written in) and are refused without it, as every file the tool reads (``model.when``). A ``date``
column alone with bare dates (``2024-03-04``) names daily bars, labelled 00:00 UTC of that date as stored daily bars
are (``ib.history``).
"""

from __future__ import annotations

import hashlib
import io
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import IO
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ibkrtool.errors import InputError
from ibkrtool.model import Instrument

ROUND_TRIP_COLUMNS = {"side", "entry_time", "exit_time"}
TIME_COLUMNS = ("ts", "timestamp", "datetime")  # then date + time, time, date
_BARE_DATE = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")
# A time of day followed by a zone: Z, +01, -05:00, +0530 (a bare date's "-04" is no zone).
_DATE_FIRST = re.compile(r"\d{4}-?\d{2}-?\d{2}")
_ZONED = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d*)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)


@dataclass(frozen=True)
class Targets:
    """Per-signal-bar targets: ``ts`` UTC bar starts (sorted, unique), ``position`` direction/units, ``reason``
    (signal text or None) and ``close`` (the decision bar's close when the source carries it, else NaN)."""

    ts: list[datetime]
    position: np.ndarray
    reason: list[str | None]
    close: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)


def _utc_times(values: pd.Series, column: str, tz: ZoneInfo | None = None) -> pd.DatetimeIndex:
    """UTC instants of ``values`` (empty cells: NaT); zone-less ones are read in ``tz``, refused without it."""
    text = values.fillna("").astype(str).str.strip()
    naive = text.str.match(_DATE_FIRST) & ~text.str.contains(_ZONED)
    if naive.any() and tz is None:
        raise InputError(f"positions CSV: column {column!r} has no time zone ({text[naive].iloc[0]!r}); pass --tz "
                         "ZONE (the zone the file was written in, e.g. America/New_York) or write times with an "
                         "offset (2024-03-04T14:30:00Z)")
    try:
        stamps = pd.Series(pd.to_datetime(text.where(~naive & (text != "")), utc=True, format="ISO8601"),
                           index=text.index)
        local = pd.to_datetime(text[naive], format="ISO8601")
    except (ValueError, TypeError):
        raise InputError(f"positions CSV: column {column!r} holds values that are not ISO 8601 times") from None
    if tz is not None and naive.any():
        local = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        if local.isna().any():
            raise InputError(f"positions CSV: column {column!r} {text[naive][local.isna()].iloc[0]!r} does not "
                             f"exist or is ambiguous in {tz.key} (daylight-saving change); write it with an offset")
        stamps[naive] = local.dt.tz_convert("UTC")
    return pd.DatetimeIndex(stamps)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def from_frame(frame: pd.DataFrame) -> Targets:
    """A positions frame (UTC ``ts`` index, ``position`` and optionally ``signal``/``close``) → ``Targets``."""
    if "position" not in frame.columns:
        raise InputError("positions need a 'position' column")
    close = frame["close"].to_numpy(np.float64) if "close" in frame.columns else np.full(len(frame), np.nan)
    reasons = [_text(s) for s in frame["signal"]] if "signal" in frame.columns else [None] * len(frame)
    return Targets([t.to_pydatetime() for t in frame.index], frame["position"].to_numpy(np.float64), reasons, close)


@dataclass(frozen=True)
class PositionsFile:
    """A positions CSV read whole: ``digest`` (SHA-256 hex of its content, independent of the file's name, line
    endings and spaces around cells) and its targets by instrument — the ``symbol`` column's instruments by their
    display name (``SPY``, ``EUR.USD``; ``eurusd`` is the same), or the single key None for a file without that
    column."""

    digest: str
    by_symbol: dict[str | None, Targets]


def read_positions_file(source: str | IO[str], tz: ZoneInfo | None = None) -> PositionsFile:
    """Read either positions CSV format (see module doc), one series per ``symbol`` when the file has that column;
    ``-`` is stdin; ``tz`` is the zone of times written without one. Raises ``InputError`` on a bad file, an empty
    symbol cell, or zone-less times without ``tz``."""
    raw = _read_raw(source)
    digest = hashlib.sha256(raw.to_csv(index=False, lineterminator="\n").encode()).hexdigest()
    if "symbol" not in raw.columns:
        return PositionsFile(digest, {None: _targets_of(raw, tz)})
    if (raw["symbol"] == "").any():
        raise InputError(f"positions CSV row {int(np.flatnonzero(raw['symbol'] == '')[0]) + 2}: empty symbol")
    names = {text: Instrument.parse(text).display for text in raw["symbol"].unique()}
    symbols = raw["symbol"].map(names)
    by_symbol: dict[str | None, Targets] = {}
    for symbol in dict.fromkeys(symbols):
        by_symbol[symbol] = _targets_of(raw[symbols == symbol].reset_index(drop=True), tz)
    return PositionsFile(digest, by_symbol)


def read_positions_csv(source: str | IO[str], tz: ZoneInfo | None = None) -> Targets:
    """The targets of a positions CSV of one instrument (see ``read_positions_file``); raises ``InputError`` for a
    file with several symbols, a bad file, or zone-less times without ``tz``."""
    found = read_positions_file(source, tz).by_symbol
    if len(found) > 1:
        raise InputError(f"positions CSV holds {len(found)} symbols ({', '.join(map(str, found))}); read it with "
                         "read_positions_file")
    return next(iter(found.values()))


def _read_raw(source: str | IO[str]) -> pd.DataFrame:
    """The file as text cells, names lower-case and cells stripped."""
    try:
        if isinstance(source, str):
            text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8-sig").read()  # noqa: SIM115
        else:
            text = source.read()
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot read positions CSV {source}: {exc}") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    return raw.apply(lambda column: column.str.strip())


def _targets_of(raw: pd.DataFrame, tz: ZoneInfo | None) -> Targets:
    columns = set(raw.columns)
    if columns >= ROUND_TRIP_COLUMNS:
        return _from_round_trips(raw, tz)
    stamps = _time_text(raw)
    if stamps is not None and ("position" in columns or "signal" in columns):
        return _from_per_bar(raw, stamps, tz)
    raise InputError("positions CSV needs columns ts (or timestamp, datetime, date + time) and position (or a "
                     "numeric signal), as strategy -o writes, or side,entry_time,entry_price,exit_time,exit_price,"
                     "bars_held,reason (strategy --trades); a symbol column is optional")


def _time_text(raw: pd.DataFrame) -> tuple[pd.Series, str] | None:
    """The bar times as text and the name of their column(s); a bare date alone → 00:00 UTC of that date."""
    for name in TIME_COLUMNS:
        if name in raw.columns:
            return raw[name], name
    if {"date", "time"} <= set(raw.columns):
        return raw["date"] + "T" + raw["time"], "date + time"
    if "time" in raw.columns:
        return raw["time"], "time"
    if "date" in raw.columns:
        dates = raw["date"]
        return dates.where(~dates.str.match(_BARE_DATE), dates + "T00:00:00Z"), "date"
    return None


def _numbers(values: pd.Series, column: str) -> np.ndarray:
    out = pd.to_numeric(values.replace("", np.nan), errors="coerce").to_numpy(np.float64)
    if column in ("position", "signal") and not np.all(np.isfinite(out)):
        raise InputError(f"positions CSV: column {column!r} must hold a number on every row")
    return out


def _from_per_bar(raw: pd.DataFrame, stamps: tuple[pd.Series, str], tz: ZoneInfo | None) -> Targets:
    index = _utc_times(stamps[0], stamps[1], tz)
    target = "position" if "position" in raw.columns else "signal"
    frame = pd.DataFrame({"position": _numbers(raw[target], target)}, index=index)
    if target == "position" and "signal" in raw.columns:
        frame["signal"] = raw["signal"].to_numpy()
    if "close" in raw.columns:
        frame["close"] = _numbers(raw["close"], "close")
    if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
        raise InputError(f"positions CSV: {stamps[1]} must be sorted and unique" +
                         (" for each symbol" if "symbol" in raw.columns else ""))
    return from_frame(frame)


def _from_round_trips(raw: pd.DataFrame, tz: ZoneInfo | None) -> Targets:
    events: dict[pd.Timestamp, tuple[float, str | None, float]] = {}
    entries, exits = _utc_times(raw["entry_time"], "entry_time", tz), _utc_times(raw["exit_time"], "exit_time", tz)
    entry_px = _numbers(raw.get("entry_price", pd.Series([""] * len(raw))), "entry_price")
    exit_px = _numbers(raw.get("exit_price", pd.Series([""] * len(raw))), "exit_price")
    for k, side in enumerate(raw["side"].str.strip().str.lower()):
        if side not in ("long", "short"):
            raise InputError(f"positions CSV row {k + 2}: side must be long or short, got {side!r}")
        if not pd.isna(exits[k]):  # an exit first, so that a reversal's entry at the same bar overrides it
            events.setdefault(exits[k], (0.0, _text(raw["reason"][k]) if "reason" in raw else None, exit_px[k]))
        events[entries[k]] = (1.0 if side == "long" else -1.0, f"entry:{side}", entry_px[k])
    stamps = sorted(events)
    return Targets([t.to_pydatetime() for t in stamps], np.array([events[t][0] for t in stamps], dtype=np.float64),
                   [events[t][1] for t in stamps], np.array([events[t][2] for t in stamps], dtype=np.float64))
