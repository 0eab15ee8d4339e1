"""Orders you can trust: the sequences a new user ran that went wrong, end to end — ``ibkrtool execute`` simulated,
and against the sim through the unmodified ib_async client. Orders are counted from the sim's own order log."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ibkrtool.cli.main import app
from ibkrtool.execution.identity import parse_key
from ibkrtool.model.order import Fill, Side
from ibkrtool.store.contracts import placeholder_conid
from ibkrtool.store.engine import open_engine
from ibkrtool.store.executions import read_executions, record_fills
from ibkrtool.store.migrate import init_db
from tests.execution.test_execute_simulate import BARS, POSITIONS

pytestmark = pytest.mark.timeout(90)

SPY_CONID = 756733  # the sim's SPY
# The positions are of 2024-03-04, the sim's clock is 2026-11-20: sending each of them needs an explicit replay.
REPLAY = ("--replay", "--max-signal-age", "1000d")
# The positions of POSITIONS as other tools write them: date and time (New York, no zone) and a symbol.
DATED = "date,time,symbol,position\n" + "".join(
    f"2024-03-04,09:{minute}:00,SPY,{position}\n" for minute, position in
    (("30", 0), ("35", 1), ("40", 1), ("45", -1), ("50", -1), ("55", 0)))
TWO_SYMBOLS = "date,time,symbol,position\n" + "".join(
    f"2024-03-04,09:{minute}:00,{symbol},{position * sign}\n"
    for minute, position in (("30", 0), ("35", 1), ("40", 1), ("45", -1), ("50", -1), ("55", 0))
    for symbol, sign in (("SPY", 1), ("QQQ", -1)))


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "positions.csv").write_text(POSITIONS)
    (tmp_path / "bars.csv").write_text(BARS)
    (tmp_path / "dated.csv").write_text(DATED)
    (tmp_path / "two.csv").write_text(TWO_SYMBOLS)
    return tmp_path


def run(url: str, *args: str, gateway: Any = None, client_id: int = 7) -> Result:
    ib = ["--ib-port", str(gateway.port), "--client-id", str(client_id)] if gateway is not None else []
    return CliRunner().invoke(app, ["--db", url, *ib, "execute", *args])


def sim_orders(gateway: Any) -> list[tuple[str, str, float, str]]:
    """The sim's own order log: (symbol, action, quantity, orderRef) of every order it received."""
    return gateway.call(lambda: [(o.contract.symbol, o.action, o.quantity, o.order_ref)
                                 for o in gateway.server.broker.orders.values()])


def by_symbol(gateway: Any) -> Counter:
    return Counter(symbol for symbol, *_ in sim_orders(gateway))


# ---------------------------------------------------------------------------------------------- seen: sim → paper


def test_a_simulation_does_not_block_the_paper_run(sim_gateway, sqlite_url, files):
    """Before: simulate (2 fills), then --paper → 1 order placed, 2 'already placed'. Now: 3 orders."""
    positions = str(files / "a" / "positions.csv")
    simulated = run(sqlite_url, "--positions", positions, "-s", "SPY", "-n", "100", "--bars", str(files / "bars.csv"))
    assert simulated.exit_code == 0, simulated.output
    assert len(read_executions(open_engine(sqlite_url), mode="simulate")) == 2
    paper = run(sqlite_url, "--positions", positions, "-s", "SPY", "-n", "100", "--paper", *REPLAY, "--json",
                gateway=sim_gateway)
    assert paper.exit_code == 0, paper.output
    assert [(s, a, q) for s, a, q, _ in sim_orders(sim_gateway)] == [("SPY", "BUY", 100), ("SPY", "SELL", 200),
                                                                     ("SPY", "BUY", 100)]
    data = json.loads(paper.stdout)
    assert (data["placed"], data["already_placed"]) == (3, 0)
    assert {parse_key(ref)["mode"] for ref in data["placed_refs"]} == {"p"}
    assert {parse_key(r)["conid"] for _, _, _, r in sim_orders(sim_gateway)} == {str(SPY_CONID)}
    again = run(sqlite_url, "--positions", positions, "-s", "SPY", "-n", "100", "--paper", *REPLAY, gateway=sim_gateway)
    assert again.exit_code == 0 and again.stderr.count(": already placed") == 3  # still never twice
    assert len(sim_orders(sim_gateway)) == 3
    resim = run(sqlite_url, "--positions", positions, "-s", "SPY", "-n", "100", "--bars", str(files / "bars.csv"))
    assert resim.exit_code == 0 and resim.stderr.count(": already placed") == 2  # nor does paper block simulate


