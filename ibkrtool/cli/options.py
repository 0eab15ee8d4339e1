"""Options and state shared by every command."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from ibkrtool.settings import Settings


@dataclass
class AppState:
    """What the root callback resolved: settings plus how to report."""

    settings: Settings
    verbosity: int = 0
    traceback: bool = False


def state(ctx: typer.Context) -> AppState:
    """The ``AppState`` of this invocation (set by the root callback)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        raise RuntimeError("ibkrtool command invoked without the root callback")
    return root.obj


def settings(ctx: typer.Context) -> Settings:
    return state(ctx).settings
