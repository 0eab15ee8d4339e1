"""``ibkrtool sim``: run the simulated IB gateway in the foreground (TWS wire protocol on loopback)."""

from __future__ import annotations

from typing import Any

import typer

from ibkrtool.cli import options as o
from ibkrtool.cli import render


def register(app: typer.Typer) -> None:
    app.command("sim")(sim)


def sim(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless you say so)."),
    port: int = typer.Option(7497, "--port", help="TCP port (TWS paper default 7497; 0 = any free port)."),
    seed: int = typer.Option(1, "--seed", help="Seed of the deterministic market."),
    start: str = typer.Option(None, "--start", help="Sim start time with a zone, e.g. 2026-11-20T14:30:00Z (default now).", show_default=False),
    speed: float = typer.Option(1.0, "--speed", help="Sim seconds per real second (60 = a minute per second)."),
    pacing_scale: float = typer.Option(1.0, "--pacing-scale", help="Scale IB's pacing windows (real time)."),
    account: str = typer.Option("DU1234567", "--account", help="Account id to report (DU… is a paper account; any other id behaves as a live one)."),
    faults: str = typer.Option(None, "--faults", help="Faults to inject, e.g. 'drop-at=…,delay-ms=50,no-data=SPY' (see ibkrtool/sim/faults.py).", show_default=False),
    replay: str = typer.Option(None, "--replay", help="Serve recorded bars from a CSV (SPY_1m.csv) or db URL.", show_default=False),
    replay_symbol: str = typer.Option(None, "--replay-symbol", help="Instrument of --replay (default: file name before '_').", show_default=False),
    replay_bar_size: str = typer.Option("1m", "--replay-bar-size", help="Bar size of the recorded bars."),
) -> None:
    """Run a simulated IB gateway that ib_async and ib_insync connect to like TWS; it logs each request on stderr and stops on Ctrl-C or SIGTERM (exit 0) with a summary of requests, pacing violations and orders.

    Examples:

        ibkrtool sim --port 7497 --start 2026-11-20T15:00:00Z
        ibkrtool sim --port 4002 --speed 60 --pacing-scale 0.01
        ibkrtool sim --replay SPY_1m.csv --faults drop-at=2026-11-20T15:05:00Z
    """
    import logging

    from ibkrtool.app.sim import SimRequest, serve_sim

    moment = o.when(start, "--start", None)
    if moment is not None and moment.instant is None:
        raise o.usage(f"--start {start}: give a time with a zone, e.g. {start}T14:30:00Z")
    verbosity = o.state(ctx).verbosity
    if verbosity >= 0:
        logging.getLogger("ibkrtool.sim").setLevel(logging.INFO if verbosity < 2 else logging.DEBUG)
    request = SimRequest(host, port, seed, moment.instant if moment else None, speed, pacing_scale, account, faults,
                         replay, replay_symbol, replay_bar_size)
    _summary(serve_sim(request, _stop_on_signals))


def _stop_on_signals(loop: Any, stop: Any) -> None:
    """Ctrl-C and SIGTERM are how a server is told to stop: a clean stop, exit 0."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def _summary(summary: dict[str, Any]) -> None:
    rows = [{"request": k, "count": v} for k, v in sorted(summary["requests"].items())]
    if rows:
        render.print_table(rows, ["request", "count"], title="sim requests", console=render.stderr)
    render.say(f"sim stopped: {summary['requests_total']} requests, {summary['pacing_violations']} pacing "
               f"violations, {summary['orders']} orders, {summary['executions']} executions")
