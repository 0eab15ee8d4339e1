"""``ibkrtool resample``: bars of a larger size from stored or CSV bars, aligned like IB's own bars."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd
import typer

from ibkrtool.cli.options import settings
from ibkrtool.cli.render import stderr
from ibkrtool.errors import InputError
from ibkrtool.model import BAR_COLUMNS, BarSize, Instrument, WhatToShow

ORDER = 40

HELP = """Resample bars to a larger size (--to 5s, 1m, 5m, 15m, 1h, 1d, 1w: a whole multiple of the source size).

Bars come from the database (--symbol, --bar-size, --start/--end) or a bars CSV (--input FILE, '-' = stdin; the
source size is read off the data unless --bar-size is given). Bins are aligned the way IB aligns its own bars:
intraday bins on the New York clock, a bin cut by the session open labelled at the open (RTH hourly bars start
09:30, 10:00, 11:00 ...); daily bins are exchange sessions (forex 17:00-17:00 New York), not UTC days. Sessions
come from --symbol (--rth: regular hours, the default, bars outside them are dropped; --all-hours: extended);
CSV input without --symbol is aligned on the clock only and cannot go to 1d.

Bins not fully covered (session-cut first/last bins, bins with a hole) are kept and marked in a 'partial' column
of the CSV output; --drop-partial leaves them out. The database has no such column: bins are stored either way
(like IB's own session-cut bars) and a later resample over completed data replaces them.

Output: --output FILE or '-' (CSV on stdout); without --output, bars go to the database beside the backfilled
series of the new size (needs --symbol).

Examples:
  ibkrtool resample --symbol SPY --bar-size 1m --to 1h --start 2026-01-01
  ibkrtool db export bars --symbol SPY --bar-size 1s -o - | ibkrtool resample --input - --symbol SPY --to 5m -o -
"""


def register(app: typer.Typer) -> None:
    app.command("resample", help=HELP, no_args_is_help=True)(resample)


def resample(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="Target bar size: 5s, 1m, 5m, 15m, 1h, 1d, 1w (IB spellings too)."),
    symbol: str = typer.Option(None, "--symbol", "-s", help="Instrument: SPY, EUR.USD (gives sessions; store key)."),
    bar_size: str = typer.Option(None, "--bar-size", "-b", help="Source bar size (required with the database)."),
    what_to_show: str = typer.Option(None, "--what-to-show", help="TRADES (stocks) / MIDPOINT (forex) by default."),
    start: str = typer.Option(None, "--start", help="First day/instant (exchange time zone unless it has one)."),
    end: str = typer.Option(None, "--end", help="Last day (inclusive) or instant (exclusive)."),
    input_file: str = typer.Option(None, "--input", "-i", help="Bars CSV instead of the database; '-' = stdin."),
    output: str = typer.Option(None, "--output", "-o", help="Write CSV to FILE or '-' (stdout) instead of the DB."),
    drop_partial: bool = typer.Option(False, "--drop-partial", help="Leave out bins not fully covered."),
    rth: bool = typer.Option(True, "--rth/--all-hours", help="Sessions: regular trading hours, or all hours."),
) -> None:
    from ibkrtool.data.resample import check_target, infer_bar_size, resample_bars, resample_stored, sessions_for
    from ibkrtool.data.sources import parse_bound

    target = BarSize.parse(to)
    instrument = Instrument.parse(symbol) if symbol else None
    if input_file is None and instrument is None:
        raise InputError("give --symbol SYMBOL (bars from the database) or --input FILE")
    if output is None and instrument is None:
        raise InputError("storing resampled bars needs --symbol; or give --output FILE|-")
    what = _what(instrument, what_to_show)
    bound_of = instrument or Instrument.parse("SPY")  # any US instrument: dates are read on the New York clock
    lo, hi = parse_bound(start, bound_of, False), parse_bound(end, bound_of, True)
    if input_file is None and bar_size is None:
        raise InputError("give --bar-size: the size of the stored bars to resample")
    engine = None if (input_file is not None and output is not None) else _engine(ctx)
    if input_file is None:
        source = BarSize.parse(bar_size)
        conid = _stored_conid(engine, instrument)
        out, rows_in = resample_stored(engine, conid, instrument, source, target, what, rth, lo, hi, drop_partial)
    else:
        bars, conid = _read_csv(input_file, lo, hi), None
        source = BarSize.parse(bar_size) if bar_size else infer_bar_size(bars)
        check_target(source, target)
        sessions = sessions_for(instrument, bars, rth) if instrument is not None else None
        out, rows_in = resample_bars(bars, source, target, sessions, drop_partial), len(bars)
    partial = int(out["partial"].sum())
    if output is not None:
        _write_csv(out, output)
        where = "stdout" if output == "-" else output
    else:
        where = _store(engine, conid, instrument, target, what, out, ctx)
    stderr.print(f"resampled {rows_in:,} {source} bars → {len(out):,} {target} bars ({partial:,} partial) → {where}",
                 highlight=False)


def _what(instrument: Instrument | None, what_to_show: str | None) -> str:
    if what_to_show:
        return WhatToShow.parse(what_to_show).value
    return instrument.default_what_to_show if instrument else "TRADES"


def _engine(ctx: typer.Context) -> Any:
    from ibkrtool.store.engine import open_engine

    return open_engine(settings(ctx).db_url)


def _read_csv(input_file: str, lo: Any, hi: Any) -> pd.DataFrame:
    from ibkrtool.data.sources import load_from_csv

    return load_from_csv(input_file, Instrument.parse("SPY"), lo, hi).bars  # naive stamps: New York clock


def _stored_conid(engine: Any, instrument: Instrument) -> int:
    from ibkrtool.store.contracts import find_contract

    contract = find_contract(engine, instrument.display)
    if contract is None:
        raise InputError(f"no contract {instrument.display} in the database; backfill it first or use --input FILE")
    return int(contract.conid)


def _store(engine: Any, conid: int | None, instrument: Instrument, target: BarSize, what: str, out: pd.DataFrame,
           ctx: typer.Context) -> str:
    from ibkrtool.store.bars import write_bars
    from ibkrtool.store.contracts import find_contract, placeholder_contract, upsert_contract
    from ibkrtool.store.runs import track_run

    args = {"symbol": instrument.display, "to": str(target), "what_to_show": what, "rows": len(out)}
    with track_run(engine, "resample", args) as record:
        if conid is None:  # CSV in, database out: file the bars under the stored contract, or a placeholder
            contract = find_contract(engine, instrument.display) or placeholder_contract(instrument.display)
            upsert_contract(engine, contract)
            conid = contract.conid
        result = write_bars(engine, conid, target, what, out[list(BAR_COLUMNS)])
        record.rows_written = result.written
    return f"database ({result.inserted:,} new, {result.updated:,} updated)"


def _write_csv(out: pd.DataFrame, target: str) -> None:
    stamps = out.index.as_unit("us").tz_localize(None).to_numpy()
    whole = len(stamps) == 0 or not (stamps.astype(np.int64) % 1_000_000).any()
    frame = pd.DataFrame({"ts": np.char.add(np.datetime_as_string(stamps, unit="s" if whole else "us"), "Z")})
    for col in BAR_COLUMNS:
        frame[col] = pd.array(out[col].to_numpy(), dtype="Int64") if col == "bar_count" else out[col].to_numpy()
    frame["partial"] = out["partial"].to_numpy()
    frame.to_csv(sys.stdout if target == "-" else target, index=False, lineterminator="\n")
