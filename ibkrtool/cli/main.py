"""Root command: global options, command registration and the one place errors become exit codes.

Exit codes (ARCHITECTURE.md rule 6): 0 ok, 1 unexpected, 2 usage, 3 bad input, 4 gateway unreachable,
5 database, 6 IB refused, 130 interrupted.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from ibkrtool import __version__
from ibkrtool.cli.options import AppState
from ibkrtool.cli.render import configure_logging, stderr
from ibkrtool.errors import IbkrToolError
from ibkrtool.settings import load_settings, mask_url

EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = 130
log = logging.getLogger("ibkrtool")


def _report(message: str) -> None:
    stderr.print(f"[bold red]error:[/] {mask_url(message)}", markup=True, highlight=False)


class IbkrGroup(TyperGroup):
    """Maps every error raised below it to one line on stderr and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except IbkrToolError as exc:
            if _wants_traceback(ctx):
                raise
            _report(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _report("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:
            if _wants_traceback(ctx) or type(exc).__module__.startswith(("click", "typer")):
                raise
            _report(f"unexpected {type(exc).__name__}: {exc} (run again with --traceback for details)")
            raise typer.Exit(EXIT_UNEXPECTED) from None


def _wants_traceback(ctx: Any) -> bool:
    obj = ctx.find_root().obj
    return isinstance(obj, AppState) and obj.traceback


app = typer.Typer(
    cls=IbkrGroup,
    name="ibkrtool",
    help="Interactive Brokers market-data pipelines and systematic strategies, one composable command at a time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr."),
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
        _report(str(exc))
        raise typer.Exit(exc.exit_code) from None
    ctx.obj = AppState(settings=settings, verbosity=verbosity, traceback=traceback)
    log.debug("settings: %r", settings)


def _register_commands() -> None:
    """Every module in ``ibkrtool/cli`` with a ``register(app)`` function adds its commands.

    Modules are taken in the order of their ``ORDER`` constant (then name), which is the order ``--help`` lists them.
    """
    import ibkrtool.cli as package

    modules = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in {"main", "options", "render"} or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"ibkrtool.cli.{info.name}")
        if callable(getattr(module, "register", None)):
            modules.append(module)
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.register(app)


_register_commands()


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # raised outside a command, e.g. while parsing
        _report("interrupted")
        sys.exit(EXIT_INTERRUPTED)
