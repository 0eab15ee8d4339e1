"""Conformance: streams that follow the sim clock — keepUpToDate bars, 5-second real-time bars, tick-by-tick."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest
from ib_async import Forex, Stock

pytestmark = pytest.mark.timeout(30)


def _spy(ib):
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    return spy


def test_keep_up_to_date_grows_and_starts_new_bars(sim_factory, ib_connect, wait_until):
    gw = sim_factory(speed=30)
    ib = ib_connect(gw)
    bars = ib.reqHistoricalData(_spy(ib), "", "300 S", "5 secs", "TRADES", False, 2, keepUpToDate=True)
    initial = len(bars)
    first_last = bars[-1].date
    updates = []
    bars.updateEvent += lambda bar_list, has_new_bar: updates.append(has_new_bar)
    assert wait_until(ib, lambda: len(bars) >= initial + 3)
    assert any(not new for new in updates) or len(updates) >= 3
    dates = [b.date for b in bars]
    assert dates == sorted(set(dates)) and dates[initial - 1] == first_last
    assert all(b - a == timedelta(seconds=5) for a, b in zip(dates[initial - 1:-1], dates[initial:], strict=True))
    ib.cancelHistoricalData(bars)
    assert wait_until(ib, lambda: gw.stats["cancelHistoricalData"] == 1)


def test_real_time_bars_every_five_sim_seconds(sim_factory, ib_connect, wait_until):
    gw = sim_factory(speed=25)
    ib = ib_connect(gw)
    bars = ib.reqRealTimeBars(_spy(ib), 5, "TRADES", False)
    assert wait_until(ib, lambda: len(bars) >= 4)
    times = [b.time for b in bars]
    assert all(t.second % 5 == 0 and t.tzinfo is not None for t in times)
    assert all(b - a == timedelta(seconds=5) for a, b in pairwise(times))
    assert all(b.low <= b.open_ <= b.high and b.volume > 0 for b in bars)
    ib.cancelRealTimeBars(bars)


def test_real_time_bars_refuse_other_sizes(sim_gateway, ib_connect, errors, wait_until):
    ib = ib_connect(sim_gateway)
    seen = errors(ib)
    ib.reqRealTimeBars(_spy(ib), 10, "TRADES", False)
    assert wait_until(ib, lambda: any(code == 420 for _, code, _ in seen))


def test_tick_by_tick_all_last_and_bid_ask(sim_factory, ib_connect, wait_until):
    gw = sim_factory(speed=5)
    ib = ib_connect(gw)
    spy = _spy(ib)
    trades, quotes = [], []

    def collect(tickers):
        for t in tickers:
            for tick in t.tickByTicks:
                (trades if hasattr(tick, "price") else quotes).append(tick)

    ib.pendingTickersEvent += collect
    ib.reqTickByTickData(spy, "AllLast")
    ib.reqTickByTickData(spy, "BidAsk")
    assert wait_until(ib, lambda: len(trades) >= 5 and len(quotes) >= 2)
    assert all(t.price > 0 and t.size > 0 for t in trades)
    assert all(q.bidPrice < q.askPrice for q in quotes)
    ib.cancelTickByTickData(spy, "AllLast")
    ib.cancelTickByTickData(spy, "BidAsk")
    assert wait_until(ib, lambda: gw.stats["cancelTickByTickData"] == 2)


def test_tick_by_tick_midpoint_forex(sim_factory, ib_connect, wait_until):
    gw = sim_factory(speed=5)
    ib = ib_connect(gw)
    eur = Forex("EURUSD")
    ib.qualifyContracts(eur)
    mids = []
    ib.pendingTickersEvent += lambda tickers: mids.extend(x for t in tickers for x in t.tickByTicks)
    ib.reqTickByTickData(eur, "MidPoint")
    assert wait_until(ib, lambda: len(mids) >= 2)
    assert all(0.5 < m.midPoint < 2.0 for m in mids)


def test_account_summary_tags(sim_gateway, ib_connect):
    ib = ib_connect(sim_gateway)
    values = {v.tag: v for v in ib.accountSummary()}
    for tag in ("NetLiquidation", "TotalCashValue", "BuyingPower", "AvailableFunds", "ExcessLiquidity",
                "GrossPositionValue", "AccountType", "Currency"):
        assert tag in values, tag
    assert values["AccountType"].value == "INDIVIDUAL" and values["Currency"].value == "USD"
    assert float(values["NetLiquidation"].value) == 1_000_000.0
    assert values["NetLiquidation"].account == "DU1234567"


def test_market_data_snapshot_and_stream(sim_factory, ib_connect, wait_until):
    gw = sim_factory(speed=5)
    ib = ib_connect(gw)
    spy = _spy(ib)
    [snap] = ib.reqTickers(spy)
    assert 0 < snap.bid < snap.ask and snap.last > 0 and snap.close > 0 and snap.high >= snap.low > 0
    assert snap.bidSize > 0 and snap.volume > 0
    ticker = ib.reqMktData(spy)
    seen = []
    ticker.updateEvent += lambda t: seen.append((t.bid, t.ask))
    assert wait_until(ib, lambda: len(set(seen)) >= 2)
    ib.cancelMktData(spy)
    assert wait_until(ib, lambda: gw.stats["cancelMktData"] == 1)


def test_market_data_lines_are_limited_to_100(sim_gateway, ib_connect, errors, wait_until):
    from ib_async import Contract

    ib = ib_connect(sim_gateway)
    seen = errors(ib)
    for _ in range(101):  # distinct Contract objects: ib_async gives each its own reqId
        ib.reqMktData(Contract(conId=756733, exchange="SMART"))
    assert wait_until(ib, lambda: any(code == 101 for _, code, _ in seen))
    assert [c for _, c, _ in seen if c == 101] == [101]
