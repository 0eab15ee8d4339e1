"""``ibkrtool backfill``: historical bars from IB into the database, paced by IB's rules, resumable."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ibkrtool.cli import options as o
from ibkrtool.cli import render

if TYPE_CHECKING:
    from ibkrtool.app.backfill import BackfillOutcome


HELP = """Fetch historical bars from TWS or IB Gateway and store them with their coverage; ranges already covered are skipped, so a rerun of a finished backfill sends no request.

Without --start and --end the range is the last complete session on the gateway's clock. A date is that trading day in the exchange's zone (--end includes it); a datetime needs a zone or --tz. A range of dates without a trading day (a holiday, a weekend) is nothing to do and exits 0. Requests are paced by IB's rules (at most 60 in 10 minutes, no identical request within 15 s, at most 6 for one contract in 2 s), shared with every other backfill through the pacing ledger in the database.

Several symbols are fetched together; a symbol IB does not know fails alone: the others are stored and the command exits non-zero, naming it. The connection is read-only.

Examples:

    ibkrtool backfill --symbol SPY --bar-size 1m
    ibkrtool backfill -s SPY -s AAPL@NASDAQ -b 1s --start 2026-11-16 --end 2026-11-20
    ibkrtool backfill -s EUR.USD -b 5m --what-to-show MIDPOINT --start 2026-11-02 --json
    ibkrtool backfill --symbols-file symbols.txt -b 1d --start 2025-01-02 --dry-run
"""


def register(app: typer.Typer) -> None:
    app.command("backfill", help=HELP, no_args_is_help=True)(backfill)


def backfill(
    ctx: typer.Context,
    symbol: o.Symbols = None,
    symbols_file: str = typer.Option(None, "--symbols-file", help="File with one symbol per line ('-' reads stdin; '#' starts a comment).", show_default=False),
    bar_size: str = typer.Option("1m", "--bar-size", "-b", help="IB bar size: 1s 5s 10s 15s 30s 1m … 8h 1d 1w."),
    what_to_show: o.WhatToShowOpt = None,
    start: o.Start = None,
    end: o.End = None,
    tz: o.Tz = None,
    rth: bool = typer.Option(True, "--rth/--all-hours", help="Regular trading hours only, or all hours."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan (requests, time under pacing) only."),
    as_json: o.Json = False,
    pacing_scale: float = typer.Option(1.0, "--pacing-scale", help="Scale IB's pacing windows (for 'ibkrtool sim --pacing-scale'); 1.0 for a real gateway."),
    timeout_s: float = typer.Option(60.0, "--timeout", help="Seconds to wait for one historical answer."),
) -> None:
    from ibkrtool.app.backfill import BackfillRequest, backfill
    from ibkrtool.model import BarSize, Instrument

    names = list(symbol or []) + (_read_symbols_file(symbols_file) if symbols_file else [])
    request = BackfillRequest(
        instruments=tuple(Instrument.parse(s) for s in dict.fromkeys(names)), bar_size=BarSize.parse(bar_size),
        what_to_show=what_to_show, start=o.when(start, "--start", tz), end=o.when(end, "--end", tz), rth=rth,
        dry_run=dry_run, pacing_scale=pacing_scale, timeout_s=timeout_s)
    request.check()  # bad input: exit 3 before the gateway or the database is touched
    render.stdout_carries_data(as_json)
    with render.progress(eta=False) as bar:
        task = bar.add_task("backfill", total=None, detail="planning")

        def on_progress(done: int, planned: int, bars: int, eta_s: float) -> None:
            bar.update(task, total=planned, completed=done, detail=f"{bars} bars, ≥{eta_s:.0f} s to go")

        outcome = backfill(o.workspace(ctx), request, on_progress)
    _render(outcome, as_json)
    outcome.failures.raise_if_any(len(request.instruments))


def _read_symbols_file(path: str) -> list[str]:
    """Symbols one per line (``-`` = stdin); blank lines and ``#`` comments are skipped."""
    import sys
    from pathlib import Path

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise o.usage(f"cannot read --symbols-file {path}: {exc.strerror}") from None
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def _render(outcome: BackfillOutcome, as_json: bool) -> None:
    if as_json:
        render.print_json(outcome.as_dict())
    for _symbol, reason in outcome.nothing_to_do:
        render.say(f"nothing to do: {reason}")
    run = outcome.run
    if run is None or as_json:
        return
    rows = [{"symbol": s.symbol, "conid": s.conid, "bar_size": s.bar_size, "what_to_show": s.what_to_show,
             "start": s.start.isoformat(), "end": s.end.isoformat(), "requests": s.requests, "bars": s.bars,
             "empty": s.empty} for s in run.series]
    render.table(rows, list(rows[0]) if rows else [], title="backfill plan (dry run)" if run.dry_run else "backfill")
    if run.dry_run:
        render.say(f"{run.requests_planned} requests; at least {run.estimated_s:.0f} s under IB's pacing rules")
    else:
        render.say(f"{run.requests_sent} requests ({run.retries} retries), {run.bars_stored} bars stored, "
                   f"{run.empty_chunks} empty ranges, {run.elapsed_s:.1f} s ({run.waited_s:.1f} s of it waiting "
                   "for pacing)")
