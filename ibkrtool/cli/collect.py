"""``ibkrtool collect``: 5-second and 1-second bars streamed into the database until a duration, a deadline or
Ctrl-C."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ibkrtool.cli import options as o
from ibkrtool.cli import render

if TYPE_CHECKING:
    import asyncio
    from datetime import datetime

    from ibkrtool.app.collect import CollectReport, CollectRequest, OnStart


HELP = """Stream 5-second bars (IB's real-time bars) and 1-second bars (built from tick-by-tick data) into the database, for several symbols on one read-only connection, until --duration has passed, --until is reached or Ctrl-C.

After a disconnect or a loss of IB's connectivity the streams are resubscribed and the gap is filled from historical data, so the stored series has no hole; gap requests share IB's pacing budget with every backfill. The first second after each subscription is partial and is not stored.

--until takes an instant with a zone (2026-11-20T21:00:00Z) or a zone-less datetime with --tz (2026-11-20T16:00 --tz America/New_York); a bare date is refused. With both --duration and --until, the first reached ends the run (exit 0). Ctrl-C or SIGTERM stops cleanly: every complete bar is written and the summary printed, then the command exits 130 (Ctrl-C) or 143 (SIGTERM) and the run is journaled as interrupted.

--output FILE also appends every bar stored to a CSV file (symbol, bar_size, ts, open, high, low, close, volume, wap, bar_count; the header when the file is new); --output - writes that CSV to stdout as the bars come, and the summary stays on stderr. --json prints the summary as JSON on stdout instead, so it does not go with --output -.

Examples:

    ibkrtool collect -s SPY -s EUR.USD --duration 30m
    ibkrtool collect -s SPY --until 2026-11-20T21:00:00Z -o spy_live.csv
    ibkrtool collect -s SPY --until 2026-11-20T16:00 --tz America/New_York
    ibkrtool collect -s EUR.USD --duration 5m --all-hours --json
    ibkrtool collect -s SPY --duration 90s -o - | head
"""


def register(app: typer.Typer) -> None:
    app.command("collect", help=HELP, no_args_is_help=True)(collect)


def collect(
    ctx: typer.Context,
    symbol: o.Symbols = None,
    duration: str = typer.Option(None, "--duration", help="How long to collect: 90s, 30m, 6h.", show_default=False),
    until: str = typer.Option(None, "--until", help="Stop at this instant: 2026-11-20T21:00:00Z, or a zone-less datetime with --tz.", show_default=False),
    tz: o.Tz = None,
    output: o.OutputFile = None,
    csv_path: str = typer.Option(None, "--csv", hidden=True, help="Deprecated: --output.", show_default=False),
    rth: bool = typer.Option(False, "--rth/--all-hours", help="Real-time bars of regular trading hours only, or all hours."),
    as_json: o.Json = False,
    pacing_scale: float = typer.Option(1.0, "--pacing-scale", help="Scale IB's pacing windows for gap repairs (for 'ibkrtool sim --pacing-scale'); 1.0 for a real gateway."),
) -> None:
    from ibkrtool.app.collect import CollectRequest, collect
    from ibkrtool.data.collect import parse_duration
    from ibkrtool.model import Instrument

    if csv_path is not None:
        if output is not None:
            raise o.usage("--csv is the old name of --output: give only --output")
        render.say("warning: --csv is deprecated; use --output (-o)")
        output = csv_path
    if as_json and output == "-":
        raise o.usage("--json and --output - would both write to stdout; send the bars to a file")
    request = CollectRequest(
        instruments=tuple(Instrument.parse(s) for s in dict.fromkeys(symbol or [])),
        duration_s=parse_duration(duration) if duration else None, until=_until(until, tz), rth=rth,
        output=output, pacing_scale=pacing_scale)
    request.check()  # bad input: exit 3 before the gateway or the database is touched
    render.stdout_carries_data(as_json or output == "-")
    report = collect(o.workspace(ctx), request, on_start=_on_start(request))
    _render(report, as_json)
    if report.stopped_by == "output closed":
        raise BrokenPipeError("the reader of --output - went away")  # the shell exits 141, as after SIGPIPE
    report.failures.raise_if_any(len(request.instruments))


def _until(text: str | None, tz: str | None) -> datetime | None:
    """``--until`` under the one time rule, as an instant (tz-aware UTC); a bare date is refused (exit 3)."""
    when = o.when(text, "--until", tz)
    if when is None:
        return None
    if when.instant is None:
        raise o.usage(f"--until {text!r} is a date; give a time too, e.g. {text}T21:00:00Z, or {text}T16:00:00 "
                      "with --tz America/New_York")
    return when.instant


def _on_start(request: CollectRequest) -> OnStart:
    """Once the streams are about to start: Ctrl-C and SIGTERM stop the run cleanly, and one line says so."""
    from ibkrtool.cli import signals

    def started(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        signals.stop_on_signals(loop, stop)
        render.say(f"collecting {_what(request)}; Ctrl-C stops and keeps every complete bar")

    return started


def _what(request: CollectRequest) -> str:
    ends = []
    if request.duration_s is not None:
        ends.append(f"for {request.duration_s:g} s")
    if request.until is not None:
        ends.append(f"until {request.until.isoformat()}")
    names = ", ".join(i.display for i in request.instruments)
    return f"{names} {' or '.join(ends)}" if ends else names


def _render(report: CollectReport, as_json: bool) -> None:
    if as_json:
        render.print_json(report.as_dict())
        return
    stopped = {"until": " (--until reached)", "stop": " (stopped)", "output closed": " (stdout closed)"}.get(report.stopped_by or "", "")
    render.say(f"collected {report.bars_5s} 5-second and {report.bars_1s} 1-second bars in {report.elapsed_s:.0f} s"
               f"{stopped}; {len(report.outages)} outages, {len(report.repairs)} gap repairs")
