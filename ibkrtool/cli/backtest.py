"""``ibkrtool backtest``: parse the options → ``app.backtest.backtest`` (or ``sweep`` with ``--grid``) → render.

Only typer and the CLI's own modules are imported here; the engine, pandas and the database load inside the command,
so ``ibkrtool backtest --help`` starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ibkrtool.cli import render
from ibkrtool.cli.options import (
    BarSizeOpt,
    End,
    InputFile,
    Json,
    Start,
    Symbols,
    Tz,
    WhatToShowOpt,
    usage,
    when,
    workspace,
)

if TYPE_CHECKING:
    from ibkrtool.app.backtest import BacktestReport, SweepReport


HELP = """Backtest STRATEGY on one or more symbols with Interactive Brokers' commissions.

Bars come from the database (--symbol, --bar-size, 5m by default, --start/--end) or from a bars CSV (--input FILE, '-' reads stdin; a file whose times carry no zone needs --tz). Decisions are taken on each bar's close and filled at the NEXT bar's open (--fill next-open, default) or at that close (--fill close). An open position is closed at the last close (exit reason end-of-data).

Times follow one rule: a date is that trading day in the exchange's time zone (--end and --plot-end include it); a time needs a zone (2024-03-04T14:30:00Z) or --tz America/New_York. Each run is stored in backtest_runs/backtest_trades unless --no-store. The summary tables go to stdout, or to stderr when stdout carries --json or a '-' output.

--grid runs every parameter combination on all cores and ranks them. Beware overfitting: the best of many backtests looks better than its future will be; use --split 0.7 to rank on the first 70% of bars and judge the winners on the remaining 30% they were not chosen on.

Examples:
  ibkrtool backtest pivot-breakout -s SPY --start 2024-01-01 --plot spy.png
  ibkrtool backtest ema-aroon -i bars.csv --tz UTC --size equity:0.5 --json
  ibkrtool backtest ema-aroon -s SPY -s QQQ --commission ib-tiered
  ibkrtool backtest pivot-breakout -s SPY --grid "pivot=3,5,8" --split 0.7
