"""``ibkrtool execute --paper`` against the simulated gateway, through the unmodified ib_async client."""

from __future__ import annotations

import csv
import io

import pytest
from typer.testing import CliRunner

from ibkrtool.cli.main import app
from ibkrtool.store.engine import open_engine
from ibkrtool.store.executions import read_executions
from tests.execution.test_execute_simulate import POSITIONS

# The positions are of 2024-03-04, the sim's clock is 2026-11-20: sending each of them needs an explicit replay.
REPLAY = ("--replay", "--max-signal-age", "1000d")

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def positions(tmp_path):
    path = tmp_path / "positions.csv"
    path.write_text(POSITIONS)
    return path


def execute(gateway, url: str, *args: str, client_id: int = 7):
    return CliRunner().invoke(app, ["--db", url, "--ib-port", str(gateway.port), "--client-id", str(client_id),
                                    "execute", *args])


def test_paper_execute_fills_records_commissions_and_rerun_places_nothing(sim_gateway, sqlite_url, positions,
                                                                           tmp_path):
    log = tmp_path / "log.csv"
    args = ["--positions", str(positions), "--symbol", "SPY", "--quantity", "100", "--paper", "--log", str(log),
            *REPLAY]
    first = execute(sim_gateway, sqlite_url, *args)
    assert first.exit_code == 0, first.output
    rows = list(csv.DictReader(io.StringIO(log.read_text())))
    # intents in signal order: BUY 100 (long), SELL 200 (reverse), BUY 100 (flat)
    assert [(r["side"], r["quantity"], r["mode"]) for r in rows] == [("BUY", "100", "paper"), ("SELL", "200", "paper"),
                                                                     ("BUY", "100", "paper")]
    stored = read_executions(open_engine(sqlite_url), mode="paper")
    assert [r["commission"] for r in stored] == [1.0, 1.0, 1.0]  # IB fixed: max(USD 1, 0.005/share)
    assert all(r["perm_id"] and r["exec_id"] and r["account"] == "DU1234567" for r in stored)
    assert {r["order_ref"] for r in stored} == {r["order_ref"] for r in rows}
    again = execute(sim_gateway, sqlite_url, *args)
    assert again.exit_code == 0, again.output
    assert again.stderr.count(": already placed") == 3
    assert list(csv.DictReader(io.StringIO(log.read_text()))) == rows  # appended: nothing new, the first run's kept
    # a fresh database still places nothing: IB's own executions (reqExecutions, by orderRef) are consulted
    fresh = execute(sim_gateway, sqlite_url.replace("ibkrtool-test.db", "other.db"), *args)
    assert fresh.exit_code == 0, fresh.output
    assert fresh.stderr.count(": already placed") == 3


def test_latest_sends_one_order_to_the_final_target(sim_gateway, sqlite_url, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(POSITIONS.replace("2024-03-04T14:55:00Z,99.5,0,exit", "2024-03-04T14:55:00Z,99.5,-1,"))
    result = execute(sim_gateway, sqlite_url, "--positions", str(path), "--symbol", "SPY", "--quantity", "50",
                     "--paper", "--latest")
    assert result.exit_code == 0, result.output
    [row] = read_executions(open_engine(sqlite_url))
    assert (row["side"], row["quantity"]) == ("SELL", 50)  # from flat to -1 × 50 in one order


def test_live_account_is_refused_without_the_flags(sim_factory, sqlite_url, positions):
    gateway = sim_factory(account="U1234567")
    result = execute(gateway, sqlite_url, "--positions", str(positions), "--symbol", "SPY", "--paper")
    assert result.exit_code == 6
    assert "LIVE account" in result.output
    assert read_executions(open_engine(sqlite_url)) == []


def test_live_account_with_flags_and_cap(sim_factory, sqlite_url, positions):
    gateway = sim_factory(account="U1234567")
    result = execute(gateway, sqlite_url, "--positions", str(positions), "--symbol", "SPY", "--quantity", "20",
                     "--live", "--yes-i-mean-real-money", "--max-order-value", "15000", *REPLAY)
    assert result.exit_code == 0, result.output
    rows = read_executions(open_engine(sqlite_url))
    # SPY ~ USD 625 in the sim: the cap (15,000) lets 20-share orders through and stops the 40-share reversal
    assert [(r["side"], r["quantity"], r["mode"]) for r in rows] == [("BUY", 20, "live"), ("BUY", 20, "live")]
    assert "exceeds --max-order-value" in result.output


def test_rejections_are_reported_continue_or_stop(sim_factory, sqlite_url, positions):
    gateway = sim_factory(faults="reject-orders=SPY")
    args = ["--positions", str(positions), "--symbol", "SPY", "--quantity", "100", "--paper", *REPLAY]
    going_on = execute(gateway, sqlite_url, *args)
    assert going_on.exit_code == 0, going_on.output
    assert going_on.output.count("IB 201") == 3 and "Order rejected - reason:" in going_on.output
    stopped = execute(gateway, sqlite_url, *args, "--on-reject", "stop", client_id=8)
    assert stopped.exit_code == 6
    assert stopped.output.count("IB 201") == 1 and "--on-reject stop" in stopped.output
