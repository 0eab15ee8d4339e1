"""``ibkrtool db``: create the schema, show what is stored, import and export bars as CSV."""

from __future__ import annotations

import typer

from ibkrtool.cli import options as o
from ibkrtool.cli import render

DB_HELP = """Create the database schema, show what is stored, import and export bars as CSV.

The database is --db or IBKRTOOL_DB_URL: PostgreSQL (postgresql://user@host/db, schema ibkr_data) or an embedded SQLite file (sqlite:///path/to/ibkrtool.db; the default sqlite:///ibkrtool.db lies in the current folder, so give an absolute path to cron and Airflow). 'db init' is the one command that creates an SQLite file's folder; other commands refuse a folder that does not exist. Commands that write create or upgrade the schema themselves; commands that only read ask for 'db init' when it is missing.

Examples:

    ibkrtool --db sqlite:////var/lib/ibkrtool/bars.db db init
    ibkrtool db status --json
    ibkrtool db import bars spy_1m.csv -s SPY -b 1m --tz America/New_York
    ibkrtool db export bars -s SPY -b 1m --start 2026-11-02 --end 2026-11-06 -o spy.csv
"""

db_app = typer.Typer(help=DB_HELP, no_args_is_help=True)
import_app = typer.Typer(help="Import data from CSV into the database.", no_args_is_help=True)
export_app = typer.Typer(help="Export data from the database as CSV.", no_args_is_help=True)
db_app.add_typer(import_app, name="import")
db_app.add_typer(export_app, name="export")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("init")
def init(ctx: typer.Context, as_json: o.Json = False) -> None:
    """Create the database, or upgrade its schema; safe to run again.

    Examples:

        ibkrtool db init
        ibkrtool --db postgresql://ibkr@db.example/ibkr db init
    """
    from ibkrtool.app.db import init

    report = init(o.workspace(ctx))
    if as_json:
        render.print_json(report.as_dict())
        return
    word = ("already at" if report.version == report.version_before
            else f"upgraded from {report.version_before} to")
    render.say(f"database {report.database}: schema {word} version {report.version}")


@db_app.command("status")
def status(ctx: typer.Context, as_json: o.Json = False) -> None:
    """Which database is in use, its schema version and, per stored series: symbol, conid, bar size, what-to-show, rows, first and last bar (UTC) and the coverage ranges fetched so far.

    Examples:

        ibkrtool db status
        ibkrtool --db sqlite:///demo/ibkrtool.db db status --json
    """
    from ibkrtool.app.db import status

    report = status(o.workspace(ctx))
    if as_json:
        render.print_json(report.as_dict())
        return
    render.say(f"database {report.database}: schema version {report.schema_version}")
    rows = [{**s, "coverage": "; ".join(f"{a} → {b}" for a, b in s["coverage"])} for s in report.series]
    columns = ["symbol", "conid", "bar_size", "what_to_show", "rows", "first", "last", "coverage"]
    render.table(rows, columns, title="stored bars")


@import_app.command("bars")
def import_bars(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="CSV file of bars, or - for stdin."),
    symbol: o.Symbol = None,
    bar_size: o.BarSizeOpt = None,
    what_to_show: o.WhatToShowOpt = None,
    tz: o.Tz = None,
    conid: int = typer.Option(None, "--conid", help="IB contract id; without it a known contract for the symbol is used, else a local placeholder that backfill replaces.", show_default=False),
    as_json: o.Json = False,
) -> None:
    """Import bars from a CSV file (or stdin) into the database: all or nothing; a rerun changes nothing; bars already stored with other values are replaced (last write wins).

    Examples:

        ibkrtool db import bars spy_1s.csv --symbol SPY --bar-size 1s
        ibkrtool db import bars - -s EUR.USD -b 5m --tz America/New_York < eurusd.csv
    """
    import sys

    from ibkrtool.app.db import ImportRequest, import_bars
    from ibkrtool.model import BarSize, Instrument
    from ibkrtool.model.when import zone_named

    name = o.one_symbol(symbol, "db import bars")
    if name is None or bar_size is None:
        raise o.usage("db import bars needs --symbol and --bar-size (the series the file holds)")
    request = ImportRequest(
        source=sys.stdin if file == "-" else file, instrument=Instrument.parse(name), bar_size=BarSize.parse(bar_size),
        what_to_show=what_to_show, tz=zone_named(tz) if tz else None, conid=conid,
        name="<stdin>" if file == "-" else None)
    report = import_bars(o.workspace(ctx), request)
    if as_json:
        render.print_json(report.as_dict())
    render.say(f"{report.symbol} {report.bar_size} {report.what_to_show} (conid {report.conid}): {report.read} bars "
               f"read, {report.inserted} inserted, {report.updated} updated, {report.unchanged} unchanged")


@export_app.command("bars")
def export_bars(
    ctx: typer.Context,
    symbol: o.Symbol = None,
    bar_size: o.BarSizeOpt = None,
    what_to_show: o.WhatToShowOpt = None,
    start: o.Start = None,
    end: o.End = None,
    tz: o.Tz = None,
    output: str = typer.Option("-", "--output", "-o", help="CSV file to write; '-' writes stdout."),
) -> None:
    """Export the bars of one series as CSV (ts in ISO 8601 UTC first) to a file or stdout.

    --start and --end follow the rule of every command: a date is that trading day in the exchange's zone and --end includes it; a datetime needs a zone (or --tz) and --end is then exclusive.

    Examples:

        ibkrtool db export bars -s SPY -b 1s -o - | ibkrtool resample -i - -s SPY --to 5m -o -
        ibkrtool db export bars -s SPY -b 1m --start 2026-11-20 --end 2026-11-20 -o spy_day.csv
    """
    import sys

    from ibkrtool.app.db import ExportRequest, export_bars, write_bars_csv
    from ibkrtool.model import BarSize, Instrument

    name = o.one_symbol(symbol, "db export bars")
    if name is None or bar_size is None:
        raise o.usage("db export bars needs --symbol and --bar-size (the series to export)")
    request = ExportRequest(Instrument.parse(name), BarSize.parse(bar_size), what_to_show,
                            o.when(start, "--start", tz), o.when(end, "--end", tz))
    render.stdout_carries_data(output == "-")
    result = export_bars(o.workspace(ctx), request)
    rows = write_bars_csv(result.bars, sys.stdout if output == "-" else output)
    render.say(f"{result.symbol} {result.bar_size} {result.what_to_show}: {rows} bars exported")
