"""Root command: global options, the command table, and the one place errors become exit codes.

Exit codes (ARCHITECTURE.md rule 6): 0 ok, 1 unexpected, 2 usage, 3 bad input, 4 gateway unreachable,
5 database, 6 IB refused, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).

Start-up: a command's module (and pandas, SQLAlchemy, ib_async behind it) is imported only when that command
runs or shows its help. ``COMMANDS`` lists every command with its module and summary; ``ibkrtool --help``
is drawn from the table alone.
"""

from __future__ import annotations

import importlib
import sys
import traceback as tb
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup

from ibkrtool.cli import signals
from ibkrtool.cli.options import AppState
from ibkrtool.cli.render import configure_logging, error
from ibkrtool.errors import IbkrToolError
from ibkrtool.settings import load_settings

EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = signals.EXIT_INTERRUPTED
EXIT_TERMINATED = signals.EXIT_TERMINATED
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a C tool killed by it


class Entry(NamedTuple):
    module: str
    summary: str


# Command name → module (whose ``register(app)`` adds it) and the one line ``ibkrtool --help`` shows.
# Listed in --help order. tests/core/test_help.py checks the table against the modules.
COMMANDS: dict[str, Entry] = {
    "db": Entry("ibkrtool.cli.db", "Create the database schema, show what is stored, import and export bars as CSV."),
    "account-summary": Entry("ibkrtool.cli.account", "Balances of the managed accounts, shown and stored."),
    "backfill": Entry("ibkrtool.cli.backfill", "Historical bars from IB into the database, paced, resumable."),
    "collect": Entry("ibkrtool.cli.collect", "Stream 5-second and 1-second bars into the database."),
    "resample": Entry("ibkrtool.cli.resample", "Resample bars to a larger size, aligned like IB's own bars."),
    "strategy": Entry("ibkrtool.cli.strategy", "Per-bar target positions of a strategy (Python or R engine)."),
    "backtest": Entry("ibkrtool.cli.backtest", "Backtest a strategy with IB's costs: metrics, trades, sweeps."),
    "execute": Entry("ibkrtool.cli.execute", "Turn a strategy run's positions into orders, never twice."),
    "live": Entry("ibkrtool.cli.live", "Trade a strategy on live bars through IB (paper by default)."),
    "sim": Entry("ibkrtool.cli.sim", "Run the simulated IB gateway (TWS protocol on loopback)."),
}


def load_command(name: str, table: Mapping[str, Entry] = COMMANDS) -> Any:
    """Import the module of command ``name`` and return its click command (a group for ``db``)."""
    from typer.main import get_group

    module = importlib.import_module(table[name].module)
    sub = typer.Typer()
    module.register(sub)
    command = get_group(sub).commands[name]
    adopt(command)
    return command


# ----------------------------------------------------------------------------------------------- help


@contextmanager
def _laid_out_help(command: Any) -> Iterator[None]:
    """While help is drawn, ``command.help`` is laid out for the terminal (see ``cli/helptext.py``)."""
    raw = command.help
    if raw:
        command.help = _laid_out(raw)
    try:
        yield
    finally:
        command.help = raw


def _reflowing_format_help(self: Any, ctx: Any, formatter: Any) -> None:
    with _laid_out_help(self):
        super(type(self), self).format_help(ctx, formatter)


def _help_option_without_metavar(self: Any, ctx: Any) -> Any:
    option = super(type(self), self).get_help_option(ctx)
    if option is not None:
        option.metavar = ""
    return option


def _laid_out(text: str) -> str:
    from ibkrtool.cli.helptext import reflow

    laid_out = reflow(text, _help_width())
    first, _, rest = laid_out.partition("\n\n")
    lines = rest.splitlines()
    if rest and len(lines) > 1 and all(line.startswith(" ") for line in lines[1:] if line.strip()):
        # typer dedents lines 2.. of the text after the first paragraph: an empty tag keeps the indentation
        lines[1] = "[none][/none]" + lines[1]
        rest = "\n".join(lines)
    return f"{first}\n\n{rest}" if rest else first


def _help_width() -> int:
    """Columns the help text has: typer's console width less its one-column padding on each side."""
    try:
        from typer.rich_utils import _get_rich_console

        width = _get_rich_console().width
    except Exception:  # pragma: no cover - a typer without rich_utils
        import shutil

        width = shutil.get_terminal_size().columns
    return max(width - 2, 40)


_ADOPTED: dict[type, type] = {}


def _no_flag_metavar(params: Any) -> None:
    """Flags and counters take no value: show no ``<bool>``/``<int>`` placeholder for them."""
    for param in params:
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""


def adopt(command: Any) -> None:
    """Give ``command`` and its sub-commands reflowing help, one-line summaries, and no ``<bool>`` on flags."""
    cls = type(command)
    if not getattr(cls, "_reflowing", False):
        if cls not in _ADOPTED:
            _ADOPTED[cls] = type(cls.__name__, (cls,), {
                "format_help": _reflowing_format_help, "get_help_option": _help_option_without_metavar,
                "_reflowing": True})
        command.__class__ = _ADOPTED[cls]
    if command.help and not command.short_help:
        from ibkrtool.cli.helptext import first_paragraph

        command.short_help = first_paragraph(command.help)
    _no_flag_metavar(command.params)
    for sub in getattr(command, "commands", {}).values():
        adopt(sub)


# ----------------------------------------------------------------------------------------------- the group


