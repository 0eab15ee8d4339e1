"""``ibkrtool db``: create the schema, show what is stored, import and export bars as CSV."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import typer
from sqlalchemy.engine import Connection, Engine

from ibkrtool.cli.options import settings
from ibkrtool.cli.render import print_json, print_table, stderr
from ibkrtool.errors import InputError, StoreError
from ibkrtool.model import BarSize, Instrument, WhatToShow
from ibkrtool.model.contract import Contract
from ibkrtool.store.bars import list_series, read_bars, write_bars
from ibkrtool.store.contracts import (
    contracts_by_conid,
    find_contract,
    get_contract,
    placeholder_contract,
    upsert_contract,
)
from ibkrtool.store.coverage import all_covered_ranges
from ibkrtool.store.csvio import read_bars_csv, write_bars_csv
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db, schema_version
from ibkrtool.store.runs import track_run
from ibkrtool.store.tables import SCHEMA_VERSION

ORDER = 10

db_app = typer.Typer(help="Create the database schema, show what is stored, import and export bars as CSV.",
                     no_args_is_help=True)
import_app = typer.Typer(help="Import data from CSV into the database.", no_args_is_help=True)
export_app = typer.Typer(help="Export data from the database as CSV.", no_args_is_help=True)
db_app.add_typer(import_app, name="import")
db_app.add_typer(export_app, name="export")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


def _engine(ctx: typer.Context, ready: bool = True) -> Engine:
    engine = open_engine(settings(ctx).db_url)
    if ready and schema_version(engine) < SCHEMA_VERSION:
        raise StoreError(f"the database schema is at version {schema_version(engine)}, this ibkrtool needs "
                         f"{SCHEMA_VERSION}: run `ibkrtool db init`")
    return engine


@db_app.command("init")
def init(ctx: typer.Context) -> None:
    """Create or upgrade the schema (idempotent: safe to run again)."""
    engine = _engine(ctx, ready=False)
    before = schema_version(engine)
    version = init_db(engine)
    with track_run(engine, "db init", {}):
        pass
    word = "already at" if version == before else f"upgraded from {before} to"
    stderr.print(f"database {settings(ctx).masked_db_url}: schema {word} version {version}", highlight=False)


@db_app.command("status")
def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")
           ) -> None:
    """Schema version and, per stored series: symbol, conid, bar size, what-to-show, rows, first/last bar (UTC)
    and the merged coverage ranges fetched so far."""
    engine = _engine(ctx, ready=False)
    version = schema_version(engine)
    series = _series_rows(engine) if version else []
    if as_json:
        print_json({"schema_version": version, "series": series})
        return
    stderr.print(f"schema version {version}" + ("" if version else " (empty database: run `ibkrtool db init`)"),
                 highlight=False)
    rows = [{**s, "coverage": "; ".join(f"{a} → {b}" for a, b in s["coverage"])} for s in series]
    columns = ["symbol", "conid", "bar_size", "what_to_show", "rows", "first", "last", "coverage"]
    print_table(rows, columns, title="stored bars")


def _series_rows(engine: Engine) -> list[dict[str, Any]]:
    contracts = contracts_by_conid(engine)
    coverage = all_covered_ranges(engine)
    rows = []
    for s in list_series(engine):
        contract = contracts.get(s["conid"])
        ranges = coverage.get((s["conid"], s["bar_size"], s["what_to_show"]), [])
        rows.append({"symbol": contract.display if contract else "?", **s,
                     "coverage": [[a.isoformat(), b.isoformat()] for a, b in ranges]})
    return rows


def _contract_for(conn: Connection, symbol: str, conid: int | None) -> Contract:
    if conid is not None:
        known = get_contract(conn, conid)
        if known is not None:
            if known.display != Instrument.parse(symbol).display:
                raise InputError(f"conid {conid} is {known.display}, not {symbol}")
            return known
        inst = Instrument.parse(symbol)
        contract = Contract(conid=conid, symbol=inst.symbol, sec_type=inst.sec_type.value, exchange=inst.exchange,
                            primary_exchange=inst.primary_exchange, currency=inst.currency, local_symbol=inst.display)
        upsert_contract(conn, contract)
        return contract
    found = find_contract(conn, symbol)
    if found is None:
        found = placeholder_contract(symbol)
        upsert_contract(conn, found)
    return found


@import_app.command("bars")
def import_bars(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="CSV file of bars, or - for stdin."),
    symbol: str = typer.Option(..., "--symbol", help="Instrument, e.g. SPY or EUR.USD."),
    bar_size: str = typer.Option(..., "--bar-size", help="Bar size, e.g. 1s, 5m, 1d (or IB's '5 mins')."),
    what_to_show: str = typer.Option(None, "--what-to-show", help="TRADES, MIDPOINT, BID, ASK, BID_ASK "
                                     "(default TRADES; MIDPOINT for forex)."),
    tz: str = typer.Option(None, "--tz", help="IANA zone of naive timestamps in the file, e.g. America/New_York."),
    conid: int = typer.Option(None, "--conid", help="IB contract id; without it a known contract for the symbol "
                              "is used, else a local placeholder that backfill replaces."),
) -> None:
    """Import bars from a CSV file (or stdin) into the database: all or nothing, re-runs are idempotent, bars
    already stored with other values are replaced (last write wins)."""
    size = BarSize.parse(bar_size)
    what = WhatToShow.parse(what_to_show or Instrument.parse(symbol).default_what_to_show)
    bars = read_bars_csv(sys.stdin if file == "-" else file, tz=tz, name="<stdin>" if file == "-" else None)
    engine = _engine(ctx)
    args = {"file": file, "symbol": symbol, "bar_size": str(size), "what_to_show": what.value, "tz": tz,
            "conid": conid}
    with track_run(engine, "db import bars", args) as run, engine.begin() as conn:  # contract and bars: all or none
        contract = _contract_for(conn, symbol, conid)
        result = write_bars(conn, contract.conid, size, what, bars)
        run.rows_written = result.written
    stderr.print(f"{contract.display} {size} {what.value} (conid {contract.conid}): {len(bars)} bars read, "
                 f"{result.inserted} inserted, {result.updated} updated, {result.unchanged} unchanged",
                 highlight=False)


def _when(text: str | None, zone: ZoneInfo, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise InputError(f"{option} {text!r} is not a date or time; use e.g. 2024-01-02 or 2024-01-02T14:30Z") from None
    return (stamp.tz_localize(zone) if stamp.tzinfo is None else stamp).tz_convert("UTC").to_pydatetime()


@export_app.command("bars")
def export_bars(
    ctx: typer.Context,
    symbol: str = typer.Option(..., "--symbol", help="Instrument, e.g. SPY or EUR.USD."),
    bar_size: str = typer.Option(..., "--bar-size", help="Bar size, e.g. 1s, 5m, 1d."),
    what_to_show: str = typer.Option(None, "--what-to-show", help="Default TRADES (MIDPOINT for forex)."),
    start: str = typer.Option(None, "--start", help="First bar start to include (ISO date/time)."),
    end: str = typer.Option(None, "--end", help="Bars starting before this instant (exclusive)."),
    tz: str = typer.Option("UTC", "--tz", help="Zone of a --start/--end given without an offset."),
    output: str = typer.Option("-", "--output", "-o", help="CSV file to write, or - for stdout."),
) -> None:
    """Export the bars of one series as CSV (ts in ISO 8601 UTC first), to a file or stdout."""
    size = BarSize.parse(bar_size)
    what = WhatToShow.parse(what_to_show or Instrument.parse(symbol).default_what_to_show)
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        raise InputError(f"unknown time zone {tz!r}; use an IANA name such as America/New_York or UTC") from None
    lo, hi = _when(start, zone, "--start"), _when(end, zone, "--end")
    engine = _engine(ctx)
    contract = find_contract(engine, symbol)
    if contract is None:
        raise InputError(f"no bars stored for {symbol}: import or backfill them first (see `ibkrtool db status`)")
    bars = read_bars(engine, contract.conid, size, what, lo, hi)
    rows = write_bars_csv(bars, sys.stdout if output == "-" else output)
    stderr.print(f"{contract.display} {size} {what.value}: {rows} bars exported", highlight=False)
