"""Conformance: the unmodified ib_async client against the sim over a real socket — connect, contracts, history."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import pytest
from ib_async import Contract, Forex, Stock

from tests.plugins.sim import SIM_START

pytestmark = pytest.mark.timeout(30)


def test_connect_default_and_readonly_complete_fast(sim_gateway, ib_connect):
    t0 = time.perf_counter()
    ib = ib_connect(sim_gateway, client_id=1)
    default_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ro = ib_connect(sim_gateway, client_id=2, readonly=True)
    readonly_s = time.perf_counter() - t0
    assert ib.isConnected() and ro.isConnected()
    assert ib.client.serverVersion() == 178  # min(ib_async max 178, sim max 178)
    assert ib.managedAccounts() == ["DU1234567"]
    assert default_s < 1.0 and readonly_s < 1.0, (default_s, readonly_s)
    stats = sim_gateway.stats
    for name in ("reqPositions", "reqOpenOrders", "reqCompletedOrders", "reqAccountUpdates",
                 "reqAccountUpdatesMulti", "reqExecutions"):
        assert stats[name] >= 1, name


def test_farm_status_notices_on_connect(sim_gateway, ib_connect):
    from ib_async import IB

    seen = []
    ib = IB()
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code))
    ib.connect("127.0.0.1", sim_gateway.port, clientId=7, timeout=4)
    try:
        ib.sleep(0.1)
        assert {(-1, 2104), (-1, 2106), (-1, 2158)} <= set(seen)
    finally:
        ib.disconnect()


def test_qualify_stock_and_forex(sim_gateway, ib_connect):
    ib = ib_connect(sim_gateway)
    spy, eur = Stock("SPY", "SMART", "USD"), Forex("EURUSD")
    assert ib.qualifyContracts(spy, eur) == [spy, eur]
    assert spy.conId == 756733 and spy.primaryExchange == "ARCA"
    assert eur.conId == 12087792 and eur.localSymbol == "EUR.USD" and eur.exchange == "IDEALPRO"


def test_contract_details_fields(sim_gateway, ib_connect):
    ib = ib_connect(sim_gateway)
    [cd] = ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))
    assert cd.contract.conId == 265598
    assert cd.minTick == 0.01 and cd.timeZoneId == "US/Eastern" and cd.longName == "APPLE INC"
    assert "20261120:" in cd.tradingHours and "20261120:" in cd.liquidHours
    assert cd.stockType == "COMMON"


def test_unknown_symbol_is_error_200(sim_gateway, ib_connect, errors):
    ib = ib_connect(sim_gateway)
    seen = errors(ib)
    assert not any(ib.qualifyContracts(Stock("NOSUCH", "SMART", "USD")))  # ib_async 2.1 gives [None]
    assert any(code == 200 and text == "No security definition has been found for the request"
               for _, code, text in seen)


def test_current_time_follows_sim_clock(sim_factory, ib_connect):
    gw = sim_factory(speed=60)
    ib = ib_connect(gw)
    t = ib.reqCurrentTime()
    assert SIM_START <= t < SIM_START + timedelta(minutes=10)


def _minute(dt: datetime) -> datetime:
    return dt.replace(second=0, microsecond=0)


def test_history_resolutions_agree(sim_gateway, ib_connect):
    """1-min bars equal the 1-second bars of the same minute aggregated (open, high, low, close, volume)."""
    ib = ib_connect(sim_gateway)
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    secs = ib.reqHistoricalData(spy, "", "1800 S", "1 secs", "TRADES", True, 2)
    mins = ib.reqHistoricalData(spy, "", "1800 S", "1 min", "TRADES", True, 2)
    assert len(secs) > 1000 and 20 <= len(mins) <= 31
    by_minute: dict[datetime, list] = {}
    for b in secs:
        by_minute.setdefault(_minute(b.date), []).append(b)
    checked = 0
    for m in mins[1:-1]:  # the first and last minute can be cut by the request window
        group = by_minute[m.date]
        assert m.open == group[0].open and m.close == group[-1].close
        assert m.high == max(b.high for b in group) and m.low == min(b.low for b in group)
        assert m.volume == pytest.approx(sum(b.volume for b in group))
        assert m.barCount == sum(b.barCount for b in group)
        checked += 1
    assert checked >= 20


def test_history_five_minute_bars_aggregate_one_minute_bars(sim_gateway, ib_connect):
    ib = ib_connect(sim_gateway)
    eur = Forex("EURUSD")
    ib.qualifyContracts(eur)
    ones = ib.reqHistoricalData(eur, "", "1 D", "1 min", "MIDPOINT", False, 2)
    fives = ib.reqHistoricalData(eur, "", "1 D", "5 mins", "MIDPOINT", False, 2)
    assert ones and fives
    assert all(b.volume == -1 for b in fives)  # IB's -1 for non-TRADES bars
    index = {b.date: b for b in ones}
    for f in fives[1:-1][:50]:
        group = [index[f.date + timedelta(minutes=k)] for k in range(5) if f.date + timedelta(minutes=k) in index]
        assert f.open == group[0].open and f.close == group[-1].close
        assert f.high == max(b.high for b in group) and f.low == min(b.low for b in group)


def test_history_format_dates(sim_gateway, ib_connect):
    ib = ib_connect(sim_gateway)
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    epoch = ib.reqHistoricalData(spy, "", "3600 S", "5 mins", "TRADES", True, 2)
    text = ib.reqHistoricalData(spy, "", "3600 S", "5 mins", "TRADES", True, 1)
    daily = ib.reqHistoricalData(spy, "", "10 D", "1 day", "TRADES", True, 1)
    assert epoch and epoch[0].date.tzinfo is not None and epoch[-1].date <= SIM_START + timedelta(minutes=1)
    assert [b.date.astimezone(timezone.utc) for b in text] == [b.date for b in epoch]
    assert daily and all(type(b.date) is date for b in daily)
    assert daily[-1].date <= date(2026, 11, 20)


def test_head_timestamp(sim_gateway, ib_connect):
    ib = ib_connect(sim_gateway)
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    head = ib.reqHeadTimeStamp(spy, "TRADES", True, 2)
    assert isinstance(head, datetime) and head < SIM_START


def test_unsupported_request_gets_an_error_not_a_hang(sim_gateway, ib_connect, errors):
    ib = ib_connect(sim_gateway)
    seen = errors(ib)
    contract = Contract(conId=756733, exchange="SMART")
    ib.reqMktDepth(contract)
    ib.sleep(0.3)
    assert any(code == 322 and "reqMktDepth" in text for _, code, text in seen)


def _capture_range(ib) -> list[tuple[int, str, str]]:
    """Message 17's startDateStr/endDateStr, which ib_async's wrapper drops: record them on their way in."""
    seen: list[tuple[int, str, str]] = []
    original = ib.wrapper.historicalDataEnd

    def record(req_id: int, start: str, end: str) -> None:
        seen.append((req_id, start, end))
        original(req_id, start, end)

    ib.wrapper.historicalDataEnd = record
    return seen


def test_history_reply_reports_ibs_start_date(sim_gateway, ib_connect):
    ib = ib_connect(sim_gateway)
    ranges = _capture_range(ib)
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    bars = ib.reqHistoricalData(spy, "", "2 D", "1 hour", "TRADES", True, 2)
    assert bars and bars[0].date == datetime(2026, 11, 19, 14, 30, tzinfo=timezone.utc)  # two sessions of bars
    [(_, start, end)] = ranges
    # IB's startDateStr is end minus 2 calendar days (as in ib_async#140), not the first session's open
    assert start.startswith("20261118 10:0") and start.endswith(" US/Eastern")
    assert end.startswith("20261120 10:0")


def test_valid_window_without_bars_is_162_no_data(sim_factory, ib_connect, errors):
    # 09:30:00 New York and a clock nearly standing still: the regular session has opened, no trade has printed yet
    gw = sim_factory(start=datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc), speed=0.001)
    ib = ib_connect(gw)
    seen = errors(ib)
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    bars = ib.reqHistoricalData(spy, "", "60 S", "1 min", "TRADES", True, 2)
    assert len(bars) == 0
    assert (bars.reqId, 162, "Historical Market Data Service error message:HMDS query returned no data: "
                             "SPY@SMART Trades") in seen