# ---------------------------------------------------------------------------------------------- seen: SPY → QQQ


def test_two_symbols_from_files_of_the_same_name_do_not_block_each_other(sim_gateway, sqlite_url, files):
    """Before: a/positions.csv for SPY, then b/positions.csv for QQQ --paper → all QQQ orders skipped. Now: all
    placed (the run id is a hash of content and instrument, and the key names the conid)."""
    a, b = str(files / "a" / "positions.csv"), str(files / "b" / "positions.csv")
    simulated = run(sqlite_url, "--positions", a, "-s", "SPY", "-n", "100", "--bars", str(files / "bars.csv"))
    assert simulated.exit_code == 0, simulated.output
    spy = run(sqlite_url, "--positions", a, "-s", "SPY", "-n", "100", "--paper", *REPLAY, gateway=sim_gateway)
    assert spy.exit_code == 0, spy.output
    qqq = run(sqlite_url, "--positions", b, "-s", "QQQ", "-n", "100", "--paper", *REPLAY, "--json", gateway=sim_gateway)
    assert qqq.exit_code == 0, qqq.output
    assert by_symbol(sim_gateway) == {"SPY": 3, "QQQ": 3}
    data = json.loads(qqq.stdout)
    assert (data["symbol"], data["placed"], data["already_placed"]) == ("QQQ", 3, 0)
    assert len({r["run_id"] for r in read_executions(open_engine(sqlite_url))}) == 2  # SPY's (sim + paper), QQQ's


# ---------------------------------------------------------------------------------------------- after an upgrade


def _store_legacy(url: str, ref: str, mode: str, account: str, conid: int, exec_id: str) -> None:
    """An execution as the previous version recorded it: orderRef ``<run id>:<bar>``, run id ``csv-<file name>``."""
    engine = open_engine(url)
    init_db(engine)
    fill = Fill(exec_id, ref, "SPY", Side.BUY, 100, 101.4, 1.0, datetime(2024, 3, 4, 14, 40, tzinfo=timezone.utc),
                mode, account=account)
    record_fills(engine, [fill], conid, "csv-positions.csv")


def test_an_old_format_paper_execution_still_blocks_a_resend_in_paper(sim_gateway, sqlite_url, files):
    """Executions stored before the upgrade (``csv-<file name>:<bar>``): the paper one blocks its paper order, the
    simulated one blocks nothing in paper. Before (no mode in the look-up): both blocked, 1 order; now 2."""
    _store_legacy(sqlite_url, "csv-positions.csv:20240304T143500Z", "paper", "DU1234567", SPY_CONID, "old-paper")
    _store_legacy(sqlite_url, "csv-positions.csv:20240304T144500Z", "simulate", "SIM", placeholder_conid("SPY"),
                  "sim:old")
    result = run(sqlite_url, "--positions", str(files / "a" / "positions.csv"), "-s", "SPY", "-n", "100", "--paper",
                 *REPLAY, "--json", gateway=sim_gateway)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["placed"], data["already_placed"]) == (2, 1)
    assert [parse_key(ref)["bar"] for ref in data["already_placed_refs"]] == ["20240304143500"]
    assert [(s, a, q) for s, a, q, _ in sim_orders(sim_gateway)] == [("SPY", "SELL", 200), ("SPY", "BUY", 100)]


