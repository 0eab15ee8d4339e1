"""Contracts (qualify once, cached in the store; unknown → exit 6) and account-summary against the sim."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from ibkrtool.cli.main import app
from ibkrtool.errors import IbRefused
from ibkrtool.ib.contracts import qualify
from ibkrtool.ib.session import ConnectOptions, ib_session
from ibkrtool.model import Instrument
from ibkrtool.store.accounts import latest_snapshot
from ibkrtool.store.contracts import find_contract
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db

pytestmark = pytest.mark.timeout(60)
runner = CliRunner()


def test_qualify_caches_in_the_store(sim_gateway, db_url) -> None:
    engine = open_engine(db_url)
    init_db(engine)

    async def run() -> tuple:
        async with ib_session(ConnectOptions(port=sim_gateway.port)) as ib:
            first = await qualify(ib, Instrument.parse("SPY"), engine)
            asked = sim_gateway.stats["reqContractDetails"]
            again = await qualify(ib, Instrument.parse("SPY"), engine)
            pair = await qualify(ib, Instrument.parse("EUR.USD"), engine)
            return first, again, pair, asked, sim_gateway.stats["reqContractDetails"]

    first, again, pair, asked, asked_after = asyncio.run(run())
    assert first.conid > 0 and first.symbol == "SPY" and first.sec_type == "STK"
    assert again == first and asked_after == asked + 1  # SPY from the cache, only EUR.USD asked
    assert pair.sec_type == "CASH" and pair.currency == "USD"
    assert find_contract(engine, "SPY") == first


def test_unknown_symbol(sim_gateway) -> None:
    async def run() -> None:
        async with ib_session(ConnectOptions(port=sim_gateway.port)) as ib:
            await qualify(ib, Instrument.parse("ZZZZ"))

    with pytest.raises(IbRefused) as err:
        asyncio.run(run())
    assert str(err.value) == "unknown symbol 'ZZZZ' (IB: No security definition has been found)"
    assert err.value.exit_code == 6


def test_account_summary_matches_the_sim_account(sim_gateway, sqlite_url) -> None:
    args = ["--db", sqlite_url, "--ib-port", str(sim_gateway.port), "account-summary", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["account"] == "DU1234567" and row["mode"] == "paper" and row["account_type"] == "INDIVIDUAL"
    assert row["currency"] == "USD"
    for key in ("net_liquidation", "total_cash_value", "buying_power", "available_funds", "excess_liquidity",
                "gross_position_value"):
        assert isinstance(row[key], float)
    assert row["net_liquidation"] > 0 and row["buying_power"] >= row["available_funds"]
    stored = latest_snapshot(open_engine(sqlite_url), "DU1234567")
    assert float(stored[("NetLiquidation", "USD")]) == row["net_liquidation"]
    assert stored[("AccountType", "")] == "INDIVIDUAL"
    csv_out = runner.invoke(app, ["--db", sqlite_url, "--ib-port", str(sim_gateway.port), "account-summary",
                                  "-o", "-", "--no-store"])
    assert csv_out.exit_code == 0
    assert csv_out.stdout.splitlines()[0].startswith("account,mode,account_type,currency,net_liquidation")


def test_cli_exit_codes_for_unknown_symbol_and_no_gateway(sim_gateway, sqlite_url) -> None:
    base = ["--db", sqlite_url, "--ib-port", str(sim_gateway.port)]
    unknown = runner.invoke(app, [*base, "backfill", "--symbol", "ZZZZ", "--start", "2026-11-19",
                                  "--end", "2026-11-19"])
    assert unknown.exit_code == 6
    assert "unknown symbol 'ZZZZ'" in unknown.output


def test_account_summary_without_a_gateway_exits_4(sqlite_url) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = runner.invoke(app, ["--db", sqlite_url, "--ib-port", str(port), "account-summary"])
    assert result.exit_code == 4
    assert f"cannot reach TWS/IB Gateway at 127.0.0.1:{port}" in result.output
