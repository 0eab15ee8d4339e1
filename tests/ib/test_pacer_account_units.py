"""Pure pieces around IB: the asyncio pacer on a fake clock, account summaries, error classification."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from ibkrtool.ib.account import account_mode, summarise
from ibkrtool.ib.errors import HistoricalOutcome, classify_historical, is_connectivity, is_informational
from ibkrtool.ib.pacer import Pacer
from ibkrtool.ib.pacing import HistRequest, PacingPlanner, PacingRules


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_pacer_sleeps_exactly_until_the_planner_allows() -> None:
    clock = FakeClock()
    booked: list[tuple[HistRequest, float]] = []
    rules = PacingRules(margin_fraction=0.0, margin_min_s=0.0)
    pacer = Pacer(PacingPlanner(rules=rules), clock=clock, sleep=clock.sleep,
                  on_sent=lambda r, at: booked.append((r, at)))
    request = HistRequest("1", "TRADES", "1 secs", "e", "1800 S")

    async def run() -> list[float]:
        first = await pacer.acquire(request)
        pacer.sent(request, first)
        pacer.answered(request, first)  # answered at once: booked at 0
        second = await pacer.acquire(request)  # identical: 15 s later
        return [first, second]

    assert asyncio.run(run()) == [0.0, 15.0]
    assert clock.slept == [15.0] and pacer.waited_s == 15.0 and booked == [(request, 0.0)]


def test_requests_still_in_flight_count_as_stamped_now() -> None:
    """IB may read a queued request late; until its answer arrives it counts at the current instant."""
    clock = FakeClock()
    pacer = Pacer(PacingPlanner(rules=PacingRules(margin_fraction=0.0, margin_min_s=0.0)), clock=clock,
                  sleep=clock.sleep)
    requests = [HistRequest("1", "TRADES", "1 secs", f"end{i}", "1800 S") for i in range(6)]

    async def run() -> float:
        for request in requests[:5]:
            assert await pacer.acquire(request) == 0.0
        clock.t = 10.0
        pacer.answered(requests[0], 0.0)  # four remain in flight, stamped "now" = 10 s
        return await pacer.acquire(requests[5])

    # five bookings at 10 s fill the 2-second burst window for this contract; a send-time view would say 10 s
    assert asyncio.run(run()) == 12.0
    assert clock.slept == [2.0]


def test_requests_waiting_to_be_released_are_counted() -> None:
    """The backfill writes answered chunks freely only once nothing waits for release (``Pacer.waiting``)."""
    clock = FakeClock()
    pacer = Pacer(PacingPlanner(rules=PacingRules(margin_fraction=0.0, margin_min_s=0.0)), clock=clock,
                  sleep=clock.sleep)
    request = HistRequest("1", "TRADES", "1 secs", "e", "1800 S")
    seen: list[int] = []

    async def sleep(seconds: float) -> None:
        seen.append(pacer.waiting)
        await FakeClock.sleep(clock, seconds)

    pacer.sleep = sleep

    async def run() -> None:
        await pacer.acquire(request)
        pacer.answered(request, 0.0)
        await pacer.acquire(request)  # identical: waits 15 s, counted as waiting meanwhile

    asyncio.run(run())
    assert seen == [1] and pacer.waiting == 0 and pacer.outstanding == 1


def test_a_reloaded_log_books_each_request_later_than_it_was_sent(sqlite_url: str) -> None:
    """The log holds send times; IB stamps a request when it reads it, so a new run counts it ``logged_lag_s`` later
    (3 s of the 10-minute window), which is what keeps two backfills back to back inside IB's budget."""
    from ibkrtool.ib.ledger import pacer_for
    from ibkrtool.store.engine import open_engine
    from ibkrtool.store.migrate import init_db
    from ibkrtool.store.pacing_log import LoggedRequest, log_request

    engine = open_engine(sqlite_url)
    init_db(engine)
    sent = 1_795_000_000.0
    for i in range(60):  # a full 10-minute budget, all sent at once
        log_request(engine, "127.0.0.1:7497", LoggedRequest(datetime.fromtimestamp(sent, timezone.utc), 756733,
                                                            "1 secs", "TRADES", "1800 S", f"20261120-15:{i:02d}:00"))
    pacer = pacer_for(engine, "127.0.0.1:7497", 1.0, clock=lambda: sent + 600.5)
    assert [b.at for b in pacer.planner.sent] == pytest.approx([sent + 3.0] * 60)
    nxt = HistRequest("756733", "TRADES", "1 secs", "20261120-16:00:00", "1800 S")
    # 600.5 s after the send a send-time view would release it; the lagged booking holds it to 603 s + margin
    assert pacer.planner.earliest(nxt, sent + 600.5) == pytest.approx(sent + 603.0 + PacingRules().margin(600.0))
    assert PacingRules().scaled(0.01).logged_lag_s == pytest.approx(0.03)


@dataclass
class Value:
    account: str
    tag: str
    value: str
    currency: str


def test_account_summary_from_ib_values() -> None:
    values = [Value("U7654321", "AccountType", "INDIVIDUAL", ""), Value("U7654321", "NetLiquidation", "1234.5", "EUR"),
              Value("U7654321", "BuyingPower", "x", "EUR"), Value("DU1", "NetLiquidation", "1", "USD")]
    summary = summarise("U7654321", values, datetime(2026, 11, 20, tzinfo=timezone.utc))
    assert (summary.mode, summary.account_type, summary.currency) == ("live", "INDIVIDUAL", "EUR")
    assert summary.figures["net_liquidation"] == 1234.5 and summary.figures["buying_power"] is None
    assert len(summary.values) == 3 and account_mode("DU1234567") == "paper"


def test_error_codes_are_grouped() -> None:
    pacing = "Historical Market Data Service error message:Historical data request pacing violation"
    assert classify_historical(162, pacing) is HistoricalOutcome.PACING
    assert classify_historical(162, "HMDS query returned no data: SPY@SMART Trades") is HistoricalOutcome.NO_DATA
    assert classify_historical(162, "No market data permissions for NYSE STK") is HistoricalOutcome.NO_PERMISSION
    assert classify_historical(162, "API historical data query cancelled: 28") is HistoricalOutcome.CANCELLED
    assert classify_historical(321, "Historical data bar size setting is invalid") is HistoricalOutcome.REJECTED
    assert is_informational(2104) and is_informational(2158) and not is_informational(162)
    assert is_connectivity(1100) and is_connectivity(1102) and not is_connectivity(200)


def test_waiting_time_counts_overlapping_waits_once() -> None:
    """Two requests waiting at the same time for the same 15 s are 15 s of waiting, not 30 (the summary once
    reported more waiting than wall time)."""

    class SharedClock(FakeClock):
        async def sleep(self, seconds: float) -> None:  # concurrent sleepers share one timeline
            self.slept.append(seconds)
            await asyncio.sleep(0)
            self.t = max(self.t, 15.0)

    clock = SharedClock()
    rules = PacingRules(margin_fraction=0.0, margin_min_s=0.0)
    pacer = Pacer(PacingPlanner(rules=rules), clock=clock, sleep=clock.sleep)
    first = HistRequest("1", "TRADES", "1 secs", "a", "1800 S")

    async def run() -> None:
        sent = await pacer.acquire(first)
        pacer.answered(first, sent)
        again = [HistRequest("1", "TRADES", "1 secs", "a", "1800 S") for _ in range(2)]
        await asyncio.gather(*(pacer.acquire(r) for r in again[:1]), pacer.penalty(15.0))

    asyncio.run(run())
    assert clock.slept == [15.0, 15.0]
    assert pacer.waited_s == 15.0