def test_an_old_format_simulated_execution_still_blocks_a_resimulation(sqlite_url, files):
    _store_legacy(sqlite_url, "csv-positions.csv:20240304T143500Z", "simulate", "SIM", placeholder_conid("SPY"),
                  "sim:csv-positions.csv:20240304T143500Z")
    _store_legacy(sqlite_url, "csv-positions.csv:20240304T144500Z", "paper", "DU1234567", SPY_CONID, "old-paper")
    result = run(sqlite_url, "--positions", str(files / "a" / "positions.csv"), "-s", "SPY", "-n", "100", "--bars",
                 str(files / "bars.csv"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["placed"], data["already_placed"]) == (1, 1)  # 14:35 simulated before; 14:45 (paper) is not
    assert [e["side"] for e in data["executions"]] == ["SELL"]


# ---------------------------------------------------------------------------------------------- CSVs as users have them


def test_date_time_symbol_file_executes_without_symbol_option(sqlite_url, files):
    result = run(sqlite_url, "--positions", str(files / "dated.csv"), "-n", "100", "--bars", str(files / "bars.csv"),
                 "--tz", "America/New_York", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["symbol"], data["intents"], data["placed"]) == ("SPY", 3, 2)
    assert [(e["time"], e["side"], e["quantity"], e["price"]) for e in data["executions"]] == [
        ("2024-03-04T14:40:00Z", "BUY", 100, 101.4), ("2024-03-04T14:50:00Z", "SELL", 200, 103.4)]
    without_tz = run(sqlite_url, "--positions", str(files / "dated.csv"), "-n", "100", "--bars",
                     str(files / "bars.csv"))
    assert without_tz.exit_code == 3 and "has no time zone" in without_tz.output


def test_date_time_symbol_file_on_paper(sim_gateway, sqlite_url, files):
    result = run(sqlite_url, "--positions", str(files / "dated.csv"), "-n", "100", "--tz", "America/New_York",
                 "--paper", *REPLAY, gateway=sim_gateway)
    assert result.exit_code == 0, result.output
    assert by_symbol(sim_gateway) == {"SPY": 3}


def test_two_symbols_in_one_file_are_executed_each(sim_gateway, sqlite_url, files):
    result = run(sqlite_url, "--positions", str(files / "two.csv"), "-n", "100", "--tz", "America/New_York",
                 "--paper", *REPLAY, "--json", gateway=sim_gateway)
    assert result.exit_code == 0, result.output
    assert by_symbol(sim_gateway) == {"SPY": 3, "QQQ": 3}
    reports = json.loads(result.stdout)["reports"]
    assert [(r["symbol"], r["placed"]) for r in reports] == [("SPY", 3), ("QQQ", 3)]
    assert len({r["run_id"] for r in reports}) == 2
    assert "execute SPY" in result.stderr and "execute QQQ" in result.stderr  # one table per instrument
    qqq = [(a, q) for s, a, q, _ in sim_orders(sim_gateway) if s == "QQQ"]
    assert qqq == [("SELL", 100), ("BUY", 200), ("SELL", 100)]  # QQQ's targets are SPY's reversed
    again = run(sqlite_url, "--positions", str(files / "two.csv"), "-n", "100", "--tz", "America/New_York",
                "--paper", *REPLAY, gateway=sim_gateway)
    assert again.exit_code == 0 and again.stderr.count(": already placed") == 6
    assert len(sim_orders(sim_gateway)) == 6


def test_two_symbols_with_one_bars_file_are_refused(sqlite_url, files):
    result = run(sqlite_url, "--positions", str(files / "two.csv"), "--tz", "America/New_York", "--bars",
                 str(files / "bars.csv"))
    assert result.exit_code == 3 and "--bars holds one instrument's bars" in result.output
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_a_symbol_mismatch_sends_nothing(sim_gateway, sqlite_url, files):
    result = run(sqlite_url, "--positions", str(files / "dated.csv"), "-s", "QQQ", "-n", "100", "--tz",
                 "America/New_York", "--paper", *REPLAY, gateway=sim_gateway)
    assert result.exit_code == 3, result.output
    assert "is for SPY, not --symbol QQQ" in result.output
    assert sim_orders(sim_gateway) == []
    assert sim_gateway.stats["placeOrder"] == 0
    matching = run(sqlite_url, "--positions", str(files / "dated.csv"), "-s", "spy", "-n", "100", "--tz",
                   "America/New_York", "--paper", *REPLAY, gateway=sim_gateway)
    assert matching.exit_code == 0, matching.output
    assert by_symbol(sim_gateway) == {"SPY": 3}
