"""``ibkrtool account-summary``: balances of the managed accounts, shown and stored in ``account_snapshots``."""

from __future__ import annotations

import asyncio
import csv
import sys

import typer

from ibkrtool.cli import render
from ibkrtool.cli.options import settings as get_settings
from ibkrtool.ib.account import FIGURES, AccountSummary, account_summaries
from ibkrtool.ib.session import ConnectOptions, ib_session
from ibkrtool.settings import Settings
from ibkrtool.store.accounts import write_snapshot
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db

ORDER = 20
COLUMNS = ["account", "mode", "account_type", "currency", *FIGURES.values()]


async def _fetch(settings: Settings, account: str) -> list[AccountSummary]:
    async with ib_session(ConnectOptions.from_settings(settings, readonly=True)) as ib:
        return await account_summaries(ib, account)


def _write_csv(rows: list[dict]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def register(app: typer.Typer) -> None:
    @app.command("account-summary")
    def account_summary(
        ctx: typer.Context,
        account: str = typer.Option("", "--account", help="Only this account id (default: every managed one)."),
        as_json: bool = typer.Option(False, "--json", help="JSON on stdout."),
        as_csv: bool = typer.Option(False, "--csv", help="CSV on stdout."),
        store: bool = typer.Option(True, "--store/--no-store", help="Record the snapshot in account_snapshots."),
    ) -> None:
        """Account id, paper/live, net liquidation, cash, buying power, funds, excess liquidity, gross positions."""
        settings = get_settings(ctx)
        summaries = asyncio.run(_fetch(settings, account))
        if store:
            engine = open_engine(settings.db_url)
            init_db(engine)
            for s in summaries:
                write_snapshot(engine, s.taken_at, s.account, s.mode, s.values)
        rows = [s.as_dict() for s in summaries]
        if as_json:
            render.print_json(rows)
        elif as_csv:
            _write_csv(rows)
        else:
            render.print_table(rows, COLUMNS, title="account summary")
