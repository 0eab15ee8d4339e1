"""``ibkrtool collect``: capture 5-second and 1-second bars in real time until a duration, a deadline or Ctrl-C."""

from __future__ import annotations

import asyncio
import signal

import typer
from sqlalchemy.engine import Engine

from ibkrtool.cli import render
from ibkrtool.cli.options import settings as get_settings
from ibkrtool.data.backfill import parse_when
from ibkrtool.data.collect import CollectOptions, CollectReport, parse_duration, run_collect
from ibkrtool.errors import InputError
from ibkrtool.ib.gateway import open_gateway
from ibkrtool.runtime import steady_gc
from ibkrtool.settings import Settings
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db
from ibkrtool.store.runs import track_run

ORDER = 35


async def _run(engine: Engine, settings: Settings, options: CollectOptions) -> CollectReport:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread / Windows
            pass
    async with open_gateway(settings, readonly=True) as gateway:
        return await run_collect(gateway, engine, options, stop)


def register(app: typer.Typer) -> None:
    @app.command("collect")
    def collect(
        ctx: typer.Context,
        symbol: list[str] = typer.Option(None, "--symbol", "-s", help="SPY, AAPL@NASDAQ or EUR.USD; repeatable."),
        duration: str = typer.Option(None, "--duration", help="How long to collect: 90s, 30m, 6h."),
        until: str = typer.Option(None, "--until", help="Stop at this datetime (with zone, e.g. …T21:00:00Z)."),
        csv_path: str = typer.Option(None, "--csv", help="Also append every bar to this CSV file."),
        rth: bool = typer.Option(False, "--rth/--all-hours", help="Real-time bars for regular hours only."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
        pacing_scale: float = typer.Option(1.0, "--pacing-scale", help="Scale IB's pacing windows for gap repairs "
                                           "(for 'ibkrtool sim --pacing-scale')."),
    ) -> None:
        """Stream 5-second bars (IB real-time bars) and 1-second bars (built from tick-by-tick data) into the
        database; after a disconnect, resubscribe and fill the gap from historical data. Stop with Ctrl-C."""
        settings = get_settings(ctx)
        deadline = parse_when(until, "--until") if until else None
        if deadline is not None and not hasattr(deadline, "hour"):
            raise InputError("--until needs a time, e.g. 2026-11-20T21:00:00Z")
        options = CollectOptions(tuple(symbol or ()), parse_duration(duration) if duration else None, deadline, rth,
                                 csv_path, pacing_scale=pacing_scale)
        if not options.symbols:
            raise InputError("no symbol given: use --symbol SPY (repeatable)")
        engine = open_engine(settings.db_url)
        init_db(engine)
        with track_run(engine, "collect", dict(options.__dict__)) as run:
            with steady_gc():
                report = asyncio.run(_run(engine, settings, options))
            run.rows_written = report.bars_5s + report.bars_1s
        if as_json:
            render.print_json(report.as_dict())
        else:
            render.stderr.print(f"collected {report.bars_5s} 5-second and {report.bars_1s} 1-second bars in "
                                f"{report.elapsed_s:.0f} s; {len(report.outages)} outages, "
                                f"{len(report.repairs)} gap repairs")
