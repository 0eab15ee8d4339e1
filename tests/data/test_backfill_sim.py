"""``ibkrtool backfill`` end to end: the real ib_async client against the sim, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ibkrtool.cli.main import app
from ibkrtool.store import tables
from ibkrtool.store.bars import read_bars
from ibkrtool.store.contracts import find_contract
from ibkrtool.store.engine import open_engine

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()
UTC = timezone.utc
DAY = "2026-11-19"  # a Thursday before the sim's clock (2026-11-20T15:00Z)


def backfill(url: str, port: int, *args: str) -> dict:
    base = ["--db", url, "--ib-port", str(port), "backfill", "--json", "--pacing-scale", "0.01"]
    result = runner.invoke(app, [*base, *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def sim_bars(sim, conid: int, bar_size: str, start: datetime, end: datetime, what: str, rth: bool):
    from ibkrtool.sim.contracts import contract_by_conid

    return sim.call(sim.server.market.bars, contract_by_conid(conid), bar_size, start, end, what, rth)


def assert_same(stored, expected) -> None:
    assert len(stored) == len(expected) > 0
    assert list(stored.index.to_pydatetime()) == [b.start for b in expected]
    for col, attr in [("open", "open"), ("high", "high"), ("low", "low"), ("close", "close"),
                      ("volume", "volume"), ("wap", "wap"), ("bar_count", "count")]:
        want = np.array([getattr(b, attr) for b in expected], dtype="float64")
        want[want < 0] = np.nan
        np.testing.assert_allclose(stored[col].to_numpy(), want, rtol=1e-9, equal_nan=True, err_msg=col)


def test_backfill_equals_the_sims_bars_and_a_rerun_sends_nothing(sim_gateway, db_url) -> None:
    report = backfill(db_url, sim_gateway.port, "--symbol", "SPY", "--bar-size", "1s", "--start", DAY, "--end", DAY)
    assert report["requests_planned"] == 13 and report["requests_sent"] >= 13  # 6.5 h of 1-s bars / 1800 S
    engine = open_engine(db_url)
    conid = find_contract(engine, "SPY").conid
    lo, hi = datetime(2026, 11, 19, 14, 30, tzinfo=UTC), datetime(2026, 11, 19, 21, 0, tzinfo=UTC)
    assert_same(read_bars(engine, conid, "1s", "TRADES", lo, hi), sim_bars(sim_gateway, conid, "1 secs", lo, hi,
                                                                             "TRADES", True))
    before = sim_gateway.stats["reqHistoricalData"]
    again = backfill(db_url, sim_gateway.port, "--symbol", "SPY", "--bar-size", "1s", "--start", DAY, "--end", DAY)
    assert again["requests_planned"] == 0 and again["bars_stored"] == 0
    assert sim_gateway.stats["reqHistoricalData"] == before
    assert sim_gateway.violations == 0


def test_forex_defaults_to_midpoint_and_five_minute_bars_pack_days(sim_gateway, sqlite_url) -> None:
    report = backfill(sqlite_url, sim_gateway.port, "--symbol", "EUR.USD", "--bar-size", "5m",
                      "--start", "2026-11-16", "--end", DAY)
    [series] = report["series"]
    assert series["what_to_show"] == "MIDPOINT" and report["requests_planned"] == 1
    engine = open_engine(sqlite_url)
    conid = find_contract(engine, "EUR.USD").conid
    lo, hi = datetime(2026, 11, 15, 22, 0, tzinfo=UTC), datetime(2026, 11, 19, 22, 0, tzinfo=UTC)
    stored = read_bars(engine, conid, "5m", "MIDPOINT", lo, hi)
    assert_same(stored, sim_bars(sim_gateway, conid, "5 mins", lo, hi, "MIDPOINT", True))
    assert stored["volume"].isna().all()  # IB sends -1 for non-TRADES volume


def test_dry_run_plans_without_requesting(sim_gateway, sqlite_url) -> None:
    report = backfill(sqlite_url, sim_gateway.port, "--symbol", "SPY", "--symbol", "AAPL", "--bar-size", "1s",
                      "--start", "2026-11-16", "--end", DAY, "--all-hours", "--dry-run")
    assert report["dry_run"] and report["requests_planned"] == 2 * 4 * 32  # 16 h = 32 × 1800 S per day
    assert report["estimated_s"] > 6.0  # 256 requests need more than four 10-minute windows (scaled by 0.01)
    assert sim_gateway.stats["reqHistoricalData"] == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--start", "2026-11-19", "--end", "2026-11-18"], "must be before"),
        (["--bar-size", "7m"], "allowed: 1s, 5s"),
        (["--start", "2026-11-19T10:00"], "no time zone"),
    ],
)
def test_bad_input_exits_3_before_any_request(sqlite_url, args: list[str], fragment: str) -> None:
    result = runner.invoke(app, ["--db", sqlite_url, "--ib-port", "1", "backfill", "--symbol", "SPY", *args])
    assert result.exit_code == 3, result.output
    assert fragment in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--start", "2026-11-23", "--end", "2026-11-24"], "future"),  # the sim's clock is 2026-11-20
        (["--start", "2030-01-02", "--end", "2030-01-03"], "future"),
        (["--bar-size", "1s", "--start", "2025-01-02", "--end", "2025-01-03"], "6 months"),
    ],
)
def test_ranges_are_judged_on_the_gateway_clock_before_any_request(sim_gateway, sqlite_url, args: list[str],
                                                                   fragment: str) -> None:
    result = runner.invoke(app, ["--db", sqlite_url, "--ib-port", str(sim_gateway.port), "backfill", "--symbol",
                                 "SPY", *args])
    assert result.exit_code == 3, result.output
    assert fragment in result.output
    assert sim_gateway.stats["reqHistoricalData"] == 0


def _coverage_rows(url: str) -> int:
    with open_engine(url).connect() as conn:
        return conn.execute(select(func.count()).select_from(tables.coverage)).scalar()


def test_kill_9_mid_backfill_then_rerun_stores_exactly_the_same(sim_gateway, sim_factory, tmp_path) -> None:
    killed, clean = f"sqlite:///{tmp_path}/killed.db", f"sqlite:///{tmp_path}/clean.db"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}

    def cmd(url: str) -> list[str]:
        return [sys.executable, "-m", "ibkrtool", "--db", url, "--ib-port", str(sim_gateway.port), "-q", "backfill",
                "--symbol", "SPY", "--bar-size", "1s", "--start", DAY, "--end", DAY, "--all-hours",
                "--pacing-scale", "0.01"]

    proc = subprocess.Popen(cmd(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(f"{tmp_path}/killed.db") and _safe_rows(killed) >= 5:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the backfill finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _coverage_rows(killed)
    assert 5 <= partial < 32  # 16 h of 1-s bars = 32 requests
    resumed = subprocess.run(cmd(killed), env=env, capture_output=True, text=True, timeout=90)
    assert resumed.returncode == 0, resumed.stderr
    assert sim_gateway.violations == 0  # the rerun honoured the killed run's bookings (same database)
    # the uninterrupted reference, on a second identical sim (its pacing budget is separate from this database's)
    reference = sim_factory()
    backfill(clean, reference.port, *cmd(clean)[cmd(clean).index("--symbol"):])
    a = read_bars(open_engine(killed), 756733, "1s", "TRADES")
    b = read_bars(open_engine(clean), 756733, "1s", "TRADES")
    assert len(a) == len(b) > 20_000
    assert a.equals(b)


def _safe_rows(url: str) -> int:
    try:
        return _coverage_rows(url)
    except Exception:  # the database is still being created by the child
        return 0


def test_no_data_becomes_an_empty_covered_range(sim_factory, sqlite_url) -> None:
    sim = sim_factory(faults="no-data=SPY")
    report = backfill(sqlite_url, sim.port, "--symbol", "SPY", "--bar-size", "5m", "--start", DAY, "--end", DAY)
    assert report["requests_planned"] == 1 and report["empty_chunks"] == 1 and report["bars_stored"] == 0
    assert _coverage_rows(sqlite_url) == 1
    again = backfill(sqlite_url, sim.port, "--symbol", "SPY", "--bar-size", "5m", "--start", DAY, "--end", DAY)
    assert again["requests_planned"] == 0


def test_pacing_refusal_backs_off_and_retries(sim_gateway, sqlite_url) -> None:
    """Another client used up the 10-minute budget behind our back: 162, back off, retry, finish complete."""
    import asyncio

    from ibkrtool.data.backfill import BackfillOptions, run_backfill
    from ibkrtool.ib.gateway import open_gateway
    from ibkrtool.ib.pacer import Pacer
    from ibkrtool.ib.pacing import PacingPlanner
    from ibkrtool.ib.session import ConnectOptions
    from ibkrtool.model import BarSize, Instrument
    from ibkrtool.store.migrate import init_db

    engine = open_engine(sqlite_url)
    init_db(engine)

    async def run():
        async with open_gateway(ConnectOptions(port=sim_gateway.port, client_id=2)) as gateway:
            spy = await gateway.qualify(Instrument.parse("SPY"))
            gateway.pacer = Pacer(PacingPlanner(scale=0.01))  # in memory: these never reach the ledger
            for i in range(60):
                end = datetime(2026, 11, 18, 15, 0, tzinfo=UTC) + timedelta(minutes=i)
                await gateway.request_bars(spy, BarSize.parse("1s"), "TRADES", end - timedelta(seconds=60), end,
                                           True)
                await asyncio.sleep(0.025)
            options = BackfillOptions(("SPY",), "1s", None, f"{DAY}T14:30:00Z", f"{DAY}T15:00:00Z", pacing_scale=0.01)
            return await run_backfill(gateway, engine, options, datetime(2026, 11, 22, tzinfo=UTC))

    report = asyncio.run(run())
    assert report.retries >= 1 and report.requests_planned == 1
    conid = find_contract(engine, "SPY").conid
    lo, hi = datetime(2026, 11, 19, 14, 30, tzinfo=UTC), datetime(2026, 11, 19, 15, 0, tzinfo=UTC)
    expected = sim_bars(sim_gateway, conid, "1 secs", lo, hi, "TRADES", True)
    assert_same(read_bars(engine, conid, "1s", "TRADES"), expected)


def test_two_backfills_back_to_back_share_the_pacing_budget(sim_gateway, sqlite_url, tmp_path) -> None:
    """64 requests inside one (scaled) 10-minute window from two runs: the second run waits for the first's."""
    first = backfill(sqlite_url, sim_gateway.port, "--symbol", "SPY", "--bar-size", "1s", "--start", DAY,
                     "--end", DAY, "--all-hours")
    symbols = tmp_path / "symbols.txt"
    symbols.write_text("# one symbol per line\nSPY  # the ETF\n\n")
    second = backfill(sqlite_url, sim_gateway.port, "--symbols-file", str(symbols), "--bar-size", "1s",
                      "--start", "2026-11-18", "--end", "2026-11-18", "--all-hours")
    assert first["requests_planned"] == second["requests_planned"] == 32
    assert second["waited_s"] > 0 and second["retries"] == 0
    assert sim_gateway.violations == 0


