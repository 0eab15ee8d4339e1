"""``ibkrtool backfill``: historical bars from IB into the database, paced by IB's rules, resumable."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path

import typer
from sqlalchemy.engine import Engine

from ibkrtool.cli import render
from ibkrtool.cli.options import settings as get_settings
from ibkrtool.data.backfill import BackfillOptions, BackfillReport, run_backfill, validate
from ibkrtool.errors import InputError
from ibkrtool.ib.session import ConnectOptions, ib_session
from ibkrtool.runtime import steady_gc
from ibkrtool.settings import Settings
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db
from ibkrtool.store.runs import track_run

ORDER = 30


def read_symbols_file(path: str) -> list[str]:
    """Symbols one per line (``-`` = stdin); blank lines and ``#`` comments are skipped."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read --symbols-file {path}: {exc.strerror}") from None
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def _summary_rows(report: BackfillReport) -> list[dict]:
    return [{"symbol": s.symbol, "conid": s.conid, "bar_size": s.bar_size, "what_to_show": s.what_to_show,
             "start": s.start.isoformat(), "end": s.end.isoformat(), "requests": s.requests, "bars": s.bars,
             "empty": s.empty} for s in report.series]


def _render(report: BackfillReport, as_json: bool) -> None:
    if as_json:
        render.print_json(report.as_dict())
        return
    title = "backfill plan (dry run)" if report.dry_run else "backfill"
    render.print_table(_summary_rows(report), ["symbol", "conid", "bar_size", "what_to_show", "start", "end",
                                               "requests", "bars", "empty"], title=title)
    if report.dry_run:
        render.stderr.print(f"{report.requests_planned} requests; at least {report.estimated_s:.0f} s under IB's "
                            "pacing rules")
    else:
        render.stderr.print(f"{report.requests_sent} requests ({report.retries} retries), {report.bars_stored} bars "
                            f"stored, {report.empty_chunks} empty ranges, {report.elapsed_s:.1f} s "
                            f"({report.waited_s:.1f} s waiting for pacing)")


def register(app: typer.Typer) -> None:
    @app.command("backfill")
    def backfill(
        ctx: typer.Context,
        symbol: list[str] = typer.Option(None, "--symbol", "-s", help="SPY, AAPL@NASDAQ or EUR.USD; repeatable."),
        symbols_file: str = typer.Option(None, "--symbols-file", help="File with one symbol per line ('-' = stdin)."),
        bar_size: str = typer.Option("1m", "--bar-size", "-b", help="IB bar size: 1s 5s 10s 15s 30s 1m … 8h 1d 1w."),
        what_to_show: str = typer.Option(None, "--what-to-show", help="TRADES (stocks) / MIDPOINT (forex) by default."),
        start: str = typer.Option(None, "--start", help="Date (2026-11-20) or datetime with zone (…T14:30:00Z)."),
        end: str = typer.Option(None, "--end", help="Date (inclusive) or datetime with zone; default: now."),
        rth: bool = typer.Option(True, "--rth/--all-hours", help="Regular trading hours only, or all hours."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan (requests, time under pacing) only."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
        pacing_scale: float = typer.Option(1.0, "--pacing-scale", help="Scale IB's pacing windows (for 'ibkrtool "
                                           "sim --pacing-scale'); 1.0 for a real gateway."),
        timeout_s: float = typer.Option(60.0, "--timeout", help="Seconds to wait for one historical answer."),
    ) -> None:
        """Fetch historical bars (default: the last complete session) and store them with their coverage.

        Ranges already covered are skipped, so a rerun of a finished backfill sends no request.
        """
        settings = get_settings(ctx)
        symbols = list(symbol or []) + (read_symbols_file(symbols_file) if symbols_file else [])
        options = BackfillOptions(tuple(symbols), bar_size, what_to_show, start, end, rth, dry_run, pacing_scale,
                                  timeout_s)
        now = datetime.now(timezone.utc)
        validate(options, now)  # bad input → exit 3 before touching the gateway or the database
        engine = open_engine(settings.db_url)
        init_db(engine)
        args = dict(options.__dict__)
        with track_run(engine, "backfill", args) as run:
            with steady_gc():
                report = asyncio.run(_run(engine, settings, options, now))
            run.rows_written = report.bars_stored
        _render(report, as_json)


async def _run(engine: Engine, settings: Settings, options: BackfillOptions, now: datetime) -> BackfillReport:
    gateway = f"{settings.ib_host}:{settings.ib_port}"
    with render.progress() as bar:
        task = bar.add_task("backfill", total=None, detail="planning")

        def on_progress(done: int, planned: int, bars: int, eta_s: float) -> None:
            bar.update(task, total=planned, completed=done, detail=f"{bars} bars, ≥{eta_s:.0f} s to go")

        async with ib_session(ConnectOptions.from_settings(settings, readonly=True)) as ib:
            return await run_backfill(ib, engine, options, gateway, now, on_progress=on_progress)
