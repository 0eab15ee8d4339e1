"""``ibkrtool backtest``: run a strategy over stored or CSV bars with IB's costs; metrics, trades, charts, sweeps."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import Console

from ibkrtool.backtest.costs import parse_commission, parse_slippage
from ibkrtool.backtest.engine import FILL_MODES, BacktestConfig
from ibkrtool.backtest.runner import Market, Report, backtest_strategy, run_record
from ibkrtool.backtest.sizing import parse_size
from ibkrtool.backtest.sources import tick_size
from ibkrtool.backtest.stats import buy_and_hold_equity, drawdown
from ibkrtool.backtest.sweep import SweepJob, params_for, parse_grid, ranking, run_sweep, sort_key
from ibkrtool.cli.options import settings
from ibkrtool.cli.render import print_json, print_table, progress, stderr
from ibkrtool.data.sources import LoadedBars, load_from_csv, load_from_store, parse_bound
from ibkrtool.errors import InputError
from ibkrtool.model import BarSize, Instrument, WhatToShow

ORDER = 60
PLOT_FORMATS = (".png", ".svg", ".pdf", ".html")  # as backtest.plot.FORMATS, without importing matplotlib early

HELP = """Backtest STRATEGY on one or more symbols with Interactive Brokers' commissions.

Bars come from the database (--symbol, --bar-size, --start/--end) or a bars CSV (--input FILE, '-' = stdin).
Decisions are taken on each bar's close and filled at the NEXT bar's open (--fill next-open, default) or at
that close (--fill close). An open position is closed at the last close (exit reason end-of-data).

--grid runs every parameter combination on all cores and ranks them. Beware overfitting: the best of many
backtests looks better than its future will be; use --split 0.7 to rank on the first 70% of bars and judge
the winners on the remaining 30% they were not chosen on.

Examples:
  ibkrtool backtest pivot-breakout --symbol SPY --bar-size 5m --start 2024-01-01 --plot spy.png
  ibkrtool backtest ema-aroon --input bars.csv --size equity:0.5 --commission ib-tiered --json
  ibkrtool backtest pivot-breakout -s SPY --grid "pivot=3,5,8 ma_period=20,50,100" --sort sharpe --split 0.7