"""

Param = Annotated[Optional[list[str]], typer.Option(
    "--param", "-p", help="Strategy parameter key=value (repeatable).", show_default=False)]
Fill = Annotated[str, typer.Option("--fill", help="Fill rule: next-open | close.")]
Cash = Annotated[float, typer.Option("--cash", help="Starting cash (quote currency).")]
Size = Annotated[str, typer.Option("--size", help="fixed:SHARES | cash:AMOUNT | equity:FRACTION.")]
Commission = Annotated[str, typer.Option(
    "--commission", help="ib-fixed | ib-tiered | ib-forex | none | custom:KEY=VALUE,… with keys per_share, pct "
                         "(percent) and min; auto = ib-forex for pairs, ib-fixed for stocks.")]
Slippage = Annotated[str, typer.Option("--slippage", help="Adverse fill move per order: 1tick, 2ticks or 2bps.")]
Tick = Annotated[Optional[float], typer.Option(
    "--tick", help="Price increment for tick slippage (default: the contract's).", show_default=False)]
Rth = Annotated[bool, typer.Option("--rth/--all-hours", help="Bars cover regular hours (annualising, gap check).")]
Gaps = Annotated[str, typer.Option("--gaps", help="Missing bars inside a session: warn | refuse.")]
Plot = Annotated[Optional[str], typer.Option(
    "--plot", help="Write a chart: .png, .svg, .pdf or .html (NAME-SYMBOL.png for several symbols).",
    show_default=False)]
PlotStart = Annotated[Optional[str], typer.Option(
    "--plot-start", help="Chart window start (zoom): a trading day or an instant with a zone.", show_default=False)]
PlotEnd = Annotated[Optional[str], typer.Option(
    "--plot-end", help="Chart window end (zoom): a trading day, inclusive, or an instant.", show_default=False)]
Grid = Annotated[Optional[str], typer.Option(
    "--grid", help="Sweep: 'pivot=3,5,8 ma_period=20,50' (all combinations).", show_default=False)]
Sort = Annotated[str, typer.Option("--sort", help="Sweep ranking: sharpe, sortino, return, cagr, drawdown, ...")]
Split = Annotated[Optional[float], typer.Option(
    "--split", help="In-sample fraction, e.g. 0.7; the rest is out-of-sample.", show_default=False)]
Workers = Annotated[Optional[int], typer.Option(
    "--workers", help="Sweep processes (default: all cores).", show_default=False)]
Trades = Annotated[Optional[str], typer.Option(
    "--trades", help="Write the trades as CSV to FILE or '-' (stdout).", show_default=False)]
Equity = Annotated[Optional[str], typer.Option(
    "--equity", help="Write the equity curve as CSV to FILE or '-' (stdout).", show_default=False)]
Store = Annotated[bool, typer.Option("--store/--no-store", help="Record the runs in the backtest_runs and backtest_trades tables.")]


def register(app: typer.Typer) -> None:
    app.command("backtest", help=HELP, no_args_is_help=True)(backtest)


def backtest(
    ctx: typer.Context,
    strategy: Annotated[str, typer.Argument(help="Strategy name, e.g. pivot-breakout or ema-aroon.")],
    symbol: Symbols = None,
    bar_size: BarSizeOpt = "5m",
    what_to_show: WhatToShowOpt = None,
    start: Start = None,
    end: End = None,
    tz: Tz = None,
    input_file: InputFile = None,
    param: Param = None,
    fill: Fill = "next-open",
    cash: Cash = 100_000.0,
    size: Size = "fixed:100",
    commission: Commission = "auto",
    slippage: Slippage = "0",
    tick: Tick = None,
    rth: Rth = True,
    gaps: Gaps = "warn",
    plot: Plot = None,
    plot_start: PlotStart = None,
    plot_end: PlotEnd = None,
    grid: Grid = None,
    sort: Sort = "sharpe",
    split: Split = None,
    workers: Workers = None,
    trades: Trades = None,
    equity: Equity = None,
    json_out: Json = False,
    store: Store = True,
) -> None:
    from pathlib import Path

    from ibkrtool.app import backtest as app
    from ibkrtool.model import BarSize, Instrument, WhatToShow
    from ibkrtool.model.when import zone_named

    names = [s.strip() for item in symbol or [] for s in item.split(",") if s.strip()]
    request = app.BacktestRequest(
        strategy=strategy, instruments=[Instrument.parse(n) for n in names], params=app.parse_param_args(param or []),
        bar_size=BarSize.parse(bar_size or "5m"), what_to_show=WhatToShow.parse(what_to_show) if what_to_show else None,
        start=when(start, "--start", tz), end=when(end, "--end", tz), tz=zone_named(tz) if tz else None,
        input=input_file, fill=fill, cash=cash, size=app.parse_size(size), commission=commission,
        slippage=app.parse_slippage(slippage), tick=tick, rth=rth, gaps=gaps, split=split, store=store,
        plot=Path(plot) if plot else None, plot_start=when(plot_start, "--plot-start", tz),
        plot_end=when(plot_end, "--plot-end", tz))
    render.stdout_carries_data(_check_outputs(grid, plot, trades, equity, json_out))
    ws = workspace(ctx)
    if grid is not None:
        sweep_request = app.SweepRequest(request, app.parse_grid(grid), sort, workers)
        with render.progress(transient=True) as bar:
            tasks: dict[str, Any] = {}

            def on_progress(symbol: str, done: int, total: int) -> None:
                if symbol not in tasks:
                    tasks[symbol] = bar.add_task(f"sweep {symbol}", total=total, detail="")
                bar.update(tasks[symbol], completed=done)

            _render_sweep(app.sweep(ws, sweep_request, on_progress), json_out)
        return
    report = app.backtest(ws, request)
    _render(report)
    if trades:
        _write_csv(report.trades_frame(), trades)
    if equity:
        _write_csv(report.equity_frame(), equity)
    if json_out:
        render.print_json(report.as_json())
    report.failures.raise_if_any(len(request.targets()))


def _check_outputs(grid: str | None, plot: str | None, trades: str | None, equity: str | None,
                   json_out: bool) -> bool:
    """Refuse outputs that cannot go together; whether stdout carries data (then tables go to stderr)."""
    if grid is not None and (plot or trades or equity):
        raise usage("--plot, --trades and --equity describe one run; run the chosen combination without --grid")
    to_stdout = [name for name, on in (("--json", json_out), ("--trades -", trades == "-"),
                                       ("--equity -", equity == "-")) if on]
    if len(to_stdout) > 1:
        raise usage(f"{' and '.join(to_stdout)} would both write to stdout; send one of them to a file")
    return bool(to_stdout)


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


def _render(report: BacktestReport) -> None:
    for path in report.charts:
        render.say(f"chart written to {path}")
    for run in report.runs:
        m, hold = run.metrics, run.metrics["buy_and_hold"]
        rows = [{"metric": label, "strategy": _fmt(m.get(k)), "buy & hold": _fmt(hold.get(k)) if k in hold else ""}
                for k, label in SUMMARY_ROWS]
        for name, seg in run.report.segments.items():
            rows.append({"metric": f"{name.replace('_', '-')} return % / Sharpe",
                         "strategy": f"{_fmt(seg['total_return_pct'])} / {_fmt(seg['sharpe'])}",
                         "buy & hold": f"{_fmt(seg['buy_and_hold']['total_return_pct'])}"})
        config = run.config
        title = (f"{run.report.strategy} {run.report.params} on {run.symbol} {run.report.market.bar_size} "
                 f"{m['start'][:10]}→{m['end'][:10]} · fill {config.fill} · {config.commission.name} · "
                 f"slippage {config.slippage}" + (f" · run {run.run_id}" if run.run_id else ""))
        render.table(rows, ["metric", "strategy", "buy & hold"], title=title)
        _warn(run.warnings)
    if len(report.runs) > 1:
        render.table(report.combined(), ["symbol", "return %", "sharpe", "max dd %", "trades", "net P&L"],
                     title="combined (each symbol its own starting cash)")


def _render_sweep(report: SweepReport, json_out: bool) -> None:
    from rich.console import Console

    _warn(report.warnings)
    rows = report.rows()
    if json_out:
        render.print_json(rows)
    else:
        for row in rows:
            for k, v in row.items():
                if isinstance(v, float):
                    row[k] = round(v, 4)
        columns = list(report.table.columns)
        ranked_on = "in-sample " if report.split else ""
        wide = Console(soft_wrap=True, width=max(120, 14 * len(columns)))  # a ranking is read across
        render.print_table(rows, columns, title=f"{report.combinations} combinations ranked by {ranked_on}"
                           f"{report.sort}", console=wide)
    render.say("note: the best of many backtests overstates what to expect; "
               + ("check the out-of-sample columns." if report.split else "rerun with --split 0.7 to hold data out."))


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        render.say(f"warning: {warning}")


def _write_csv(frame: Any, target: str) -> None:
    import sys
    from pathlib import Path

    if target == "-":
        frame.to_csv(sys.stdout, index=False)
        sys.stdout.flush()
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(target, index=False)
