"""The planner's schedule is accepted by the sim; a sequence breaking each IB rule is refused with 162.

The sim runs with ``pacing_scale=0.01`` (10-minute window = 6 s, 15 s = 0.15 s, 2 s = 0.02 s); its pacing
enforcement (sim/pacing.py) is written independently of ib/pacing.py.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from ibkrtool.errors import PacingError
from ibkrtool.ib.compat import Stock
from ibkrtool.ib.history import BarsRequest, end_text, fetch_bars
from ibkrtool.ib.pacer import Pacer
from ibkrtool.ib.pacing import HistRequest, PacingPlanner
from ibkrtool.ib.session import ConnectOptions, ib_session
from ibkrtool.model import BarSize

pytestmark = pytest.mark.timeout(60)
UTC = timezone.utc
ONE_S = BarSize.parse("1s")
BASE = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)


def request(i: int, what: str = "TRADES") -> BarsRequest:
    return BarsRequest(end_text(BASE + timedelta(minutes=i)), "60 S", "1 secs", what, True)


async def _send(sim, requests: list[BarsRequest], gap_s: float = 0.0) -> list[str]:
    """Send ``requests`` one after another (``gap_s`` apart); return 'ok' or 'pacing' for each."""
    outcome = []
    async with ib_session(ConnectOptions(port=sim.port)) as ib:
        spy = Stock("SPY", "SMART", "USD")
        await ib.qualifyContractsAsync(spy)
        for r in requests:
            try:
                await fetch_bars(ib, spy, r, ONE_S, timeout_s=10)
                outcome.append("ok")
            except PacingError:
                outcome.append("pacing")
            await asyncio.sleep(gap_s)
    return outcome


def test_the_planners_schedule_passes_with_zero_violations(sim_gateway) -> None:
    async def run() -> int:
        pacer = Pacer(PacingPlanner(scale=0.01))
        async with ib_session(ConnectOptions(port=sim_gateway.port)) as ib:
            spy = Stock("SPY", "SMART", "USD")
            await ib.qualifyContractsAsync(spy)
            bars = 0
            for i in range(70):  # more than one 60-request window; bursts of the same contract included
                r = request(i)
                booking = HistRequest("SPY", r.what_to_show, r.bar_size, r.end, r.duration)
                at = await pacer.acquire(booking)
                bars += len(await fetch_bars(ib, spy, r, ONE_S, timeout_s=10,
                                             on_answered=lambda b=booking, t=at: pacer.answered(b, t)))
            return bars

    assert asyncio.run(run()) > 0
    assert sim_gateway.stats["reqHistoricalData"] == 70
    assert sim_gateway.violations == 0


def test_identical_request_within_15_seconds_is_refused(sim_gateway) -> None:
    assert asyncio.run(_send(sim_gateway, [request(0), request(0)])) == ["ok", "pacing"]
    assert sim_gateway.violations == 1


def test_six_requests_same_contract_within_2_seconds_is_refused(sim_factory) -> None:
    # unscaled (2 s): the sim's own processing time (cold market data) cannot spread six requests beyond it
    sim = sim_factory(pacing_scale=1.0)

    async def run() -> list[str]:
        async with ib_session(ConnectOptions(port=sim.port)) as ib:
            spy = Stock("SPY", "SMART", "USD")
            await ib.qualifyContractsAsync(spy)
            results = await asyncio.gather(*[fetch_bars(ib, spy, request(i), ONE_S, timeout_s=10) for i in range(6)],
                                           return_exceptions=True)
            return ["pacing" if isinstance(r, PacingError) else "ok" for r in results]

    outcome = asyncio.run(run())
    assert outcome == ["ok"] * 5 + ["pacing"]
    assert sim.violations == 1


def test_sixty_first_request_in_ten_minutes_is_refused(sim_gateway) -> None:
    outcome = asyncio.run(_send(sim_gateway, [request(i) for i in range(61)], gap_s=0.025))
    assert outcome == ["ok"] * 60 + ["pacing"]


def test_bid_ask_counts_twice(sim_gateway) -> None:
    outcome = asyncio.run(_send(sim_gateway, [request(i, "BID_ASK") for i in range(31)], gap_s=0.025))
    assert outcome == ["ok"] * 30 + ["pacing"]
