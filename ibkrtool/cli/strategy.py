"""``ibkrtool strategy``: per-bar target positions of a named strategy, by the Python or the R engine."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd
import typer

from ibkrtool.cli.options import settings
from ibkrtool.cli.render import print_table, stderr
from ibkrtool.errors import InputError
from ibkrtool.model import BarSize, Instrument, WhatToShow

ORDER = 50

HELP = """Run strategy NAME over bars and write its per-bar target positions (decided at each bar's close).

Bars come from the database (--symbol, --bar-size, --start/--end) or a bars CSV (--input FILE, '-' = stdin).
Parameters: --param key=value (repeatable); `ibkrtool strategy --list` shows every strategy with its
parameters and defaults. --engine r runs the R implementation (r/run_strategy_pipeline.R on TTR) via Rscript.

Outputs: the run and its positions go to the database tables strategy_runs/strategy_positions (by default when
the bars come from the database; --store/--no-store to choose); --output FILE|- writes CSV (ts, close, position,
signal, indicator columns); --trades FILE|- writes the round trips (entry/exit time and price, side, bars held,
reason). A summary goes to stderr.

Examples:
  ibkrtool strategy --list
  ibkrtool strategy pivot-breakout --symbol SPY --bar-size 5m --param pivot=5 --trades spy_trades.csv
  ibkrtool strategy ema-aroon --input eurusd_1m.csv --engine r --param allow_short=true -o - > positions.csv
"""


def register(app: typer.Typer) -> None:
    app.command("strategy", help=HELP, no_args_is_help=True)(strategy)


def strategy(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Strategy name (see --list)."),
    list_all: bool = typer.Option(False, "--list", help="List strategies with their parameters and defaults."),
    symbol: str = typer.Option(None, "--symbol", "-s", help="Instrument: SPY, EUR.USD."),
    bar_size: str = typer.Option(None, "--bar-size", "-b",
                                 help="Bar size: 1m, 5m, 1h, 1d (stored: default 5m; CSV: read off the data)."),
    what_to_show: str = typer.Option(None, "--what-to-show", help="TRADES (stocks) / MIDPOINT (forex) by default."),
    start: str = typer.Option(None, "--start", help="First day/instant (exchange time zone unless it has one)."),
    end: str = typer.Option(None, "--end", help="Last day (inclusive) or instant (exclusive)."),
    input_file: str = typer.Option(None, "--input", "-i", help="Bars CSV instead of the database; '-' = stdin."),
    param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter key=value (repeatable)."),
    engine_name: str = typer.Option("python", "--engine", help="python | r"),
    output: str = typer.Option(None, "--output", "-o", help="Write the positions CSV to FILE or '-' (stdout)."),
    trades: str = typer.Option(None, "--trades", help="Write the round trips CSV to FILE or '-' (stdout)."),
    store: bool = typer.Option(None, "--store/--no-store", help="Record the run (default: bars from the DB)."),
) -> None:
    from ibkrtool.strategies import get_strategy, parse_param_args, parse_params

    if list_all:
        _list()
        return
    if not name:
        raise InputError("give a strategy NAME (see `ibkrtool strategy --list`)")
    strat = get_strategy(name)
    params = parse_params(strat, parse_param_args(param))
    if output == "-" and trades == "-":
        raise InputError("--output and --trades cannot both go to stdout")
    store = input_file is None if store is None else store
    instrument = Instrument.parse(symbol) if symbol else None
    if input_file is None and instrument is None:
        raise InputError("give --symbol SYMBOL (bars from the database) or --input FILE")
    what = WhatToShow.parse(what_to_show).value if what_to_show else (
        instrument.default_what_to_show if instrument else "TRADES")
    size = str(BarSize.parse(bar_size or "5m"))
    db = _engine(ctx) if (store or input_file is None) else None
    bars, conid = _load(db, instrument, size, what, start, end, input_file)
    if input_file is not None and bar_size is None:
        size = _size_of(bars)
    _run_and_write(db if store else None, strat, params, engine_name, bars, conid, instrument, size, what, output,
                   trades)


def _run_and_write(db: Any, strat: Any, params: Any, engine_name: str, bars: pd.DataFrame, conid: int | None,
                   instrument: Instrument | None, size: str, what: str, output: str | None, trades: str | None
                   ) -> None:
    from dataclasses import asdict

    from ibkrtool.strategies import round_trips
    from ibkrtool.strategies.output import positions_frame, run_engine, write_positions_csv
    from ibkrtool.strategies.r_engine import REngineError

    try:
        result = run_engine(strat, bars, params, engine_name)
    except REngineError as exc:
        stderr.print(exc.stderr, markup=False, highlight=False)
        raise
    frame = positions_frame(bars, result)
    run_id = None
    if db is not None:
        from ibkrtool.store.strategy_runs import save_strategy_run

        run = {"strategy": strat.name, "params": asdict(params), "engine": engine_name, "conid": conid,
               "symbol": instrument.display if instrument else "-", "bar_size": size, "what_to_show": what}
        run_id = save_strategy_run(db, run, frame[["position", "signal"]])
    trips = round_trips(bars, result.positions, result.signals)
    if output is not None:
        write_positions_csv(frame, sys.stdout if output == "-" else output)
    if trades is not None:
        _write_trades(trips, sys.stdout if trades == "-" else trades)
    _summary(strat.name, engine_name, bars, result, trips, run_id)


def _list() -> None:
    from ibkrtool.strategies import list_strategies, param_fields

    rows = []
    for strat in list_strategies():
        params = ", ".join(f"{n}={_show(v)}" for n, _, v in param_fields(strat))
        rows.append({"strategy": strat.name, "parameters (defaults)": params, "description": strat.description})
    print_table(rows, ["strategy", "parameters (defaults)", "description"])


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _engine(ctx: typer.Context) -> Any:
    from ibkrtool.store.engine import open_engine

    return open_engine(settings(ctx).db_url)


def _load(db: Any, instrument: Instrument | None, size: str, what: str, start: str | None, end: str | None,
          input_file: str | None) -> tuple[pd.DataFrame, int | None]:
    from ibkrtool.data.sources import load_from_csv, load_from_store, parse_bound

    bound_of = instrument or Instrument.parse("SPY")  # dates without a zone are read on the New York clock
    lo, hi = parse_bound(start, bound_of, False), parse_bound(end, bound_of, True)
    if input_file is not None:
        return load_from_csv(input_file, bound_of, lo, hi).bars, None
    loaded = load_from_store(db, instrument, size, what, lo, hi)
    return loaded.bars, loaded.conid


def _size_of(bars: pd.DataFrame) -> str:
    """The CSV's bar size as read off its timestamps (recorded with the run), ``?`` when it cannot be told."""
    from ibkrtool.data.resample import infer_bar_size

    try:
        return str(infer_bar_size(bars))
    except InputError:
        return "?"


def _write_trades(trips: pd.DataFrame, target: Any) -> None:
    out = trips.copy()
    for col in ("entry_time", "exit_time"):
        out[col] = pd.to_datetime(out[col], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(target, index=False, lineterminator="\n")


def _summary(name: str, engine_name: str, bars: pd.DataFrame, result: Any, trips: pd.DataFrame,
             run_id: str | None) -> None:
    held = result.positions != 0
    closed = trips.dropna(subset=["exit_price"])
    sign = np.where(closed["side"] == "long", 1.0, -1.0)
    wins = int((sign * (closed["exit_price"] - closed["entry_price"]) > 0).sum())
    rows = [
        {"item": "strategy", "value": f"{name} ({engine_name} engine)"},
        {"item": "bars", "value": f"{len(bars):,}  {bars.index[0]:%Y-%m-%d %H:%M} → {bars.index[-1]:%Y-%m-%d %H:%M}Z"},
        {"item": "warm-up bars", "value": str(result.warmup)},
        {"item": "round trips", "value": f"{len(trips):,} ({wins:,} of {len(closed):,} closed ones won at the close)"},
        {"item": "time in market", "value": f"{held.mean():.1%}"},
        {"item": "last position", "value": f"{result.positions[-1]:+.0f}"},
        {"item": "run id", "value": run_id or "(not stored)"},
    ]
    print_table(rows, ["item", "value"], title="strategy run", console=stderr)
