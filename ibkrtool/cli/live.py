"""``ibkrtool live``: trade a strategy on live bars through IB (paper by default), decisions on closed bars only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from ibkrtool.cli import options as o
from ibkrtool.cli import render

if TYPE_CHECKING:
    from ibkrtool.app.live import LiveReport


HELP = """Trade strategy NAME live on --symbol through TWS/IB Gateway (--ib-port ...), paper account by default.

Start-up: fetch --warmup-days (2) of bars of --bar-size (5m) so indicators are ready, reconcile with IB (position, working orders, today's executions of this run by orderRef), then evaluate the last CLOSED bar and each bar as it closes (keepUpToDate bars; the bar still forming is never evaluated). The order for a signal on bar B carries orderRef <run id>:<B>; the run id is live-<strategy>-<symbol>-<bar size> unless --run-id, so a restarted trader neither re-enters a position it holds nor forgets to exit it. Before every order the position and working orders are read from IB: no order while one is working. At start-up the trader brings the position to the strategy's current target (market order).

Risk: --max-position, --max-order-value, --max-orders-per-day, --max-daily-loss (alert; only reducing orders afterwards), --hours HH:MM-HH:MM (exchange time), --kill-file FILE (checked every bar: while it exists, no orders). --flatten-on-exit closes the position when the trader stops (--duration 90s|5m|2h of real time, or --until, an instant on IB's clock: a time with a zone, 2026-11-20T16:00:00-05:00, or a time with --tz; a bare date is refused). After a disconnect it reconnects with backoff, backfills the missed bars and evaluates the last closed bar once.

Every decision goes to stderr and, with --decisions FILE, is appended to a CSV (the header only when the file is new or empty; '-' writes stdout); fills go to the executions table, bars to the bars table. The final summary table goes to stdout, or to stderr when stdout carries --json (the summary as JSON) or --decisions -. Paper accounts (DU...) only, unless --live --yes-i-mean-real-money --max-order-value N.

Examples:

    ibkrtool --ib-port 4002 live ema-aroon --symbol SPY --quantity 100 --duration 6h --kill-file /tmp/stop
    ibkrtool --ib-port 4002 live pivot-breakout --symbol SPY -p pivot=5 --max-daily-loss 500 --flatten-on-exit
    ibkrtool --ib-port 4002 live ema-aroon -s EUR.USD -b 1m --until 2026-11-20T16:00:00 --tz America/New_York --json
    ibkrtool --ib-port 4002 live ema-aroon -s SPY --decisions decisions.csv --duration 2h
"""


def register(app: typer.Typer) -> None:
    app.command("live", help=HELP, no_args_is_help=True)(live)


def live(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Strategy name (see 'ibkrtool strategy --list')."),
    symbol: o.Symbol = None,
    bar_size: o.BarSizeOpt = None,
    param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter key=value (repeatable).", show_default=False),
    quantity: float = typer.Option(1.0, "--quantity", "-n", help="Shares (base units) per unit of target."),
    warmup_days: int = typer.Option(2, "--warmup-days", help="Days of bars fetched before trading."),
    rth: bool = typer.Option(True, "--rth/--all-hours", help="Regular trading hours bars only (stocks)."),
    what_to_show: o.WhatToShowOpt = None,
    max_position: float = typer.Option(None, "--max-position", help="Largest absolute position (shares/units).", show_default=False),
    max_order_value: float = typer.Option(None, "--max-order-value", help="Largest order value (quote currency).", show_default=False),
    max_orders: int = typer.Option(None, "--max-orders-per-day", help="Orders per day that may open/grow.", show_default=False),
    max_loss: float = typer.Option(None, "--max-daily-loss", help="Stop new entries when today's loss reaches it.", show_default=False),
    hours: str = typer.Option(None, "--hours", help="Trading window HH:MM-HH:MM, exchange time.", show_default=False),
    kill_file: str = typer.Option(None, "--kill-file", help="While this file exists no order is sent.", show_default=False),
    flatten: bool = typer.Option(False, "--flatten-on-exit", help="Close the position when stopping."),
    duration: str = typer.Option(None, "--duration", help="Stop after this much real time: 90s, 5m, 2h.", show_default=False),
    until: str = typer.Option(None, "--until", help="Stop at this instant on IB's clock (a time with a zone, or --tz).", show_default=False),
    tz: o.Tz = None,
    live_account: bool = typer.Option(False, "--live", help="Allow a LIVE (real money) account."),
    confirm_real: bool = typer.Option(False, "--yes-i-mean-real-money", help="Confirm --live."),
    account: str = typer.Option("", "--account", help="IB account id (when the login manages several).", show_default=False),
    run_id: str = typer.Option("", "--run-id", help="Order-ref prefix (default live-<strategy>-<symbol>-<size>).", show_default=False),
    decisions: str = typer.Option(None, "--decisions", help="Append every decision to this CSV; '-' writes stdout.", show_default=False),
    as_json: o.Json = False,
) -> None:
    import logging

    from ibkrtool.app.live import LiveRequest, parse_hours, parse_param_args, run_live
    from ibkrtool.model import BarSize, Instrument

    chosen = o.one_symbol(symbol, "live")
    if chosen is None:
        raise o.usage("live needs --symbol (the instrument to trade, e.g. --symbol SPY)")
    if as_json and decisions == "-":
        raise o.usage("--json and --decisions - would both write to stdout; send the decisions to a file")
    request = LiveRequest(
        strategy=name, instrument=Instrument.parse(chosen), params=parse_param_args(param), quantity=quantity,
        bar_size=BarSize.parse(bar_size or "5m"), warmup_days=warmup_days, rth=rth, what_to_show=what_to_show,
        max_position=max_position, max_order_value=max_order_value, max_orders_per_day=max_orders,
        max_daily_loss=max_loss, hours=parse_hours(hours), kill_file=kill_file, flatten_on_exit=flatten,
        duration_s=parse_duration(duration),
        until=o.when(until, "--until", tz),  # When.parse under the one time rule; a bare date is refused below
        live=live_account, real_money_confirmed=confirm_real, account=account, run_id=run_id, decisions=decisions)
    request.check()  # bad input: exit 3 before the database or the gateway is touched
    render.stdout_carries_data(as_json or decisions == "-")
    if o.state(ctx).verbosity >= 0:
        logging.getLogger("ibkrtool.live").setLevel(logging.INFO)
    with render.stderr.status("live: connecting…") as status:
        report = run_live(o.workspace(ctx), request, lambda s: status.update(_status(s)))
    _render(report, as_json)


def parse_duration(text: str | None) -> float | None:
    """``90``/``90s``/``5m``/``2h`` → seconds; None when not given. Raises ``InputError``."""
    import re

    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m:
        raise o.usage(f"--duration {text!r}: write e.g. 90s, 5m or 2h")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[m[2]]


def _status(s: Any) -> str:
    bar = f"{s.last_bar:%Y-%m-%d %H:%M}Z" if s.last_bar else "-"
    halted = f"  [red]{s.halted}[/]" if s.halted else ""
    return (f"live: last bar {bar} close {s.last_close:g}  position {s.position:g}  working {s.working}  "
            f"orders today {s.orders_today}  P&L {s.pnl:,.2f}{halted}")


def _render(report: LiveReport, as_json: bool) -> None:
    if as_json:
        render.print_json(report.as_dict())
    render.table(_rows(report), ["item", "value"], title="live")


def _rows(r: LiveReport) -> list[dict[str, str]]:
    return [{"item": "run id", "value": r.run_id},
            {"item": "stopped", "value": r.stop_reason},
            {"item": "last bar", "value": f"{r.last_bar:%Y-%m-%d %H:%M}Z" if r.last_bar else "-"},
            {"item": "position", "value": f"{r.position:g}"},
            {"item": "orders / fills", "value": f"{r.orders} / {r.fills}"},
            {"item": "skips / risk blocks", "value": f"{r.skips} / {r.risk_blocks}"},
            {"item": "reconnects", "value": str(r.reconnects)},
            {"item": "P&L today", "value": f"{r.pnl:,.2f}"}]