def test_unanswered_requests_end_with_exit_4(sim_factory, sqlite_url) -> None:
    sim = sim_factory(faults="delay-ms=300")
    result = runner.invoke(app, ["--db", sqlite_url, "--ib-port", str(sim.port), "backfill", "--symbol", "SPY",
                                 "--bar-size", "1m", "--start", DAY, "--end", DAY, "--timeout", "0.1",
                                 "--pacing-scale", "0.01"])
    assert result.exit_code == 4, result.output
    assert "IB did not answer historical requests for SPY" in result.output


def test_daily_bars_stop_at_the_last_session_the_gateway_has_closed(sim_gateway, sqlite_url) -> None:
    report = backfill(sqlite_url, sim_gateway.port, "--symbol", "SPY", "--bar-size", "1d", "--start", "2026-11-02",
                      "--end", "2026-11-20")
    engine = open_engine(sqlite_url)
    stored = read_bars(engine, find_contract(engine, "SPY").conid, "1d", "TRADES")
    # the sim's clock is Friday 2026-11-20 15:00 UTC: Friday's session is still open, so its bar is not final
    assert report["requests_planned"] == 1 and len(stored) == 14
    # IB dates daily bars; they are stored at their session's open (09:30 New York), as resample stamps them
    assert stored.index[0] == datetime(2026, 11, 2, 14, 30, tzinfo=UTC)
    assert stored.index[-1] == datetime(2026, 11, 19, 14, 30, tzinfo=UTC)
    lo, hi = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)
    expected = sim_bars(sim_gateway, 756733, "1 day", lo, hi, "TRADES", True)
    assert list(stored.index) == [b.start for b in expected]
    np.testing.assert_allclose(stored["close"].to_numpy(), [b.close for b in expected], rtol=1e-9)


