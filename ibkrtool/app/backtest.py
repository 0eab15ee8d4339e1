"""``backtest`` and ``sweep``: a strategy over stored or CSV bars with Interactive Brokers' costs.

``backtest(ws, BacktestRequest(...))`` loads each instrument's bars (the database, read-only, or a bars CSV), runs
the strategy and the engine, writes the chart when asked, stores every run with the ``runs`` journal in one
transaction (``store=True``; the workspace initialises the database) and returns a ``BacktestReport``.
``sweep(ws, SweepRequest(...))`` does the same for every combination of a parameter grid and ranks them.
Neither prints: the CLI renders the report, a Python user reads it. Bad input raises ``InputError`` before anything
is read or stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ibkrtool.app.backtest_report import BacktestReport, SweepReport, SymbolRun
from ibkrtool.app.outcome import Failures
from ibkrtool.backtest.costs import CommissionModel, Slippage, parse_commission, parse_slippage
from ibkrtool.backtest.engine import FILL_MODES, BacktestConfig
from ibkrtool.backtest.runner import Market, Report, backtest_strategy, run_record
from ibkrtool.backtest.sizing import SizeRule, parse_size
from ibkrtool.backtest.sweep import SORT_KEYS, SweepJob, params_for, parse_grid, ranking, run_sweep, sort_key
from ibkrtool.errors import IbkrToolError, InputError
from ibkrtool.model import BarSize, Instrument, WhatToShow
from ibkrtool.model.when import When
from ibkrtool.strategies import get_strategy, parse_param_args, parse_params

if TYPE_CHECKING:
    from datetime import datetime

    from ibkrtool.app.workspace import Workspace
    from ibkrtool.data.sources import LoadedBars

# Besides its own API, re-exports the parsers a caller needs to build a request from option text.
__all__ = [
    "FILL_MODES", "GAP_POLICIES", "PLOT_FORMATS", "SORT_KEYS", "BacktestReport", "BacktestRequest", "SizeRule",
    "Slippage", "SweepReport", "SweepRequest", "SymbolRun", "backtest", "parse_grid", "parse_param_args",
    "parse_size", "parse_slippage", "sweep", "write_plot",
]

PLOT_FORMATS = (".png", ".svg", ".pdf", ".html")  # as backtest.plot.FORMATS, without importing matplotlib early
GAP_POLICIES = ("warn", "refuse")
INPUT = "INPUT"  # the instrument of a bars CSV given without --symbol

Progress = Callable[[str, int, int], None]  # (symbol, done, total)


@dataclass(frozen=True)
class BacktestRequest:
    """One backtest, parsed. ``params`` are text values (``{"pivot": "5"}``), parsed by the strategy itself.

    Bars come from ``input`` (a bars CSV path, ``-`` = stdin; at most one instrument, ``INPUT`` when none is given;
    ``tz`` names the zone of stamps written without one) or from the database (every instrument). ``start``/``end``
    follow the one time rule (``model.when``); so do ``plot_start``/``plot_end``, the chart's window. ``commission``
    is a model name (``auto`` = ib-forex for pairs, ib-fixed for stocks) or ``custom:…``.
    """

    strategy: str
    instruments: Sequence[Instrument] = ()
    params: Mapping[str, str] = field(default_factory=dict)
    bar_size: BarSize = field(default_factory=lambda: BarSize.parse("5m"))
    what_to_show: WhatToShow | None = None
    start: When | None = None
    end: When | None = None
    tz: ZoneInfo | None = None
    input: str | None = None
    fill: str = "next-open"
    cash: float = 100_000.0
    size: SizeRule = field(default_factory=SizeRule)
    commission: str = "auto"
    slippage: Slippage = field(default_factory=Slippage)
    tick: float | None = None
    rth: bool = True
    gaps: str = "warn"
    split: float | None = None
    store: bool = True
    plot: Path | None = None
    plot_start: When | None = None
    plot_end: When | None = None

    def targets(self) -> list[Instrument]:
        """The instruments to backtest (duplicates dropped); ``InputError`` when none or too many for ``input``."""
        names = list(dict.fromkeys(self.instruments))
        if self.input:
            if len(names) > 1:
                raise InputError("--input holds one instrument; give at most one --symbol to name it")
            return names or [Instrument.parse(INPUT)]
        if not names:
            raise InputError("give --symbol SYMBOL (bars from the database) or --input FILE")
        return names

    def check(self) -> None:
        """Raise ``InputError`` for a request no backtest can run, before any bars are read."""
        if self.gaps not in GAP_POLICIES:
            raise InputError(f"--gaps {self.gaps!r} must be warn or refuse")
        if self.split is not None and not 0 < self.split < 1:
            raise InputError(f"--split must lie strictly between 0 and 1, got {self.split:g}")
        if self.plot is not None and Path(self.plot).suffix.lower() not in PLOT_FORMATS:
            raise InputError(f"--plot {Path(self.plot).name!r}: use a .png, .svg, .pdf or .html file name")
        for instrument in self.targets():
            BacktestConfig(cash=self.cash, size=self.size, slippage=self.slippage, fill=self.fill,
                           commission=commission_model(self.commission, instrument),
                           is_forex=instrument.is_forex).check()
            plot_window(instrument, self.plot_start, self.plot_end)

    def journal_args(self) -> dict[str, Any]:
        """The request as the ``runs`` journal records it."""
        return {
            "strategy": self.strategy, "symbols": [i.display for i in self.instruments],
            "params": [f"{k}={v}" for k, v in self.params.items()], "bar_size": str(self.bar_size),
            "what_to_show": self.what_to_show.value if self.what_to_show else None,
            "start": _text(self.start), "end": _text(self.end), "tz": self.tz.key if self.tz else None,
            "input": self.input, "fill": self.fill, "cash": self.cash, "size": str(self.size),
            "commission": self.commission, "slippage": str(self.slippage), "tick": self.tick, "rth": self.rth,
            "gaps": self.gaps, "split": self.split, "plot": str(self.plot) if self.plot else None,
        }


@dataclass(frozen=True)
class SweepRequest:
    """Every combination of ``grid`` (text values merged over ``run.params``) on each instrument of ``run``.

    ``grid`` as ``parse_grid("pivot=3,5 ma_period=20,50")`` gives it; ``sort`` names the ranking metric (``sharpe``,
    ``return``, ``drawdown``, …); ``workers`` processes (default every core). ``run.plot`` must be None.
    """

    run: BacktestRequest
    grid: Sequence[Mapping[str, str]]
    sort: str = "sharpe"
    workers: int | None = None

    def check(self) -> None:
        sort_key(self.sort)
        if not self.grid:
            raise InputError("--grid is empty; use e.g. --grid 'pivot=3,5,8 ma_period=20,50,100'")
        if self.run.plot is not None:
            raise InputError("--plot, --trades and --equity describe one run; run the chosen combination without "
                             "--grid")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}")
        self.run.check()


def backtest(ws: Workspace, request: BacktestRequest) -> BacktestReport:
    """Backtest ``request.strategy`` on each instrument; charts written and runs stored as the request asks.

    Raises ``InputError`` (exit 3) for bad input or no bars, ``StoreError`` (exit 5) when bars are read from a
    database without the ibkrtool schema or the store refuses the write.
    """
    request.check()
    strategy = get_strategy(request.strategy)
    params = parse_params(strategy, request.params)
    failures = Failures()
    jobs = []
    for instrument in request.targets():  # a symbol without bars fails alone; the others are backtested
        try:
            jobs.append(_prepare(ws, request, instrument))
        except IbkrToolError as exc:
            if len(request.targets()) == 1:
                raise
            failures.add(instrument.display, exc)
    if not jobs:
        raise failures.items[0].error
    runs = [SymbolRun(backtest_strategy(loaded.bars, strategy, params, config, market, request.gaps, request.split),
                      loaded.bars) for loaded, market, config in jobs]
    report = BacktestReport(runs, failures=failures)
    if request.plot is not None:
        report.charts = write_plot(report, request.plot, request.plot_start, request.plot_end)
    if request.store:
        ids, report.journal_id = _store(ws, [run.report for run in runs], request.journal_args())
        for run, run_id in zip(runs, ids, strict=True):
            run.run_id = run_id
    return report


def sweep(ws: Workspace, request: SweepRequest, on_progress: Progress | None = None) -> SweepReport:
    """Backtest every grid combination on each instrument (in processes), rank them, store them as asked.

    ``on_progress(symbol, done, total)`` is called as combinations finish. Raises as ``backtest``.
    """
    request.check()
    run, key = request.run, sort_key(request.sort)
    strategy = get_strategy(run.strategy)
    params_list = params_for(strategy, [dict(c) for c in request.grid], run.params, parse_params)
    reports: list[Report] = []
    tables, warnings = [], []
    for loaded, market, config in [_prepare(ws, run, instrument) for instrument in run.targets()]:
        symbol = market.instrument.display
        done = (lambda k, n, symbol=symbol: on_progress(symbol, k, n)) if on_progress else None
        found = run_sweep(loaded.bars, SweepJob(strategy, config, market, run.gaps, run.split), params_list,
                          request.workers, on_done=done)
        warnings += [f"{symbol}: {w}" for w in dict.fromkeys(w for r in found for w in r.warnings)]
        table = ranking(found, key)
        table.insert(0, "symbol", symbol)
        tables.append(table)
        reports.extend(found)
    import pandas as pd

    report = SweepReport(pd.concat(tables, ignore_index=True), reports, len(params_list), key, run.split,
                         warnings=warnings)
    if run.store:
        args = {**run.journal_args(), "grid": [" ".join(f"{k}={v}" for k, v in c.items()) for c in request.grid],
                "sort": request.sort, "workers": request.workers}
        report.run_ids, report.journal_id = _store(ws, reports, args, {"sweep": True})
    return report


def write_plot(report: BacktestReport, path: str | Path, start: When | None = None, end: When | None = None
               ) -> list[Path]:
    """Chart each run to ``path`` (``name-SYMBOL.ext`` for several runs), zoomed to ``[start, end)``; the paths.

    The format follows the suffix (.png, .svg, .pdf, .html). Raises ``InputError`` for another suffix or a window
    holding fewer than two bars.
    """
    from ibkrtool.backtest import plot as charts
    from ibkrtool.backtest.stats import buy_and_hold_equity

    path = Path(path)
    written = []
    for run in report.runs:
        market, config, result = run.report.market, run.config, run.report.result
        target = path if len(report.runs) == 1 else path.with_name(f"{path.stem}-{run.symbol}{path.suffix}")
        lo, hi = plot_window(market.instrument, start, end)
        title = f"{run.report.strategy} {run.report.params} · {run.symbol} {market.bar_size} · fill {config.fill}"
        charts.render(target, run.bars, result.equity, result.trades, run.report.indicators,
                      buy_and_hold_equity(run.bars, config.cash, config.fill), title, lo, hi, start_cash=config.cash)
        written.append(target)
    return written


def plot_window(instrument: Instrument, start: When | None, end: When | None
                ) -> tuple[datetime | None, datetime | None]:
    """The chart window ``[start, end)`` in UTC (dates are trading days in the exchange's zone, the end inclusive)."""
    from ibkrtool.calendars import exchange_zone

    zone = exchange_zone(instrument)
    lo = start.start_in(zone) if start is not None else None
    hi = end.end_in(zone) if end is not None else None
    if lo is not None and hi is not None and lo >= hi:
        raise InputError(f"--plot-start {start} is not before --plot-end {end}")
    return lo, hi


def commission_model(text: str, instrument: Instrument) -> CommissionModel:
    """``--commission`` for ``instrument``: ``auto`` is ib-forex for pairs, ib-fixed for stocks."""
    if text.strip().lower() == "auto":
        text = "ib-forex" if instrument.is_forex else "ib-fixed"
    return parse_commission(text, instrument.symbol, instrument.currency)


def _prepare(ws: Workspace, request: BacktestRequest, instrument: Instrument
             ) -> tuple[LoadedBars, Market, BacktestConfig]:
    from ibkrtool.backtest.sources import tick_size

    what = request.what_to_show.value if request.what_to_show else instrument.default_what_to_show
    loaded = _load(ws, request, instrument, what)
    market = Market(instrument, request.bar_size, what, request.rth, loaded.conid)
    config = BacktestConfig(
        cash=request.cash, size=request.size, slippage=request.slippage, fill=request.fill,
        tick=tick_size(loaded, instrument, request.tick), commission=commission_model(request.commission, instrument),
        is_forex=instrument.is_forex)
    config.check()
    return loaded, market, config


def _load(ws: Workspace, request: BacktestRequest, instrument: Instrument, what: str) -> LoadedBars:
    from ibkrtool.data.sources import exchange_bounds, load_from_csv, load_from_store

    lo, hi = exchange_bounds(instrument, request.start, request.end)
    if request.input:
        loaded = load_from_csv(request.input, request.tz, lo, hi)
    else:
        loaded = load_from_store(ws.store(write=False), instrument, str(request.bar_size), what, lo, hi)
    if len(loaded.bars) == 0:
        raise InputError(f"no {request.bar_size} bars of {instrument.display} in the requested range; widen "
                         "--start/--end or backfill first")
    return loaded


def _store(ws: Workspace, reports: list[Report], args: dict[str, Any], extra: dict[str, Any] | None = None
           ) -> tuple[list[str], str]:
    """Every report in one transaction, inside a ``runs`` journal entry; the backtest run ids and the journal's."""
    from ibkrtool.store.backtests import save_backtest

    engine = ws.store(write=True)
    with ws.journal("backtest", {**args, "runs": len(reports)}) as record, engine.begin() as conn:
        ids = [save_backtest(conn, run_record(r, extra), r.result.trades) for r in reports]
        record.rows_written = len(ids) + sum(len(r.result.trades) for r in reports)
    return ids, record.run_id


def _text(value: When | None) -> str | None:
    return None if value is None else str(value)

