"""``ibkrtool account-summary``: balances of the managed accounts, shown and stored in ``account_snapshots``."""

from __future__ import annotations

import typer

from ibkrtool.cli import options as o
from ibkrtool.cli import render

HELP = """Show each managed account's id, paper or live, net liquidation, cash, buying power, available funds, excess liquidity and gross position value, and store the snapshot in account_snapshots. The connection is read-only.

Examples:

    ibkrtool --ib-port 7497 account-summary
    ibkrtool account-summary --account DU1234567 --json
    ibkrtool account-summary -o accounts.csv --no-store
"""


def register(app: typer.Typer) -> None:
    app.command("account-summary", help=HELP)(account_summary)


def account_summary(
    ctx: typer.Context,
    account: str = typer.Option("", "--account", help="Only this account id (default: every managed one).", show_default=False),
    as_json: o.Json = False,
    output: o.OutputFile = None,
    store: bool = typer.Option(True, "--store/--no-store", help="Record the snapshot in account_snapshots."),
) -> None:

    from ibkrtool.app.account import AccountRequest, account_summary, columns

    if as_json and output == "-":
        raise o.usage("--json and --output - would both write to stdout; send the CSV to a file")
    render.stdout_carries_data(as_json or output == "-")
    report = account_summary(o.workspace(ctx), AccountRequest(account, store))
    rows = report.rows()
    if output is not None:
        if output == "-":
            render.write_csv_rows(rows, columns())
        else:
            with open(output, "w", newline="") as handle:
                render.write_csv_rows(rows, columns(), handle)
    if as_json:
        render.print_json(rows)
    else:
        render.table(rows, columns(), title="account summary")