class _LazyCommands(MutableMapping):
    """The group's commands: the table's, loaded on first access, plus any added directly."""

    def __init__(self, table: Mapping[str, Entry], added: Mapping[str, Any] | None = None) -> None:
        self.table, self.loaded = table, dict(added or {})

    def __getitem__(self, name: str) -> Any:
        if name not in self.loaded:
            if name not in self.table:
                raise KeyError(name)
            self.loaded[name] = load_command(name, self.table)
        return self.loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from self.table
        yield from (name for name in self.loaded if name not in self.table)

    def __len__(self) -> int:
        return len(set(self.table) | set(self.loaded))


_LISTING = "ibkrtool.listing"


class IbkrGroup(TyperGroup):
    """Maps every error raised below it to one line on stderr and an exit code; commands in ``table`` are
    imported only when needed (``--help`` and completion of names use the table's summaries)."""

    table: Mapping[str, Entry] = {}
    _reflowing = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(self.table, self.commands)
        _no_flag_metavar(self.params)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        commands = self.commands
        if ctx.meta.get(_LISTING) and isinstance(commands, _LazyCommands) and cmd_name not in commands.loaded:
            entry = self.table.get(cmd_name)
            if entry is not None:
                return TyperCommand(name=cmd_name, help=entry.summary, short_help=entry.summary)
        return commands.get(cmd_name)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        ctx.meta[_LISTING] = True
        _no_flag_metavar(self.params)  # typer appends the completion options after __init__
        try:
            with _laid_out_help(self):
                super().format_help(ctx, formatter)
        finally:
            ctx.meta.pop(_LISTING, None)

    def shell_complete(self, ctx: Any, incomplete: str) -> Any:
        ctx.meta[_LISTING] = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            ctx.meta.pop(_LISTING, None)

    def invoke(self, ctx: Any) -> Any:
        signals.reset()
        try:
            result = super().invoke(ctx)
        except IbkrToolError as exc:
            _fail(ctx, str(exc), exc.exit_code)
        except signals.Terminated:
            _fail(ctx, "terminated", EXIT_TERMINATED)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted", EXIT_INTERRUPTED)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except BrokenPipeError:
            _quiet_broken_pipe()
        except Exception as exc:
            if type(exc).__module__.startswith(("click", "typer")):
                raise
            hint = "" if _wants_traceback(ctx) else " (run again with --traceback for details)"
            _fail(ctx, f"unexpected {type(exc).__name__}: {exc}{hint}", EXIT_UNEXPECTED)
        stopped_by = signals.received()
        if stopped_by is not None:  # the command stopped gracefully on a signal (signals.stop_on_signals)
            message, code = signals.outcome(stopped_by)
            error(message)
            raise typer.Exit(code)
        return result


class IbkrtoolGroup(IbkrGroup):
    """The ``ibkrtool`` root group: every command of ``COMMANDS``."""

    table = COMMANDS


def _fail(ctx: Any, message: str, code: int) -> None:
    """Print the stack if --traceback, then the one error line; exit with ``code`` either way."""
    if _wants_traceback(ctx):
        tb.print_exc(file=sys.stderr)
    error(message)
    raise typer.Exit(code) from None


def _quiet_broken_pipe() -> None:
    """The reader of stdout went away (``| head``): stop quietly, as a C tool killed by SIGPIPE would."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout is not a file (tests)
        pass
    raise typer.Exit(EXIT_BROKEN_PIPE)


def _wants_traceback(ctx: Any) -> bool:
    obj = ctx.find_root().obj
    return isinstance(obj, AppState) and obj.traceback


app = typer.Typer(
    cls=IbkrtoolGroup,
    name="ibkrtool",
    help="Interactive Brokers market-data pipelines and systematic strategies, one composable command at a time.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from ibkrtool import __version__

        typer.echo(f"ibkrtool {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    ctx: typer.Context,
    db: str = typer.Option(None, "--db", help="Database URL (env IBKRTOOL_DB_URL; default sqlite:///ibkrtool.db)."),
    ib_host: str = typer.Option(None, "--ib-host", help="TWS/Gateway host (env IBKRTOOL_IB_HOST; default 127.0.0.1)."),
    ib_port: int = typer.Option(None, "--ib-port", help="TWS/Gateway API port (env IBKRTOOL_IB_PORT; default 7497)."),
    client_id: int = typer.Option(None, "--client-id", help="IB API client id (env IBKRTOOL_CLIENT_ID; default 1)."),
    config: str = typer.Option(
        None, "--config", help="Config file (default ./ibkrtool.toml, then ~/.config/ibkrtool/config.toml)."
    ),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More logging on stderr (-vv for debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr: no progress, tables, summaries."),
    traceback: bool = typer.Option(False, "--traceback", help="Show the full stack trace on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Global options apply to every command; precedence is flag > IBKRTOOL_* env > config file > default."""
    verbosity = -1 if quiet else verbose
    configure_logging(verbosity)
    flags = {"db_url": db, "ib_host": ib_host, "ib_port": ib_port, "client_id": client_id}
    try:
        settings = load_settings(flags=flags, config_file=config)
    except IbkrToolError as exc:
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    ctx.obj = AppState(settings=settings, verbosity=verbosity, traceback=traceback)
    if verbosity >= 2:
        import logging

        logging.getLogger("ibkrtool").debug("settings: %r", settings)


def run() -> None:
    """Console-script entry point: SIGTERM unwinds like Ctrl-C (exit 143), then the app runs."""
    signals.install()
    try:
        app()
    except signals.Terminated:  # raised outside a command, e.g. while parsing
        error("terminated")
        sys.exit(EXIT_TERMINATED)
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(EXIT_INTERRUPTED)