"""


def register(app: typer.Typer) -> None:
    app.command("backtest", help=HELP, no_args_is_help=True)(backtest)


def backtest(
    ctx: typer.Context,
    strategy: str = typer.Argument(..., help="Strategy name, e.g. pivot-breakout or ema-aroon."),
    symbol: list[str] = typer.Option([], "--symbol", "-s", help="Symbol(s): SPY, EUR.USD; repeat or comma-separate."),
    bar_size: str = typer.Option("5m", "--bar-size", "-b", help="Bar size: 1m, 5m, 1h, 1d or IB's '5 mins'."),
    what_to_show: str = typer.Option(None, "--what-to-show", help="TRADES (stocks) / MIDPOINT (forex) by default."),
    start: str = typer.Option(None, "--start", help="First day/instant (exchange time zone unless it has one)."),
    end: str = typer.Option(None, "--end", help="Last day (inclusive) or instant (exclusive)."),
    input_file: str = typer.Option(None, "--input", "-i", help="Bars CSV instead of the database; '-' = stdin."),
    param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter key=value (repeatable)."),
    fill: str = typer.Option("next-open", "--fill", help=f"Fill rule: {' | '.join(FILL_MODES)}."),
    cash: float = typer.Option(100_000.0, "--cash", help="Starting cash (quote currency)."),
    size: str = typer.Option("fixed:100", "--size", help="fixed:SHARES | cash:AMOUNT | equity:FRACTION."),
    commission: str = typer.Option(
        "auto", "--commission",
        help="ib-fixed | ib-tiered | ib-forex | none | custom:per_share=..,pct=..(percent),min=..; "
             "auto = ib-forex for pairs, ib-fixed for stocks."),
    slippage: str = typer.Option("0", "--slippage", help="Adverse fill move per order: 1tick, 2ticks or 2bps."),
    tick: float = typer.Option(None, "--tick", help="Price increment for tick slippage (default: contract's)."),
    rth: bool = typer.Option(True, "--rth/--all-hours", help="Bars cover regular hours (annualising, gap check)."),
    gaps: str = typer.Option("warn", "--gaps", help="Missing bars inside a session: warn | refuse."),
    plot: Path = typer.Option(None, "--plot", help="Write a chart: .png, .svg, .pdf or .html."),
    plot_from: str = typer.Option(None, "--from", help="Chart window start (zoom)."),
    plot_to: str = typer.Option(None, "--to", help="Chart window end (zoom)."),
    grid: str = typer.Option(None, "--grid", help="Sweep: 'pivot=3,5,8 ma_period=20,50' (all combinations)."),
    sort: str = typer.Option("sharpe", "--sort", help="Sweep ranking: sharpe, sortino, return, cagr, drawdown, ..."),
    split: float = typer.Option(None, "--split", help="In-sample fraction, e.g. 0.7; the rest is out-of-sample."),
    workers: int = typer.Option(None, "--workers", help="Sweep processes (default: all cores)."),
    trades: str = typer.Option(None, "--trades", help="Write the trades as CSV to FILE or '-' (stdout)."),
    equity: str = typer.Option(None, "--equity", help="Write the equity curve as CSV to FILE or '-'."),
    json_out: bool = typer.Option(False, "--json", help="Metrics as JSON on stdout."),
    store: bool = typer.Option(True, "--store/--no-store", help="Record runs in backtest_runs/backtest_trades."),
) -> None:
    from ibkrtool.strategies import get_strategy, parse_param_args, parse_params

    strat = get_strategy(strategy)
    base_params = parse_param_args(param)
    if gaps not in ("warn", "refuse"):
        raise InputError(f"--gaps {gaps!r} must be warn or refuse")
    instruments = _instruments(symbol, input_file)
    size_rule, slip = parse_size(size), parse_slippage(slippage)
    bar = BarSize.parse(bar_size)
    if split is not None and not 0 < split < 1:
        raise InputError(f"--split must lie strictly between 0 and 1, got {split:g}")
    _check_outputs(grid, plot, trades, equity, json_out)
    key = sort_key(sort) if grid else None
    combos = parse_grid(grid) if grid else None
    engine = _engine(ctx) if (store or not input_file) else None

    jobs = []
    for instrument in instruments:
        loaded = _load(engine, instrument, bar, what_to_show, start, end, input_file)
        market = Market(instrument, bar, _what(instrument, what_to_show), rth, loaded.conid)
        config = BacktestConfig(
            cash=cash, size=size_rule, slippage=slip, fill=fill, tick=tick_size(loaded, instrument, tick),
            commission=_commission(commission, instrument), is_forex=instrument.is_forex)
        config.check()
        jobs.append((loaded, market, config))

    if combos is not None:
        _sweep(engine if store else None, strat, combos, base_params, parse_params, jobs, key, gaps, split, workers,
               json_out, ctx)
        return

    reports = [backtest_strategy(loaded.bars, strat, parse_params(strat, base_params), config, market, gaps, split)
               for loaded, market, config in jobs]
    run_ids = _store(engine, reports, ctx) if store else [None] * len(reports)
    for report, run_id in zip(reports, run_ids, strict=True):
        _summary(report, run_id)
    if len(reports) > 1:
        _combined(reports)
    _outputs(reports, run_ids, jobs, trades, equity, json_out, plot, plot_from, plot_to)


def _check_outputs(grid: str | None, plot: Path | None, trades: str | None, equity: str | None,
                   json_out: bool) -> None:
    if grid and (plot or trades or equity):
        raise InputError("--plot, --trades and --equity describe one run; run the chosen combination without --grid")
    to_stdout = [name for name, on in (("--json", json_out), ("--trades -", trades == "-"),
                                       ("--equity -", equity == "-")) if on]
    if len(to_stdout) > 1:
        raise InputError(f"{' and '.join(to_stdout)} would both write to stdout; send one of them to a file")
    if plot is not None and plot.suffix.lower() not in PLOT_FORMATS:
        raise InputError(f"--plot {plot.name!r}: use a .png, .svg, .pdf or .html file name")


def _instruments(symbols: list[str], input_file: str | None) -> list[Instrument]:
    names = [s.strip() for item in symbols for s in item.split(",") if s.strip()]
    if input_file:
        if len(names) > 1:
            raise InputError("--input holds one instrument; give at most one --symbol to name it")
        return [Instrument.parse(names[0] if names else "INPUT")]
    if not names:
        raise InputError("give --symbol SYMBOL (bars from the database) or --input FILE")
    return [Instrument.parse(n) for n in dict.fromkeys(names)]


def _what(instrument: Instrument, what_to_show: str | None) -> str:
    return WhatToShow.parse(what_to_show).value if what_to_show else instrument.default_what_to_show


def _commission(text: str, instrument: Instrument) -> Any:
    if text.strip().lower() == "auto":
        text = "ib-forex" if instrument.is_forex else "ib-fixed"
    return parse_commission(text, instrument.symbol, instrument.currency)


def _engine(ctx: typer.Context) -> Any:
    from ibkrtool.store.engine import open_engine

    return open_engine(settings(ctx).db_url)


def _load(engine: Any, instrument: Instrument, bar: BarSize, what_to_show: str | None, start: str | None,
          end: str | None, input_file: str | None) -> LoadedBars:
    lo, hi = parse_bound(start, instrument, False), parse_bound(end, instrument, True)
    if lo and hi and lo >= hi:
        raise InputError(f"--start {start} is not before --end {end}")
    if input_file:
        loaded = load_from_csv(input_file, instrument, lo, hi)
    else:
        loaded = load_from_store(engine, instrument, str(bar), _what(instrument, what_to_show), lo, hi)
    if len(loaded.bars) == 0:
        raise InputError(f"no {bar} bars of {instrument.display} in the requested range; widen --start/--end or "
                         "backfill first")
    return loaded


def _store(engine: Any, reports: list[Report], ctx: typer.Context, extra: dict | None = None) -> list[str]:
    from ibkrtool.store.backtests import save_backtest
    from ibkrtool.store.migrate import init_db
    from ibkrtool.store.runs import track_run

    init_db(engine)
    args = {**ctx.params, "runs": len(reports)}
    with track_run(engine, "backtest", args), engine.begin() as conn:
        return [save_backtest(conn, run_record(r, extra), r.result.trades) for r in reports]


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return str(value)


SUMMARY_ROWS = (
    ("final_equity", "Final equity"), ("total_return_pct", "Total return %"), ("cagr_pct", "CAGR %"),
    ("volatility_ann_pct", "Volatility (ann.) %"), ("sharpe", "Sharpe"), ("sortino", "Sortino"),
    ("max_drawdown_pct", "Max drawdown %"), ("max_drawdown_duration", "Max drawdown duration"),
    ("trades", "Trades"), ("win_rate_pct", "Win rate %"), ("profit_factor", "Profit factor"),
    ("avg_win", "Average win"), ("avg_loss", "Average loss"), ("expectancy", "Expectancy / trade"),
    ("exposure_pct", "Exposure %"), ("commissions", "Commissions paid"),
)


def _summary(report: Report, run_id: str | None) -> None:
    m, hold = report.metrics, report.metrics["buy_and_hold"]
    rows = [{"metric": label, "strategy": _fmt(m.get(k)), "buy & hold": _fmt(hold.get(k)) if k in hold else ""}
            for k, label in SUMMARY_ROWS]
    for name, seg in report.segments.items():
        rows.append({"metric": f"{name.replace('_', '-')} return % / Sharpe",
                     "strategy": f"{_fmt(seg['total_return_pct'])} / {_fmt(seg['sharpe'])}",
                     "buy & hold": f"{_fmt(seg['buy_and_hold']['total_return_pct'])}"})
    config = report.result.config
    title = (f"{report.strategy} {report.params} on {report.market.instrument.display} {report.market.bar_size} "
             f"{m['start'][:10]}→{m['end'][:10]} · fill {config.fill} · {config.commission.name} · "
             f"slippage {config.slippage}" + (f" · run {run_id}" if run_id else ""))
    print_table(rows, ["metric", "strategy", "buy & hold"], title=title, console=stderr)
    for warning in report.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}", markup=True, highlight=False)


def _combined(reports: list[Report]) -> None:
    rows = [{"symbol": r.market.instrument.display, "return %": round(r.metrics["total_return_pct"], 4),
             "sharpe": r.metrics["sharpe"], "max dd %": round(r.metrics["max_drawdown_pct"], 4),
             "trades": r.metrics["trades"], "net P&L": round(r.metrics["net_pnl"], 2)} for r in reports]
    start = sum(r.metrics["start_equity"] for r in reports)
    final = sum(r.metrics["final_equity"] for r in reports)
    rows.append({"symbol": "all (sum of runs)", "return %": round(100 * (final / start - 1), 4), "sharpe": None,
                 "max dd %": None, "trades": sum(r.metrics["trades"] for r in reports),
                 "net P&L": round(sum(r.metrics["net_pnl"] for r in reports), 2)})
    print_table(rows, ["symbol", "return %", "sharpe", "max dd %", "trades", "net P&L"],
                title="combined (each symbol its own starting cash)", console=stderr)


def _write_csv(frame: pd.DataFrame, target: str) -> None:
    if target == "-":
        frame.to_csv(sys.stdout, index=False)
        sys.stdout.flush()
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(target, index=False)


def _trades_frame(reports: list[Report]) -> pd.DataFrame:
    parts = []
    for r in reports:
        t = r.result.trades.copy()
        t.insert(0, "symbol", r.market.instrument.display)
        for col in ("entry_time", "exit_time"):
            t[col] = pd.to_datetime(t[col]).dt.strftime("%Y-%m-%dT%H:%M:%SZ") if len(t) else t[col]
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def _equity_frame(reports: list[Report]) -> pd.DataFrame:
    parts = []
    for r in reports:
        eq = r.result.equity
        parts.append(pd.DataFrame({
            "symbol": r.market.instrument.display, "ts": eq.index.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "equity": eq.to_numpy(), "position": r.result.position.to_numpy(),
            "drawdown_pct": 100 * drawdown(eq.to_numpy(), r.result.config.cash)}))
    return pd.concat(parts, ignore_index=True)


def _outputs(reports: list[Report], run_ids: list, jobs: list, trades: str | None, equity: str | None,
             json_out: bool, plot: Path | None, plot_from: str | None, plot_to: str | None) -> None:
    if trades:
        _write_csv(_trades_frame(reports), trades)
    if equity:
        _write_csv(_equity_frame(reports), equity)
    if plot:
        _plots(reports, jobs, plot, plot_from, plot_to)
    if json_out:
        out = [_json(r, run_id) for r, run_id in zip(reports, run_ids, strict=True)]
        print_json(out[0] if len(out) == 1 else out)


def _json(report: Report, run_id: str | None) -> dict[str, Any]:
    from ibkrtool.store.backtests import plain

    config = report.result.config
    return plain({
        "run_id": run_id, "strategy": report.strategy, "symbol": report.market.instrument.display,
        "bar_size": str(report.market.bar_size), "params": report.params, "fill": config.fill,
        "commission": config.commission.name, "slippage": str(config.slippage), "size": str(config.size),
        "engine_version": report.engine_version, "metrics": report.metrics, "segments": report.segments,
        "warnings": report.warnings,
    })


def _plots(reports: list[Report], jobs: list, plot: Path, plot_from: str | None, plot_to: str | None) -> None:
    from ibkrtool.backtest import plot as charts

    for report, (loaded, market, config) in zip(reports, jobs, strict=True):
        path = plot if len(reports) == 1 else plot.with_name(f"{plot.stem}-{market.instrument.display}{plot.suffix}")
        lo = parse_bound(plot_from, market.instrument, False)
        hi = parse_bound(plot_to, market.instrument, True)
        title = (f"{report.strategy} {report.params} · {market.instrument.display} {market.bar_size} · "
                 f"fill {config.fill}")
        charts.render(path, loaded.bars, report.result.equity, report.result.trades, report.indicators,
                      buy_and_hold_equity(loaded.bars, config.cash, config.fill), title, lo, hi,
                      start_cash=config.cash)
        stderr.print(f"chart written to {path}", highlight=False)


def _sweep(engine: Any, strat: Any, combos: list[dict[str, str]], base: dict[str, str], parse: Any, jobs: list,
           key: str, gaps: str, split: float | None, workers: int | None, json_out: bool, ctx: typer.Context) -> None:
    params_list = params_for(strat, combos, base, parse)
    all_reports, tables = [], []
    for loaded, market, config in jobs:
        job = SweepJob(strat, config, market, gaps, split)
        with progress(transient=True) as bar:
            task = bar.add_task(f"sweep {market.instrument.display}", total=len(params_list), detail="")
            reports = run_sweep(loaded.bars, job, params_list, workers,
                                on_done=lambda done, total, task=task: bar.update(task, completed=done))
        for warning in dict.fromkeys(w for r in reports for w in r.warnings):
            stderr.print(f"[yellow]warning:[/] {market.instrument.display}: {warning}", markup=True, highlight=False)
        table = ranking(reports, key)
        table.insert(0, "symbol", market.instrument.display)
        tables.append(table)
        all_reports.extend(reports)
    if engine is not None:
        _store(engine, all_reports, ctx, {"sweep": True})
    result = pd.concat(tables, ignore_index=True)
    if json_out:
        print_json(result.astype(object).where(result.notna(), None).to_dict(orient="records"))
    else:
        rows = result.astype(object).where(result.notna(), None).to_dict(orient="records")
        for row in rows:
            for k, v in row.items():
                if isinstance(v, float):
                    row[k] = round(v, 4)
        ranked_on = "in-sample " if split else ""
        wide = Console(file=sys.stdout, soft_wrap=True, width=max(120, 14 * len(result.columns)))
        print_table(rows, list(result.columns), title=f"{len(params_list)} combinations ranked by {ranked_on}{key}",
                    console=wide)
    stderr.print("[yellow]note:[/] the best of many backtests overstates what to expect; "
                 + ("check the out-of-sample columns." if split else "rerun with --split 0.7 to hold data out."),
                 markup=True, highlight=False)
