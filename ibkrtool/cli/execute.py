"""``ibkrtool execute``: a strategy run's target positions → orders, simulated or through IB, never twice."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from ibkrtool.cli.options import settings
from ibkrtool.cli.render import print_table, stderr
from ibkrtool.errors import InputError
from ibkrtool.model import BarSize, Instrument

ORDER = 70

HELP = """Execute a strategy run's target positions: one market order per change of target.

Input: --run ID (a stored run), or --strategy NAME --symbol S (its latest stored run), or --positions FILE|-
(per-bar `ts,position[,signal]` as `ibkrtool strategy -o` writes, or the round trips `strategy --trades` writes;
give --symbol). --quantity N is the order size per unit of target (shares; base units for forex).

Modes (exactly one; the default is ALWAYS --simulate — orders reach IB only with an explicit --paper or --live,
whatever gateway is configured):
  --simulate  fill on the bars by --fill (next-open: the next bar's open, as the backtest; close: the signal bar's
              close) with IB's commission model (--commission, ib-fixed by default, ib-forex for pairs). Bars come
              from the store (the run's series, or --symbol/--bar-size) or --bars FILE.
  --paper     connect to TWS/Gateway (--ib-port ...; NOT read-only), refuse unless the account is a paper account
              (id DU...), send each intent not yet placed, in signal order, as a market order NOW, wait for its
              fill (--timeout), record IB's execution and commission. --latest instead sends ONE order bringing
              the account's current position to the run's final target.
  --live      a real-money account: needs --yes-i-mean-real-money and --max-order-value N.

Never twice: an intent whose orderRef (<run id>:<signal bar>) already has executions (in the store, or in IB's
executions of today) or a working order is skipped and listed; a rerun places 0 orders.
Rejected orders (e.g. IB 201) are reported with IB's reason; --on-reject continue (default) goes on, stop exits 6.
Fills go to the executions table and, with --log FILE|-, to an execution log CSV
(time,symbol,side,quantity,price,commission,order_ref,mode).

Examples:
  ibkrtool execute --strategy pivot-breakout --symbol SPY --quantity 100 --log execution_log.csv
  ibkrtool execute --positions dt_positions.csv --symbol SPY --fill close --quantity 100
  ibkrtool --ib-port 4002 execute --run st-1234 --paper --quantity 100 --latest
"""


def register(app: typer.Typer) -> None:
    app.command("execute", help=HELP, no_args_is_help=True)(execute)


def execute(
    ctx: typer.Context,
    run: str = typer.Option(None, "--run", help="Stored strategy run id."),
    strategy: str = typer.Option(None, "--strategy", help="With --symbol: the latest stored run of this strategy."),
    positions: str = typer.Option(None, "--positions", help="Positions CSV (per-bar or round trips); '-' = stdin."),
    symbol: str = typer.Option(None, "--symbol", "-s", help="Instrument: SPY, EUR.USD."),
    quantity: float = typer.Option(1.0, "--quantity", "-n", help="Shares (base units) per unit of target."),
    simulate: bool = typer.Option(False, "--simulate", help="Simulated fills (the default)."),
    paper: bool = typer.Option(False, "--paper", help="Send the orders to an IB paper account."),
    live: bool = typer.Option(False, "--live", help="Send the orders to a LIVE account (see the flags below)."),
    confirm_real: bool = typer.Option(False, "--yes-i-mean-real-money", help="Confirm --live."),
    max_order_value: float = typer.Option(None, "--max-order-value", help="Refuse orders worth more (required live)."),
    fill: str = typer.Option("next-open", "--fill", help="Simulated fills: next-open | close."),
    commission: str = typer.Option(None, "--commission", help="ib-fixed | ib-tiered | ib-forex | none | custom:..."),
    bar_size: str = typer.Option(None, "--bar-size", "-b", help="Bars for simulated fills (default: the run's, 5m)."),
    bars_file: str = typer.Option(None, "--bars", help="Bars CSV for simulated fills instead of the store."),
    latest: bool = typer.Option(False, "--latest", help="Paper/live: one order to the run's final target."),
    on_reject: str = typer.Option("continue", "--on-reject", help="continue | stop (exit 6) after a rejection."),
    account: str = typer.Option("", "--account", help="IB account id (when the login manages several)."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for each order to fill."),
    log_file: str = typer.Option(None, "--log", help="Write the execution log CSV to FILE or '-' (stdout)."),
) -> None:
    from ibkrtool.execution import executor

    if sum((simulate, paper, live)) > 1:
        raise InputError("choose one of --simulate, --paper, --live")
    if on_reject not in ("continue", "stop"):
        raise InputError("--on-reject must be continue or stop")
    mode = "paper" if paper else "live" if live else "simulate"
    executor.check_live_flags(mode, confirm_real, max_order_value)
    engine = _engine(ctx)
    src = _source(engine, run, strategy, positions, symbol, bar_size)
    instrument = Instrument.parse(src.symbol)
    plan = executor.ExecutePlan(
        symbol=instrument.display, run_id=src.run_id, targets=src.targets, quantity=quantity, mode=mode,
        lots=_lots(instrument), fill=fill, commission=_commission(commission, instrument),
        bar_s=BarSize.parse(src.bar_size).seconds, latest=latest, on_reject=on_reject,
        max_order_value=max_order_value, timeout_s=timeout)
    if mode == "simulate":
        bars = _bars(engine, src, bars_file, instrument)
        conid = src.conid if src.conid is not None else _placeholder(instrument)
        result = executor.execute_simulated(plan, bars, engine, conid)
    else:
        result = asyncio.run(_through_ib(ctx, plan, instrument, engine, account, mode, confirm_real))
    _report(result, log_file)


def _engine(ctx: typer.Context) -> Any:
    from ibkrtool.store.engine import open_engine
    from ibkrtool.store.migrate import init_db

    engine = open_engine(settings(ctx).db_url)
    init_db(engine)
    return engine


def _source(engine: Any, run: str | None, strategy: str | None, positions: str | None, symbol: str | None,
            bar_size: str | None) -> Any:
    from ibkrtool.execution.sources import RunTargets, latest_run_id, load_run_targets
    from ibkrtool.execution.targets import read_positions_csv

    if sum(x is not None for x in (run, strategy, positions)) != 1:
        raise InputError("give exactly one of --run ID, --strategy NAME --symbol S, --positions FILE")
    if positions is not None:
        if not symbol:
            raise InputError("--positions needs --symbol (the instrument the positions are for)")
        name = "stdin" if positions == "-" else positions.rsplit("/", 1)[-1]
        return RunTargets(f"csv-{name}", Instrument.parse(symbol).display, str(BarSize.parse(bar_size or "5m")),
                          Instrument.parse(symbol).default_what_to_show, None, read_positions_csv(positions))
    if strategy is not None:
        if not symbol:
            raise InputError("--strategy needs --symbol")
        run = latest_run_id(engine, strategy, Instrument.parse(symbol).display)
    return load_run_targets(engine, run)


def _lots(instrument: Instrument) -> Any:
    from ibkrtool.execution.planner import FOREX_LOTS, STOCK_LOTS

    return FOREX_LOTS if instrument.is_forex else STOCK_LOTS


def _commission(text: str | None, instrument: Instrument) -> Any:
    from ibkrtool.backtest.costs import parse_commission

    default = "ib-forex" if instrument.is_forex else "ib-fixed"
    return parse_commission(text or default, instrument.symbol, instrument.currency)


def _placeholder(instrument: Instrument) -> int:
    from ibkrtool.store.contracts import placeholder_conid

    return placeholder_conid(instrument.display)


def _bars(engine: Any, src: Any, bars_file: str | None, instrument: Instrument) -> Any:
    if bars_file is not None:
        from ibkrtool.data.sources import load_from_csv

        return load_from_csv(bars_file, None, None, None).bars
    from ibkrtool.execution.sources import bars_for
    from ibkrtool.store.contracts import find_contract

    conid = src.conid
    if conid is None:
        found = find_contract(engine, instrument.display)
        conid = int(found.conid) if found is not None else None
    return bars_for(engine, conid, src.bar_size, src.what_to_show, src.targets)


async def _through_ib(ctx: typer.Context, plan: Any, instrument: Instrument, engine: Any, account: str, mode: str,
                      confirm_real: bool) -> Any:
    from ibkrtool.execution.executor import check_account, execute_through_ib
    from ibkrtool.ib.gateway import open_gateway

    async with open_gateway(settings(ctx), readonly=False) as gateway:
        chosen = check_account(gateway.managed_accounts(), account, mode, confirm_real)
        stderr.print(f"account {chosen} ({await gateway.account_type(chosen) or 'type unknown'}), mode {mode}")
        contract = await gateway.qualify(instrument, engine)
        return await execute_through_ib(gateway, plan, contract, chosen, engine, instrument.default_what_to_show)


def _report(result: Any, log_file: str | None) -> None:
    from ibkrtool.execution.report import write_execution_log

    if log_file is not None:
        write_execution_log(result.fills, log_file)
    for intent in result.already_placed:
        stderr.print(f"skipped {intent.order_ref}: already placed ({intent.side.value} {intent.quantity:g})")
    for ref, why in result.skipped:
        stderr.print(f"skipped {ref}: {why}")
    for intent, code, text in result.rejected:
        stderr.print(f"[red]rejected[/] {intent.order_ref} {intent.side.value} {intent.quantity:g}: "
                     f"IB {code if code is not None else '-'} {text}", highlight=False)
    fees = sum(f.commission for f in result.fills)
    rows = [{"item": "mode", "value": f"{result.mode} (account {result.account})"},
            {"item": "intents", "value": str(len(result.intents))},
            {"item": "orders placed", "value": str(result.placed)},
            {"item": "already placed (skipped)", "value": str(len(result.already_placed))},
            {"item": "rejected", "value": str(len(result.rejected))},
            {"item": "fills", "value": f"{len(result.fills)} (commission {fees:,.2f})"}]
    print_table(rows, ["item", "value"], title="execute", console=stderr)
