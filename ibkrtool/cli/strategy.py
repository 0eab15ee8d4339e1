"""``ibkrtool strategy``: per-bar target positions of a named strategy, by the Python or the R engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ibkrtool.cli import options as o
from ibkrtool.cli import render

if TYPE_CHECKING:
    from ibkrtool.app.strategy import StrategyReport, StrategyRequest, StrategyRun
    from ibkrtool.app.workspace import Workspace


HELP = """Run strategy NAME over bars and write its per-bar target positions, decided at each bar's close.

Bars come from the database (--symbol, repeatable, with --bar-size and --start/--end) or from a bars CSV (--input FILE, '-' reads stdin; a CSV whose times carry no zone needs --tz). Parameters: --param key=value (repeatable); 'ibkrtool strategy --list' shows every strategy with its parameters and defaults. --engine r runs the R implementation (r/run_strategy_pipeline.R on TTR) through Rscript.

Outputs: the run and its positions go to the database tables strategy_runs and strategy_positions (by default when the bars come from the database; --store or --no-store to choose). --output FILE or '-' writes the positions CSV (ts, close, position, signal, indicator columns); --trades FILE or '-' writes the round trips (entry and exit time and price, side, bars held, reason). A summary table goes to stderr, or JSON to stdout with --json. With several symbols each runs on its own; the command exits non-zero if any failed, keeping what succeeded.

Examples:

    ibkrtool strategy --list
    ibkrtool strategy pivot-breakout --symbol SPY --bar-size 5m --param pivot=5 --trades spy_trades.csv
    ibkrtool strategy pivot-breakout -s SPY -s QQQ -b 5m --json
    ibkrtool strategy ema-aroon --input eurusd_1m.csv --tz UTC --engine r -o - > positions.csv
"""


def register(app: typer.Typer) -> None:
    app.command("strategy", help=HELP, no_args_is_help=True)(strategy)


def strategy(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Strategy name (see --list).", show_default=False),
    list_all: bool = typer.Option(False, "--list", help="List strategies with their parameters and defaults."),
    symbol: o.Symbols = None,
    bar_size: o.BarSizeOpt = None,
    what_to_show: o.WhatToShowOpt = None,
    start: o.Start = None,
    end: o.End = None,
    tz: o.Tz = None,
    input_file: o.InputFile = None,
    param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter key=value (repeatable).",
                                    show_default=False),
    engine_name: str = typer.Option("python", "--engine", help="python or r."),
    output: str = typer.Option(None, "--output", "-o", help="Positions CSV to write; '-' writes stdout.",
                               show_default=False),
    trades: str = typer.Option(None, "--trades", help="Round trips CSV to write; '-' writes stdout.",
                               show_default=False),
    store: bool = typer.Option(None, "--store/--no-store", help="Record the runs (default: when bars come from "
                               "the database).", show_default=False),
    as_json: o.Json = False,
) -> None:
    from ibkrtool.app.strategy import StrategyRequest, parse_param_args
    from ibkrtool.model import BarSize, Instrument
    from ibkrtool.model.when import zone_named

    if list_all:
        _list()
        return
    if not name:
        raise o.usage("give a strategy NAME (see 'ibkrtool strategy --list')")
    to_stdout = [n for n, on in (("--output -", output == "-"), ("--trades -", trades == "-"),
                                 ("--json", as_json)) if on]
    if len(to_stdout) > 1:
        raise o.usage(f"{' and '.join(to_stdout)} would both write to stdout; send one of them to a file")
    symbols = tuple(Instrument.parse(s) for s in dict.fromkeys(symbol or []))
    if len(symbols) > 1 and (output or trades):
        raise o.usage("--output and --trades take one symbol's run; run once per symbol or use --json")
    request = StrategyRequest(
        name=name, params=parse_param_args(param), engine=engine_name, instruments=symbols,
        bar_size=BarSize.parse(bar_size) if bar_size else None, what_to_show=what_to_show,
        start=o.when(start, "--start", tz), end=o.when(end, "--end", tz), tz=zone_named(tz) if tz else None,
        input=input_file, store=store)
    render.stdout_carries_data(bool(to_stdout))
    report = _run(o.workspace(ctx), request)
    _write(report, output, trades)
    if as_json:
        render.print_json(report.as_dict())
    else:
        for run in report.runs:
            render.table(_rows(run), ["item", "value"], title="strategy run")
    report.failures.raise_if_any(len(symbols))


def _run(ws: Workspace, request: StrategyRequest) -> StrategyReport:
    from ibkrtool.app.strategy import REngineError, run_strategy

    try:
        return run_strategy(ws, request)
    except REngineError as exc:
        render.stderr.print(exc.stderr, markup=False, highlight=False)
        raise


def _write(report: StrategyReport, output: str | None, trades: str | None) -> None:
    import sys

    from ibkrtool.app.strategy import write_positions_csv, write_trades_csv

    for run in report.runs:
        if output is not None:
            write_positions_csv(run.positions, sys.stdout if output == "-" else output)
        if trades is not None:
            write_trades_csv(run.trips, sys.stdout if trades == "-" else trades)


def _rows(r: StrategyRun) -> list[dict[str, str]]:
    first, last = r.first_bar[:16].replace("T", " "), r.last_bar[:16].replace("T", " ")
    return [
        {"item": "strategy", "value": f"{r.strategy} ({r.engine} engine) on {r.symbol}"},
        {"item": "bars", "value": f"{r.bars:,}  {first} → {last}Z"},
        {"item": "warm-up bars", "value": str(r.warmup_bars)},
        {"item": "round trips", "value": f"{r.round_trips:,} ({r.winning_trips:,} of {r.closed_trips:,} closed "
                                         "ones won at the close)"},
        {"item": "time in market", "value": f"{r.time_in_market:.1%}"},
        {"item": "last position", "value": f"{r.last_position:+.0f}"},
        {"item": "run id", "value": r.run_id or "(not stored)"},
    ]


def _list() -> None:
    from ibkrtool.app.strategy import list_strategies_table

    render.table(list_strategies_table(), ["strategy", "parameters (defaults)", "description"])
