"""``ibkrtool resample``: bars of a larger size from stored or CSV bars, aligned like IB's own bars."""

from __future__ import annotations

import typer

from ibkrtool.cli import options as o
from ibkrtool.cli import render

HELP = """Resample bars to a larger size: --to 5s, 1m, 5m, 15m, 1h, 1d or 1w, a whole multiple of the source size.

Bars come from the database (--symbol, repeatable, with --bar-size and --start/--end) or from a bars CSV (--input FILE, '-' reads stdin; the source size is read off the data unless --bar-size is given). A CSV whose times carry no zone needs --tz.

Bins are aligned the way IB aligns its own bars: intraday bins on the exchange's clock, a bin cut by the session open labelled at the open (regular-hours hourly bars start 09:30, 10:00, 11:00 …); daily bins are exchange sessions (forex 17:00 to 17:00 New York), not UTC days. Sessions come from --symbol (--rth, the default, drops bars outside regular hours; --all-hours keeps extended hours); CSV input without --symbol is aligned on the clock only and cannot go to 1d.

Bins not fully covered (session-cut first or last bins, bins with a hole) are kept and marked in a 'partial' column of the CSV output; --drop-partial leaves them out. The database has no such column: bins are stored either way, like IB's own session-cut bars, and a later resample over completed data replaces them.

Output: --output FILE or '-' (CSV on stdout, one symbol); without --output the bars go to the database beside the backfilled series of the new size. With several symbols, each is resampled on its own; the command exits non-zero if any failed, keeping what succeeded.

Examples:

    ibkrtool resample --symbol SPY --bar-size 1m --to 1h --start 2026-01-02
    ibkrtool resample -s SPY -s AAPL --bar-size 1s --to 5m
    ibkrtool db export bars -s SPY -b 1s -o - | ibkrtool resample -i - -s SPY --to 5m -o -
"""


def register(app: typer.Typer) -> None:
    app.command("resample", help=HELP, no_args_is_help=True)(resample)


def resample(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="Target bar size: 5s, 1m, 5m, 15m, 1h, 1d, 1w (IB spellings too).",
                           show_default=False),
    symbol: o.Symbols = None,
    bar_size: o.BarSizeOpt = None,
    what_to_show: o.WhatToShowOpt = None,
    start: o.Start = None,
    end: o.End = None,
    tz: o.Tz = None,
    input_file: o.InputFile = None,
    output: o.OutputFile = None,
    drop_partial: bool = typer.Option(False, "--drop-partial", help="Leave out bins not fully covered."),
    rth: bool = typer.Option(True, "--rth/--all-hours", help="Sessions: regular trading hours, or all hours."),
    as_json: o.Json = False,
) -> None:
    import sys

    from ibkrtool.app.resample import ResampleRequest, resample, write_resampled_csv
    from ibkrtool.model import BarSize, Instrument
    from ibkrtool.model.when import zone_named

    request = ResampleRequest(
        target=BarSize.parse(to), instruments=tuple(Instrument.parse(s) for s in dict.fromkeys(symbol or [])),
        source_size=BarSize.parse(bar_size) if bar_size else None, what_to_show=what_to_show,
        start=o.when(start, "--start", tz), end=o.when(end, "--end", tz), tz=zone_named(tz) if tz else None,
        input=input_file, output=output, drop_partial=drop_partial, rth=rth)
    if as_json and output == "-":
        raise o.usage("--json and --output - would both write to stdout; send the bars to a file")
    render.stdout_carries_data(output == "-" or as_json)
    report = resample(o.workspace(ctx), request)
    for series in report.series:
        if output is not None and series.bars is not None:
            write_resampled_csv(series.bars, sys.stdout if output == "-" else output)
    if as_json:
        render.print_json(report.as_dict())
    for s in report.series:
        where = s.destination
        if where == "database":
            where = f"database ({s.inserted or 0:,} new, {s.updated or 0:,} updated)"
        elif where == "-":
            where = "stdout"
        render.say(f"{s.symbol}: resampled {s.rows_in:,} {s.source_size} bars → {s.rows_out:,} {s.target_size} "
                   f"bars ({s.partial:,} partial) → {where}")
    report.failures.raise_if_any(len(request.instruments))
