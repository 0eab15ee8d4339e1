"""The one vocabulary of options every command uses, and the state the root callback resolved.

Same name, same meaning everywhere: ``--symbol/-s``, ``--bar-size/-b``, ``--start/--end`` (a date is that trading
day in the exchange's zone, ``--end`` inclusive; a datetime needs a zone or ``--tz``), ``--tz``,
``--input/-i`` and ``--output/-o`` (``-`` = stdin/stdout), ``--json``, ``--what-to-show``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ibkrtool.settings import Settings

if TYPE_CHECKING:
    from ibkrtool.app.workspace import Workspace
    from ibkrtool.model.when import When


@dataclass
class AppState:
    """What the root callback resolved: settings plus how to report."""

    settings: Settings
    verbosity: int = 0
    traceback: bool = False
    workspace: Workspace | None = field(default=None, repr=False)


def state(ctx: typer.Context) -> AppState:
    """The ``AppState`` of this invocation (set by the root callback)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        raise RuntimeError("ibkrtool command invoked without the root callback")
    return root.obj


def settings(ctx: typer.Context) -> Settings:
    return state(ctx).settings


def workspace(ctx: typer.Context) -> Workspace:
    """The invocation's ``Workspace`` (one per process), made on first use."""
    from ibkrtool.app.workspace import Workspace

    app_state = state(ctx)
    if app_state.workspace is None:
        app_state.workspace = Workspace(app_state.settings)
        ctx.find_root().call_on_close(app_state.workspace.close)
    return app_state.workspace


def when(text: str | None, option: str, tz: str | None) -> When | None:
    """``--start``/``--end`` text under the one time rule (``--tz`` reads a zone-less datetime)."""
    from ibkrtool.model.when import When, zone_named

    return When.optional(text, option, zone_named(tz) if tz else None)


def usage(message: str) -> Exception:
    """An ``InputError`` (exit 3) for options that cannot go together."""
    from ibkrtool.errors import InputError

    return InputError(message)


def one_symbol(symbols: list[str] | None, command: str) -> str | None:
    """The single ``--symbol`` of a command that takes one; a second is refused, never silently dropped."""
    from ibkrtool.errors import InputError

    names = [s for s in symbols or [] if s.strip()]
    if len(names) > 1:
        raise InputError(f"{command} takes one --symbol, got {len(names)} ({', '.join(names)}): run it once per "
                         "symbol")
    return names[0] if names else None


_SYMBOL_HELP = "Instrument: SPY, AAPL@NASDAQ or EUR.USD."

Symbol = Annotated[Optional[list[str]], typer.Option("--symbol", "-s", help=_SYMBOL_HELP, show_default=False)]
Symbols = Annotated[Optional[list[str]], typer.Option(
    "--symbol", "-s", help=_SYMBOL_HELP + " Repeatable.", show_default=False)]
BarSizeOpt = Annotated[Optional[str], typer.Option(
    "--bar-size", "-b", help="Bar size: 1s 5s 1m 5m 15m 1h 1d (IB's '5 mins' too).", show_default=False)]
WhatToShowOpt = Annotated[Optional[str], typer.Option(
    "--what-to-show", help="TRADES, MIDPOINT, BID, ASK; default TRADES for stocks, MIDPOINT for forex.",
    show_default=False)]
Start = Annotated[Optional[str], typer.Option(
    "--start", help="First trading day (2026-11-20) or instant with a zone (2026-11-20T14:30:00Z).",
    show_default=False)]
End = Annotated[Optional[str], typer.Option(
    "--end", help="Last trading day, inclusive, or instant with a zone (exclusive).", show_default=False)]
Tz = Annotated[Optional[str], typer.Option(
    "--tz", help="IANA zone of times given without one, in options and input files (e.g. America/New_York).",
    show_default=False)]
InputFile = Annotated[Optional[str], typer.Option(
    "--input", "-i", help="Bars CSV to read instead of the database; '-' reads stdin.", show_default=False)]
OutputFile = Annotated[Optional[str], typer.Option(
    "--output", "-o", help="CSV file to write; '-' writes stdout.", show_default=False)]
Json = Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")]
