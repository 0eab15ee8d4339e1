"""``ibkrtool sim``: run the simulated IB gateway in the foreground (TWS wire protocol on loopback)."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from ibkrtool.cli import render
from ibkrtool.cli.options import state
from ibkrtool.errors import InputError
from ibkrtool.model.instant import parse_instant
from ibkrtool.runtime import steady_gc

ORDER = 90
log = logging.getLogger("ibkrtool.sim")


def parse_start(text: str | None) -> datetime | None:
    """``--start`` as tz-aware UTC (``2026-11-20T14:30:00Z``); None means now. Raises InputError."""
    return parse_instant(text, "--start") if text else None

def _load_replay(source: str | None, symbol: str | None, bar_size: str) -> Any:
    """A ReplaySource from a bars CSV (``SPY_1m.csv``) or an ibkrtool database URL. Raises InputError."""
    if not source:
        return None
    from ibkrtool.sim.contracts import find_contracts
    from ibkrtool.sim.replay import ReplaySource

    is_url = "://" in source
    stem = Path(source).stem if not is_url else ""
    symbol = (symbol or stem.split("_")[0]).upper()
    if not symbol:
        raise InputError("--replay: name the instrument with --replay-symbol SPY")
    try:
        if not is_url:
            return ReplaySource.from_csv(source, symbol, bar_size)
        contracts = find_contracts(symbol, "", "", "") or find_contracts("", "", "", "", local_symbol=symbol)
        if not contracts:
            raise InputError(f"--replay-symbol {symbol}: the sim does not know this instrument")
        return ReplaySource.from_database(source, symbol, contracts[0].conid, bar_size)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"--replay {source}: cannot read bars ({exc}); expected columns ts,open,high,low,close,"
                         "volume") from None


async def _run(server: Any, host: str, port: int) -> dict[str, Any]:
    from ibkrtool.sim.server import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    return await serve(server, host, port, stop)


def _print_summary(summary: dict[str, Any]) -> None:
    rows = [{"request": k, "count": v} for k, v in sorted(summary["requests"].items())]
    if rows:
        render.print_table(rows, ["request", "count"], title="sim requests", console=render.stderr)
    render.stderr.print(f"sim stopped: {summary['requests_total']} requests, {summary['pacing_violations']} pacing "
                        f"violations, {summary['orders']} orders, {summary['executions']} executions",
                        highlight=False)


def register(app: typer.Typer) -> None:
    @app.command("sim")
    def sim(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless you say so)."),
        port: int = typer.Option(7497, "--port", help="TCP port (TWS paper default 7497; 0 = any free port)."),
        seed: int = typer.Option(1, "--seed", help="Seed of the deterministic market."),
        start: str = typer.Option(None, "--start", help="Sim start time, e.g. 2026-11-20T14:30:00Z (default now)."),
        speed: float = typer.Option(1.0, "--speed", help="Sim seconds per real second (60 = a minute per second)."),
        pacing_scale: float = typer.Option(1.0, "--pacing-scale", help="Scale IB's pacing windows (real time)."),
        account: str = typer.Option("DU1234567", "--account", help="Paper account id to report."),
        faults: str = typer.Option(None, "--faults", help="Faults to inject, e.g. 'drop-at=…,delay-ms=50,no-data=SPY' "
                                   "(see ibkrtool/sim/faults.py)."),
        replay: str = typer.Option(None, "--replay", help="Serve recorded bars from a CSV (SPY_1m.csv) or db URL."),
        replay_symbol: str = typer.Option(None, "--replay-symbol", help="Instrument of --replay (default: file "
                                          "name before '_')."),
        replay_bar_size: str = typer.Option("1m", "--replay-bar-size", help="Bar size of the recorded bars."),
    ) -> None:
        """Run a simulated IB gateway that ib_async and ib_insync connect to like TWS; it logs each request on stderr and stops on Ctrl-C or SIGTERM (exit 0) with a summary of requests, pacing violations and orders.

        Examples:

            ibkrtool sim --port 7497 --start 2026-11-20T15:00:00Z
            ibkrtool sim --port 4002 --speed 60 --pacing-scale 0.01
            ibkrtool sim --replay SPY_1m.csv --faults drop-at=2026-11-20T15:05:00Z
        """
        from ibkrtool.sim.server import build_server

        if speed <= 0:
            raise InputError(f"--speed {speed}: must be > 0")
        if pacing_scale <= 0:
            raise InputError(f"--pacing-scale {pacing_scale}: must be > 0")
        if state(ctx).verbosity >= 0:
            log.setLevel(logging.INFO if state(ctx).verbosity < 2 else logging.DEBUG)
        source = _load_replay(replay, replay_symbol, replay_bar_size)
        server = build_server(seed, parse_start(start), speed, pacing_scale, account, faults, source)
        with steady_gc():
            summary = asyncio.run(_run(server, host, port))
        _print_summary(summary)