def test_several_requests_in_flight_store_the_same_bars(sim_gateway, sqlite_url) -> None:
    import asyncio

    from ibkrtool.data.backfill import BackfillOptions, run_backfill
    from ibkrtool.ib.gateway import open_gateway
    from ibkrtool.ib.session import ConnectOptions
    from ibkrtool.store.migrate import init_db

    engine = open_engine(sqlite_url)
    init_db(engine)
    progress: list[tuple[int, int]] = []

    async def run():
        async with open_gateway(ConnectOptions(port=sim_gateway.port)) as gateway:
            options = BackfillOptions(("SPY",), "1s", None, DAY, DAY, pacing_scale=0.01, in_flight=3)
            return await run_backfill(gateway, engine, options, datetime(2026, 11, 22, tzinfo=UTC),
                                      on_progress=lambda done, planned, bars, eta: progress.append((done, planned)))

    report = asyncio.run(run())
    assert report.requests_planned == 13 and progress[-1] == (13, 13) and len(progress) == 13
    lo, hi = datetime(2026, 11, 19, 14, 30, tzinfo=UTC), datetime(2026, 11, 19, 21, 0, tzinfo=UTC)
    assert_same(read_bars(engine, 756733, "1s", "TRADES"), sim_bars(sim_gateway, 756733, "1 secs", lo, hi, "TRADES",
                                                                     True))
    assert sim_gateway.violations == 0
