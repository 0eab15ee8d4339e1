"""Pacing shared by processes on one gateway: the planner with other processes' bookings injected (pure), the
store ledger's locked check-and-book (SQLite and PostgreSQL, racing threads on separate connections), and two real
``ibkrtool backfill`` processes at once against the sim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from ibkrtool.ib.ledger import StoreLedger, pacer_for
from ibkrtool.ib.pacing import HistRequest, PacingPlanner, PacingRules, SentRequest
from ibkrtool.store import tables
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db

pytestmark = pytest.mark.timeout(180)
UTC = timezone.utc
NO_MARGIN = PacingRules(margin_fraction=0.0, margin_min_s=0.0)
LAG = NO_MARGIN.logged_lag_s  # 3 s at scale 1
GATEWAY = "127.0.0.1:7497"
T0 = 1_795_000_000.0


def req(i: int, contract: str = "1", what: str = "TRADES", paced: bool = True) -> HistRequest:
    return HistRequest(contract, what, "1 secs", f"20261120-{i:08d}", "1800 S", paced)


# ---------------------------------------------------------------- the planner, pure


def test_another_process_booking_counts_in_flight_until_the_bound_then_at_it() -> None:
    planner = PacingPlanner(rules=NO_MARGIN)
    planner.set_others([SentRequest(100.0, req(0))])
    # identical request, asked 1 s after the other booked it: in flight, i.e. stamped now (101) → 116
    assert planner.earliest(req(0), 101.0) == pytest.approx(116.0)
    # past the bound the booking sits at 100 + 3 s: 118 at the latest, never before the stamp IB could give it
    assert planner.earliest(req(0), 110.0) == pytest.approx(118.0)
    assert [s.at for s in planner.sent] == [pytest.approx(103.0)] and planner.own == ()
    assert planner.earliest(req(1), 101.0) == 101.0  # another request: no wait


def test_other_processes_share_the_ten_minute_budget_but_not_the_message_rate() -> None:
    planner = PacingPlanner(rules=NO_MARGIN)
    planner.set_others([SentRequest(float(i), req(i, contract=f"{i}")) for i in range(30)])
    for i in range(30):
        planner.record(req(100 + i, contract=f"x{i}"), 50.0)
    assert planner.earliest(req(200, contract="z"), 60.0) == pytest.approx(600.0 + LAG)  # oldest other + bound
    unpaced = PacingPlanner(rules=NO_MARGIN)
    unpaced.set_others([SentRequest(0.0, req(i, contract=f"{i}", paced=False)) for i in range(100)])
    # 40 messages per second is a per-connection limit: 100 requests of another process do not slow ours
    assert unpaced.earliest(req(500, paced=False), 0.5) == 0.5


def test_a_copy_keeps_the_other_processes_bookings() -> None:
    planner = PacingPlanner(rules=NO_MARGIN)
    planner.set_others([SentRequest(0.0, req(i, contract=f"{i}")) for i in range(60)])
    assert planner.copy().earliest(req(99, contract="z"), 10.0) == pytest.approx(600.0 + LAG)
    planner.set_others([])  # replaced, not added to
    assert planner.earliest(req(99, contract="z"), 10.0) == 10.0


# ---------------------------------------------------------------- the store ledger


def _planner() -> PacingPlanner:
    return PacingPlanner(rules=NO_MARGIN)


def _try(ledger: StoreLedger, request: HistRequest, now: float) -> bool:
    """One locked round at ``now`` (a fixed clock); True when booked."""
    def decide(others):
        ledger.planner.set_others(others)
        return now, ledger.planner.earliest(request, now)

    _, earliest = ledger.book(request, decide)
    if earliest <= now:
        ledger.planner.record(request, now)
        return True
    return False


def test_bookings_of_one_process_hold_back_another_and_its_own_are_not_counted_twice(db_url: str) -> None:
    engine = open_engine(db_url)
    init_db(engine)
    a = StoreLedger(engine, GATEWAY, _planner(), clock=lambda: T0)
    b = StoreLedger(open_engine(db_url), GATEWAY, _planner(), clock=lambda: T0)
    assert all(_try(a, req(i, contract="1"), T0) for i in range(5))  # 5 same-contract requests: burst full
    assert len(a.others()) == 0 and len(b.others()) == 5  # a tells its own rows apart by their ids
    assert not _try(b, req(9, contract="1"), T0)  # the sixth within 2 s, from another process: refused
    assert _try(b, req(9, contract="2"), T0)  # another contract still fits
    with engine.connect() as conn:
        rows = conn.execute(select(tables.hist_requests.c.conid)).all()
    assert sorted(r.conid for r in rows) == [1] * 5 + [2]  # a refused round writes nothing
    other = StoreLedger(engine, "127.0.0.1:4002", _planner(), clock=lambda: T0)
    assert other.others() == [] and _try(other, req(9, contract="1"), T0)  # another gateway, another budget


def test_racing_processes_never_overbook_a_window(db_url: str) -> None:
    """Eight ledgers on their own connections race for one 10-minute window at the same instant: exactly 60
    bookings win, whatever the interleaving (the check and the insert are one locked transaction)."""
    init_db(open_engine(db_url))
    ledgers = [StoreLedger(open_engine(db_url), GATEWAY, _planner(), clock=lambda: T0) for _ in range(8)]
    won = [0] * len(ledgers)
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            for i in range(20):
                won[k] += _try(ledgers[k], req(i, contract=str(100 * k + i)), T0)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(ledgers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(won) == 60
    with open_engine(db_url).connect() as conn:
        assert len(conn.execute(select(tables.hist_requests.c.id)).all()) == 60


def test_pacer_for_checks_every_release_against_the_other_process(db_url: str) -> None:
    """Two pacers on one gateway and one fake clock: the second waits for the first's window to pass."""
    import asyncio

    engine = open_engine(db_url)
    init_db(engine)
    clock = [T0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    first = pacer_for(engine, GATEWAY, 1.0, clock=lambda: clock[0], sleep=sleep)
    second = pacer_for(open_engine(db_url), GATEWAY, 1.0, clock=lambda: clock[0], sleep=sleep)

    async def run() -> list[float]:
        for i in range(60):
            at = await first.acquire(req(i, contract=str(1000 + i)))
            first.answered(req(i, contract=str(1000 + i)), at)
        return [await second.acquire(req(0, contract="2000"))]

    [released] = asyncio.run(run())
    rules = PacingRules()
    assert released == pytest.approx(T0 + 600.0 + rules.logged_lag_s + rules.margin(600.0), abs=1e-3)
    assert second.bookings >= 2 and first.bookings == 60  # the second tried, was told to wait, then booked


# ---------------------------------------------------------------- real processes against the sim


def _ranges(url: str) -> dict[int, tuple[datetime, datetime]]:
    t = tables.hist_requests.c
    with open_engine(url).connect() as conn:
        rows = conn.execute(select(t.conid, t.requested_at)).all()
    spans: dict[int, list[datetime]] = {}
    for conid, at in rows:
        spans.setdefault(conid, []).append(at)
    return {c: (min(v), max(v)) for c, v in spans.items()}


def test_two_backfill_processes_at_once_share_one_gateways_budget(sim_factory, db_url: str) -> None:
    """SPY and AAPL, one process each, started together: 128 requests of 1-second bars, more than two (scaled)
    10-minute windows. IB's rules hold across the two: no violation, no retry. (Their time against one process
    fetching both: bench/pacing_concurrent.py.)"""
    sim = sim_factory(pacing_scale=0.01)
    init_db(open_engine(db_url))
    env = {**os.environ, "PYTHONPATH": os.getcwd()}

    def cmd(client_id: int, symbol: str) -> list[str]:
        return [sys.executable, "-m", "ibkrtool", "--db", db_url, "--ib-port", str(sim.port), "--client-id",
                str(client_id), "-q", "backfill", "--json", "--symbol", symbol, "--bar-size", "1s",
                "--start", "2026-11-18", "--end", "2026-11-19", "--all-hours", "--pacing-scale", "0.01"]

    procs = [subprocess.Popen(cmd(11 + i, s), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, s in enumerate(("SPY", "AAPL"))]
    outputs = [p.communicate(timeout=150) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    reports = [json.loads(out) for out, _ in outputs]
    assert [r["requests_planned"] for r in reports] == [64, 64]
    assert [r["retries"] for r in reports] == [0, 0]
    assert [r["requests_sent"] for r in reports] == [64, 64]
    assert sim.violations == 0
    assert sim.stats["reqHistoricalData"] == 128
    spans = list(_ranges(db_url).values())
    assert len(spans) == 2
    assert max(s[0] for s in spans) < min(s[1] for s in spans)  # their bookings interleave: they ran together
