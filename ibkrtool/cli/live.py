"""``ibkrtool live``: trade a strategy on live bars through IB (paper by default), decisions on closed bars only."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime
from typing import Any

import typer

from ibkrtool.cli.options import settings, state
from ibkrtool.cli.render import print_table, stderr
from ibkrtool.errors import InputError
from ibkrtool.model import BarSize, Instrument
from ibkrtool.model.instant import parse_instant
from ibkrtool.runtime import steady_gc

ORDER = 80

HELP = """Trade strategy NAME live on --symbol through TWS/IB Gateway (--ib-port ...), paper account by default.

Start-up: fetch --warmup-days (2) of bars of --bar-size (5m) so indicators are ready, reconcile with IB (position,
working orders, today's executions of this run by orderRef), then evaluate the last CLOSED bar and each bar as it
closes (keepUpToDate bars; the bar still forming is never evaluated). The order for a signal on bar B carries
orderRef <run id>:<B>; the run id is live-<strategy>-<symbol>-<bar size> unless --run-id, so a restarted trader
neither re-enters a position it holds nor forgets to exit it. Before every order the position and working orders
are read from IB: no order while one is working. At start-up the trader brings the position to the strategy's
current target (market order).

Risk: --max-position, --max-order-value, --max-orders-per-day, --max-daily-loss (alert; only reducing orders
afterwards), --hours HH:MM-HH:MM (exchange time), --kill-file FILE (checked every bar: while it exists, no orders).
--flatten-on-exit closes the position when the trader stops (--duration 90s|5m|2h of real time, or --until T on
IB's clock). After a disconnect it reconnects with backoff, backfills the missed bars and evaluates the last closed
bar once. Every decision goes to stderr and, with --decisions FILE, to a CSV; fills to the executions table, bars to
the bars table. Paper accounts (DU...) only, unless --live --yes-i-mean-real-money --max-order-value N.

Examples:
  ibkrtool --ib-port 4002 live ema-aroon --symbol SPY --quantity 100 --duration 6h --kill-file /tmp/stop
  ibkrtool --ib-port 4002 live pivot-breakout --symbol SPY -p pivot=5 --max-daily-loss 500 --flatten-on-exit
"""


def register(app: typer.Typer) -> None:
    app.command("live", help=HELP, no_args_is_help=True)(live)


def live(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Strategy name (see `ibkrtool strategy --list`)."),
    symbol: str = typer.Option(..., "--symbol", "-s", help="Instrument: SPY, EUR.USD."),
    bar_size: str = typer.Option("5m", "--bar-size", "-b", help="Bar size the strategy runs on."),
    param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter key=value (repeatable)."),
    quantity: float = typer.Option(1.0, "--quantity", "-n", help="Shares (base units) per unit of target."),
    warmup_days: int = typer.Option(2, "--warmup-days", help="Days of bars fetched before trading."),
    rth: bool = typer.Option(True, "--rth/--all-hours", help="Regular trading hours bars only (stocks)."),
    what_to_show: str = typer.Option(None, "--what-to-show", help="TRADES (stocks) / MIDPOINT (forex) by default."),
    max_position: float = typer.Option(None, "--max-position", help="Largest absolute position (shares/units)."),
    max_order_value: float = typer.Option(None, "--max-order-value", help="Largest order value (quote currency)."),
    max_orders: int = typer.Option(None, "--max-orders-per-day", help="Orders per day that may open/grow."),
    max_loss: float = typer.Option(None, "--max-daily-loss", help="Stop new entries when today's loss reaches it."),
    hours: str = typer.Option(None, "--hours", help="Trading window HH:MM-HH:MM, exchange time."),
    kill_file: str = typer.Option(None, "--kill-file", help="While this file exists no order is sent."),
    flatten: bool = typer.Option(False, "--flatten-on-exit", help="Close the position when stopping."),
    duration: str = typer.Option(None, "--duration", help="Stop after this much real time: 90s, 5m, 2h."),
    until: str = typer.Option(None, "--until", help="Stop at this instant on IB's clock (ISO 8601 with zone)."),
    live_account: bool = typer.Option(False, "--live", help="Allow a LIVE (real money) account."),
    confirm_real: bool = typer.Option(False, "--yes-i-mean-real-money", help="Confirm --live."),
    account: str = typer.Option("", "--account", help="IB account id (when the login manages several)."),
    run_id: str = typer.Option("", "--run-id", help="Order-ref prefix (default live-<strategy>-<symbol>-<size>)."),
    decisions: str = typer.Option(None, "--decisions", help="Append every decision to this CSV."),
) -> None:
    from ibkrtool.execution.live import LiveConfig, run_live
    from ibkrtool.execution.planner import FOREX_LOTS, STOCK_LOTS
    from ibkrtool.execution.risk import RiskLimits, parse_hours
    from ibkrtool.ib.gateway import open_gateway
    from ibkrtool.strategies import get_strategy, parse_param_args, parse_params

    strat = get_strategy(name)
    instrument = Instrument.parse(symbol)
    limits = RiskLimits(max_position, max_order_value, max_orders, max_loss, parse_hours(hours))
    config = LiveConfig(
        strategy=name, params=parse_params(strat, parse_param_args(param)), symbol=instrument.display,
        quantity=quantity, bar_size=BarSize.parse(bar_size), run_id=run_id, warmup_days=warmup_days,
        what_to_show=what_to_show or instrument.default_what_to_show, rth=rth and not instrument.is_forex,
        limits=limits, kill_file=kill_file, flatten_on_exit=flatten, duration_s=parse_duration(duration),
        until=_instant(until), mode="live" if live_account else "paper", real_money_confirmed=confirm_real,
        account=account, lots=FOREX_LOTS if instrument.is_forex else STOCK_LOTS).checked()
    if state(ctx).verbosity >= 0:
        logging.getLogger("ibkrtool.live").setLevel(logging.INFO)
    engine = _engine(ctx)
    async def trade(on_status: Any) -> Any:
        async with open_gateway(settings(ctx), readonly=False) as gateway:
            return await run_live(gateway, config, engine, decisions, on_status)

    with stderr.status("live: connecting…") as status, steady_gc():
        final, log = asyncio.run(trade(lambda s: status.update(_status(s))))
    _summary(config, final, log)


def parse_duration(text: str | None) -> float | None:
    """``90``/``90s``/``5m``/``2h`` → seconds; None when not given. Raises ``InputError``."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m:
        raise InputError(f"--duration {text!r}: write e.g. 90s, 5m or 2h")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[m[2]]


def _instant(text: str | None) -> datetime | None:
    return parse_instant(text, "--until") if text else None

def _engine(ctx: typer.Context) -> Any:
    from ibkrtool.store.engine import open_engine
    from ibkrtool.store.migrate import init_db

    engine = open_engine(settings(ctx).db_url)
    init_db(engine)
    return engine


def _status(s: Any) -> str:
    bar = f"{s.last_bar:%Y-%m-%d %H:%M}Z" if s.last_bar else "-"
    halted = f"  [red]{s.halted}[/]" if s.halted else ""
    return (f"live: last bar {bar} close {s.last_close:g}  position {s.position:g}  working {s.working}  "
            f"orders today {s.orders_today}  P&L {s.pnl:,.2f}{halted}")


def _summary(config: Any, final: Any, log: Any) -> None:
    rows = [{"item": "run id", "value": config.run_id},
            {"item": "stopped", "value": final.stop_reason},
            {"item": "last bar", "value": f"{final.last_bar:%Y-%m-%d %H:%M}Z" if final.last_bar else "-"},
            {"item": "position", "value": f"{final.position:g}"},
            {"item": "orders / fills", "value": f"{len(log.of_kind('order'))} / {len(log.of_kind('fill'))}"},
            {"item": "skips / risk blocks", "value": f"{len(log.of_kind('skip'))} / {len(log.of_kind('risk'))}"},
            {"item": "reconnects", "value": str(final.reconnects)},
            {"item": "P&L today", "value": f"{final.pnl:,.2f}"}]
    print_table(rows, ["item", "value"], title="live", console=stderr)
