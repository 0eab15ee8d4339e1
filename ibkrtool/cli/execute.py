"""``ibkrtool execute``: a strategy run's target positions → orders, simulated or through IB, never twice."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ibkrtool.cli import options as o
from ibkrtool.cli import render

if TYPE_CHECKING:
    from ibkrtool.app.execute import ExecuteReport, ExecuteReports


HELP = """Execute a strategy run's target positions: simulated fills per change of target, or through IB one order to the latest target.

Input: --run ID (a stored run), or --strategy NAME --symbol S (its latest stored run), or --positions FILE|- (per-bar positions as 'ibkrtool strategy -o' writes: a time column ts, timestamp, datetime or date + time, and position (or a numeric signal); or the round trips 'strategy --trades' writes). A positions file with a symbol column is executed per instrument in it, each its own run (--symbol is then optional, and must match the file); without one, give --symbol. A positions file's run id is csv- plus a hash of its content and the instrument (not its name: a copy under another name is the same run). --quantity N is the order size per unit of target (shares; base units for forex). Times in --positions and --bars files need a zone (2024-03-04T14:30:00Z), or --tz for a file written without one.

Modes (exactly one; the default is ALWAYS --simulate — orders reach IB only with an explicit --paper or --live, whatever gateway is configured):
  --simulate  fill on the bars by --fill (next-open: the next bar's open, as the backtest; close: the signal bar's close) with IB's commission model (--commission, ib-fixed by default, ib-forex for pairs). Bars come from the store (the run's series, or --symbol/--bar-size) or --bars FILE.
  --paper     connect to TWS/Gateway (--ib-port ...; NOT read-only), refuse unless the account is a paper account (id DU...), and bring the account's CURRENT position in the instrument (plus its working orders) to the run's LATEST target: one market order, or none when it is already there — what a trader means by "execute". The order carries the key of the run's last signal, waits for its fill (--timeout), and IB's execution and commission are recorded. --latest is accepted for scripts and changes nothing (it is the default).
  --live      a real-money account: needs --yes-i-mean-real-money and --max-order-value N; same rules as --paper.

History is --simulate's job. Against IB, --replay sends each signal not yet placed, in signal order, as a market order NOW — and refuses them all (exit 3, nothing sent) when any is older than --max-signal-age (default: one bar of the run's bar size; 90s, 5m, 2h, 1d), with a line saying how old the oldest is. A signal's age runs from the close of its bar to now on the gateway's clock (reqCurrentTime). To send week-old signals on purpose: --replay --max-signal-age 8d.

Once, even when run twice at once: orders for one account and instrument are placed by one process at a time (a lock in the database: a PostgreSQL advisory lock, or a lock row in SQLite taken over when its process is gone), and before EACH order IB's position, working orders and today's executions are read again; a second execute started at the same time waits, then sees the first one's order and position and sends nothing.

