"""Orders you can trust: "now, not history". Against IB the default brings the account to the run's latest target in
one order; each historical signal is sent only with ``--replay``, and then only when it is younger than
``--max-signal-age`` by the gateway's clock. Orders are counted from the sim's own order log."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ibkrtool.cli.main import app
from ibkrtool.execution.freshness import age_text, parse_age
from tests.execution.test_execute_identity import sim_orders
from tests.plugins.sim import SIM_START

pytestmark = pytest.mark.timeout(90)

# The incident: a run whose 7 signals are 1 to 7 days old when execute runs (the sim's clock starts at SIM_START),
# long, flat, long, ... on QQQ: replayed, 7 market orders in the same second.
WEEK_OLD = "ts,position\n" + "".join(
    f"{SIM_START - timedelta(days=day):%Y-%m-%dT%H:%M:%SZ},{day % 2}\n"
    for day in range(7, 0, -1))


@pytest.fixture
def week_old(tmp_path: Path) -> str:
    path = tmp_path / "week_old.csv"
    path.write_text(WEEK_OLD)
    return str(path)


def run(gateway: Any, url: str, positions: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", url, "--ib-port", str(gateway.port), "--client-id", "7", "execute",
                                    "--positions", positions, "-s", "QQQ", "-n", "10", "--paper", *args])


def test_the_week_old_run_has_seven_signals(week_old: str) -> None:
    assert WEEK_OLD.count("\n") == 8 and [line[-1] for line in WEEK_OLD.splitlines()[1:]] == list("1010101")


def test_default_paper_run_sends_one_order_to_the_latest_target(sim_factory, sqlite_url, week_old) -> None:
    """Before: 7 market orders in the same second. Now: 1 (flat → the latest target, long 10), then none."""
    gateway = sim_factory()
    result = run(gateway, sqlite_url, week_old)
    assert result.exit_code == 0, result.output
    assert [(s, a, q) for s, a, q, _ in sim_orders(gateway)] == [("QQQ", "BUY", 10)]
    again = run(gateway, sqlite_url, week_old, "--latest")  # --latest: the old spelling, same behaviour
    assert again.exit_code == 0, again.output
    assert len(sim_orders(gateway)) == 1  # the position is at the target: nothing more


def test_replay_of_old_signals_is_refused_with_their_age(sim_factory, sqlite_url, week_old) -> None:
    gateway = sim_factory()
    result = run(gateway, sqlite_url, week_old, "--replay")
    assert result.exit_code == 3, result.output
    assert "7 of 7 signals to replay are older than --max-signal-age 5m" in result.output
    assert "is 6d 23h old by the gateway's clock (2026-11-20 15:" in result.output
    assert "nothing was sent" in result.output
    assert sim_orders(gateway) == [] and gateway.stats["placeOrder"] == 0
    week = run(gateway, sqlite_url, week_old, "--replay", "--max-signal-age", "3d")
    assert week.exit_code == 3 and "4 of 7 signals" in week.output  # 7, 6, 5 and 4 days old (3d 23h 55m)
    assert gateway.stats["placeOrder"] == 0


def test_replay_with_a_wide_enough_age_sends_each_signal(sim_factory, sqlite_url, week_old) -> None:
    gateway = sim_factory()
    result = run(gateway, sqlite_url, week_old, "--replay", "--max-signal-age", "30d")
    assert result.exit_code == 0, result.output
    assert [(a, q) for _, a, q, _ in sim_orders(gateway)] == [("BUY", 10), ("SELL", 10)] * 3 + [("BUY", 10)]
    again = run(gateway, sqlite_url, week_old, "--replay", "--max-signal-age", "30d")
    assert again.exit_code == 0 and again.stderr.count(": already placed") == 7
    assert len(sim_orders(gateway)) == 7


@pytest.mark.parametrize(("args", "message"), [
    (("--replay", "--latest"), "exclude each other"),
    (("--max-signal-age", "1d"), "applies to --replay only"),
    (("--replay", "--max-signal-age", "soon"), "is not understood"),
])
def test_conflicting_options_are_refused_before_the_gateway(sim_factory, sqlite_url, week_old, args,
                                                           message) -> None:
    gateway = sim_factory()
    result = run(gateway, sqlite_url, week_old, *args)
    assert result.exit_code == 3 and message in result.output
    assert gateway.stats["placeOrder"] == 0


def test_replay_is_refused_in_simulate(sqlite_url, week_old) -> None:
    result = CliRunner().invoke(app, ["--db", sqlite_url, "execute", "--positions", week_old, "-s", "QQQ",
                                      "--replay"])
    assert result.exit_code == 3 and "--replay is for --paper/--live" in result.output


def test_ages_parse_and_print() -> None:
    assert [parse_age(t) for t in ("90s", "5m", "2h", "1d", "30", "1.5h")] == [90, 300, 7200, 86400, 30, 5400]
    assert [age_text(s) for s in (45, 720, 3 * 3600 + 300, 6 * 86400 + 23 * 3600 + 59)] == [
        "45s", "12m", "3h 05m", "6d 23h"]