Never twice: every order carries an idempotency key as its orderRef, <m><conid>-<digest>-<yyyymmddhhmmss> (at most 37 characters), e.g. p756733-3f9a0c1e2b-20240304143500: m is the mode (s simulate, p paper, l live), conid IB's contract id (x for a stand-in), digest 10 hex digits of a hash of mode, account, conid and run id, then the signal bar's start in UTC. An intent whose key already has executions (in the store, or in IB's executions of today) or a working order is skipped and listed; a rerun places 0 orders. Simulated fills never block paper or live orders, paper never live, one instrument never another. Keys of earlier versions (<run id>:<signal bar>) still count as placed for executions of the same mode, account and instrument. Rejected orders (e.g. IB 201) are reported with IB's reason; --on-reject continue (default) goes on, stop exits 6.

Fills go to the executions table and, with --log FILE, are appended to an execution log CSV (time,symbol,side,quantity,price,commission,order_ref,mode; the header only when the file is new or empty); --log - writes the log to stdout. The summary table goes to stdout, or to stderr when stdout carries --json (the summary as JSON: mode, account, intents, placed, already placed, rejected, fills with commission) or --log -.

Examples:

    ibkrtool execute --strategy pivot-breakout --symbol SPY --quantity 100 --log execution_log.csv
    ibkrtool execute --positions dt_positions.csv --symbol SPY --fill close --quantity 100
    ibkrtool execute --positions positions.csv -s SPY --bars bars.csv --tz America/New_York --json
    ibkrtool execute --positions signals.csv --tz America/New_York --paper --quantity 100
    ibkrtool --ib-port 4002 execute --run st-1234 --paper --quantity 100
    ibkrtool --ib-port 4002 execute --strategy pivot-breakout --symbol QQQ --paper --quantity 10 --replay
    ibkrtool --ib-port 4002 execute --positions signals.csv -s SPY --paper --replay --max-signal-age 8d
"""


def register(app: typer.Typer) -> None:
    app.command("execute", help=HELP, no_args_is_help=True)(execute)


def execute(
    ctx: typer.Context,
    run: str = typer.Option(None, "--run", help="Stored strategy run id.", show_default=False),
    strategy: str = typer.Option(None, "--strategy", help="With --symbol: the latest stored run of this strategy.", show_default=False),
    positions: str = typer.Option(None, "--positions", help="Positions CSV (per-bar or round trips, optional symbol column); '-' = stdin.", show_default=False),
    symbol: o.Symbol = None,
    quantity: float = typer.Option(1.0, "--quantity", "-n", help="Shares (base units) per unit of target."),
    simulate: bool = typer.Option(False, "--simulate", help="Simulated fills (the default)."),
    paper: bool = typer.Option(False, "--paper", help="Send the orders to an IB paper account."),
    live: bool = typer.Option(False, "--live", help="Send the orders to a LIVE account (see the flags below)."),
    confirm_real: bool = typer.Option(False, "--yes-i-mean-real-money", help="Confirm --live."),
    max_order_value: float = typer.Option(None, "--max-order-value", help="Refuse orders worth more (required live).", show_default=False),
    fill: str = typer.Option("next-open", "--fill", help="Simulated fills: next-open | close."),
    commission: str = typer.Option(None, "--commission", help="ib-fixed | ib-tiered | ib-forex | none | custom:...", show_default=False),
    bar_size: o.BarSizeOpt = None,
    bars_file: str = typer.Option(None, "--bars", help="Bars CSV for simulated fills instead of the store.", show_default=False),
    tz: o.Tz = None,
    latest: bool = typer.Option(False, "--latest", help="Paper/live: one order to the run's latest target (the default; kept for scripts)."),
    replay: bool = typer.Option(False, "--replay", help="Paper/live: send each pending signal, if none is older than --max-signal-age."),
    max_signal_age: str = typer.Option(None, "--max-signal-age", help="With --replay: refuse older signals (90s, 5m, 2h, 1d; default one bar).", show_default=False),
    on_reject: str = typer.Option("continue", "--on-reject", help="continue | stop (exit 6) after a rejection."),
    account: str = typer.Option("", "--account", help="IB account id (when the login manages several).", show_default=False),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for each order to fill."),
    log_file: str = typer.Option(None, "--log", help="Append the fills to this execution log CSV; '-' writes stdout.", show_default=False),
    as_json: o.Json = False,
) -> None:
    from ibkrtool.app.execute import ExecuteRequest, check_execution_log, execute_each
    from ibkrtool.execution.freshness import parse_age
    from ibkrtool.model import BarSize, Instrument
    from ibkrtool.model.when import zone_named

    if sum((simulate, paper, live)) > 1:
        raise o.usage("choose one of --simulate, --paper, --live")
    if as_json and log_file == "-":
        raise o.usage("--json and --log - would both write to stdout; send the log to a file")
    name = o.one_symbol(symbol, "execute")
    request = ExecuteRequest(
        run_id=run, strategy=strategy, positions=positions, instrument=Instrument.parse(name) if name else None,
        quantity=quantity, mode="paper" if paper else "live" if live else "simulate", real_money_confirmed=confirm_real,
        max_order_value=max_order_value, fill=fill, commission=commission,
        bar_size=BarSize.parse(bar_size) if bar_size else None, bars=bars_file, tz=zone_named(tz) if tz else None,
        latest=latest, replay=replay, max_signal_age_s=parse_age(max_signal_age) if max_signal_age else None,
        on_reject=on_reject, account=account, timeout_s=timeout)
    request.check()  # bad input and missing live flags: exit 3 before the database or the gateway is touched
    if log_file is not None:
        check_execution_log(log_file)  # before any order: a log that cannot be written is refused first
    render.stdout_carries_data(as_json or log_file == "-")

    def on_account(chosen: str, account_type: str, mode: str) -> None:
        render.say(f"account {chosen} ({account_type or 'type unknown'}), mode {mode}")

    done = execute_each(o.workspace(ctx), request, on_account)
    _render(done, log_file, as_json)
    done.failures.raise_if_any(len(done.reports) + len(done.failures.items))


def _render(done: ExecuteReports, log_file: str | None, as_json: bool) -> None:
    from ibkrtool.app.execute import write_execution_log

    if log_file is not None:
        write_execution_log(done.fills, log_file)
    if as_json:
        render.print_json(done.as_dict())
    several = len(done.reports) > 1
    for report in done.reports:
        _say(report)
        render.table(_rows(report), ["item", "value"], title=f"execute {report.symbol}" if several else "execute")


def _say(report: ExecuteReport) -> None:
    for intent in report.already_placed:
        render.say(f"skipped {intent.order_ref}: already placed ({intent.side.value} {intent.quantity:g} "
                   f"{report.symbol})")
    for ref, why in report.skipped:
        render.say(f"skipped {ref} ({report.symbol}): {why}")
    for intent, code, text in report.rejected:
        render.say(f"rejected {intent.order_ref} {intent.side.value} {intent.quantity:g} {report.symbol}: "
                   f"IB {code if code is not None else '-'} {text}")


def _rows(report: ExecuteReport) -> list[dict[str, str]]:
    return [{"item": "mode", "value": f"{report.mode} (account {report.account})"},
            {"item": "symbol, run", "value": f"{report.symbol}, {report.run_id}"},
            {"item": "intents", "value": str(len(report.intents))},
            {"item": "orders placed", "value": str(report.placed)},
            {"item": "already placed (skipped)", "value": str(len(report.already_placed))},
            {"item": "rejected", "value": str(len(report.rejected))},
            {"item": "fills", "value": f"{len(report.fills)} (commission {report.commission:,.2f})"}]
