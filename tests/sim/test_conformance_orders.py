"""Conformance: orders through the unmodified ib_async client — fills, commissions, positions, cancel, rejects."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from ib_async import ExecutionFilter, Forex, LimitOrder, MarketOrder, Stock, StopOrder

from ibkrtool.sim.broker import ib_commission
from ibkrtool.sim.contracts import find_contracts

pytestmark = pytest.mark.timeout(30)


def _spy(ib):
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    return spy


def _value(ib, tag: str, currency: str = "USD") -> float:
    return float(next(v.value for v in ib.accountValues() if v.tag == tag and v.currency == currency))


def test_market_order_fills_with_commission_and_updates_position(sim_gateway, ib_connect, wait_until):
    ib = ib_connect(sim_gateway)
    spy = _spy(ib)
    reports = []
    ib.commissionReportEvent += lambda trade, fill, report: reports.append(report)
    cash_before = _value(ib, "TotalCashValue")
    trade = ib.placeOrder(spy, MarketOrder("BUY", 300))
    assert wait_until(ib, lambda: trade.isDone() and reports)
    assert trade.orderStatus.status == "Filled" and trade.orderStatus.filled == 300
    assert trade.order.permId > 0
    [fill] = trade.fills
    assert fill.execution.side == "BOT" and fill.execution.shares == 300
    assert fill.commissionReport.commission == pytest.approx(1.50)  # 300 × USD 0.005
    assert reports[0].execId == fill.execution.execId
    assert wait_until(ib, lambda: any(p.contract.conId == spy.conId and p.position == 300 for p in ib.positions()))
    cost = 300 * fill.execution.price + 1.50
    assert wait_until(ib, lambda: _value(ib, "TotalCashValue") == pytest.approx(cash_before - cost, abs=0.01))
    [item] = [p for p in ib.portfolio() if p.contract.conId == spy.conId]
    assert item.position == 300


def test_sell_closes_position_with_realized_pnl(sim_gateway, ib_connect, wait_until):
    ib = ib_connect(sim_gateway)
    spy = _spy(ib)
    buy = ib.placeOrder(spy, MarketOrder("BUY", 100))
    assert wait_until(ib, buy.isDone)
    sell = ib.placeOrder(spy, MarketOrder("SELL", 100))
    assert wait_until(ib, lambda: sell.isDone() and sell.fills and sell.fills[0].commissionReport.execId)
    assert sell.fills[0].execution.side == "SLD"
    realized = sell.fills[0].commissionReport.realizedPNL
    bought, sold = buy.fills[0].execution.price, sell.fills[0].execution.price
    assert realized == pytest.approx((sold - bought) * 100 - 2.0, abs=0.02)  # two USD 1.00 minimums
    assert wait_until(ib, lambda: all(p.position == 0 for p in ib.positions() if p.contract.conId == spy.conId))


def test_forex_order_commission_minimum(sim_gateway, ib_connect, wait_until):
    ib = ib_connect(sim_gateway)
    eur = Forex("EURUSD")
    ib.qualifyContracts(eur)
    trade = ib.placeOrder(eur, MarketOrder("BUY", 20000))
    assert wait_until(ib, lambda: trade.isDone() and trade.fills and trade.fills[0].commissionReport.execId)
    assert trade.fills[0].commissionReport.commission == 2.0  # 0.2 bps of ~USD 23k is below the USD 2 minimum


def test_resting_limit_is_cancelled(sim_gateway, ib_connect, errors, wait_until):
    ib = ib_connect(sim_gateway)
    seen = errors(ib)
    spy = _spy(ib)
    [bar] = ib.reqHistoricalData(spy, "", "1800 S", "1 min", "TRADES", True, 2)[-1:]
    trade = ib.placeOrder(spy, LimitOrder("BUY", 10, round(bar.close * 0.5, 2)))
    assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    assert [t.order.orderId for t in ib.openTrades()] == [trade.order.orderId]
    ib.cancelOrder(trade.order)
    assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert wait_until(ib, lambda: any(code == 202 for _, code, _ in seen))
    assert trade.filled() == 0


def test_marketable_limit_and_stop_fill(sim_gateway, ib_connect, wait_until):
    ib = ib_connect(sim_gateway)
    spy = _spy(ib)
    [bar] = ib.reqHistoricalData(spy, "", "1800 S", "1 min", "TRADES", True, 2)[-1:]
    limit = ib.placeOrder(spy, LimitOrder("BUY", 10, round(bar.close * 1.05, 2)))
    stop = ib.placeOrder(spy, StopOrder("SELL", 10, round(bar.close * 1.05, 2)))  # last is below: triggers at once
    assert wait_until(ib, lambda: limit.isDone() and stop.isDone())
    assert limit.orderStatus.status == stop.orderStatus.status == "Filled"
    assert limit.orderStatus.avgFillPrice <= round(bar.close * 1.05, 2)


def test_order_rejected_with_201_by_fault(sim_factory, ib_connect, errors, wait_until):
    gw = sim_factory(faults="reject-orders")
    ib = ib_connect(gw)
    seen = errors(ib)
    trade = ib.placeOrder(_spy(ib), MarketOrder("BUY", 1))
    assert wait_until(ib, lambda: any(code == 201 for _, code, _ in seen))
    [(req_id, _, text)] = [e for e in seen if e[1] == 201]
    assert req_id == trade.order.orderId and text.startswith("Order rejected - reason:")
    assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")


def test_order_beyond_buying_power_is_rejected(sim_gateway, ib_connect, errors, wait_until):
    ib = ib_connect(sim_gateway)
    seen = errors(ib)
    trade = ib.placeOrder(_spy(ib), MarketOrder("BUY", 1_000_000))
    assert wait_until(ib, lambda: any(code == 201 and "BUYING POWER" in text for _, code, text in seen))
    assert trade.filled() == 0


def test_executions_are_replayed_with_commissions(sim_gateway, ib_connect, wait_until):
    ib = ib_connect(sim_gateway)
    trade = ib.placeOrder(_spy(ib), MarketOrder("BUY", 5))
    assert wait_until(ib, trade.isDone)
    other = ib_connect(sim_gateway, client_id=2)
    fills = other.reqExecutions(ExecutionFilter())
    assert [f.execution.execId for f in fills] == [trade.fills[0].execution.execId]
    # ib_async keeps the commission on the Fill it first saw (from its own startup reqExecutions)
    [synced] = other.fills()
    assert synced.commissionReport.commission == 1.0 and synced.execution.orderId == trade.order.orderId


def test_closed_market_holds_stock_order_until_open(sim_factory, ib_connect, wait_until):
    # Monday 2026-11-23 09:29:40 New York, 10x: the regular session opens after ~2 s of real time.
    gw = sim_factory(start=datetime(2026, 11, 23, 14, 29, 40, tzinfo=timezone.utc), speed=10)
    ib = ib_connect(gw)
    spy = _spy(ib)
    trade = ib.placeOrder(spy, MarketOrder("BUY", 1))
    assert wait_until(ib, lambda: trade.orderStatus.status in ("PreSubmitted", "Filled"))
    assert trade.log[1].status == "PreSubmitted"
    assert wait_until(ib, trade.isDone)
    assert trade.fills[0].execution.time >= datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc)


def test_ib_commission_schedule():
    [spy] = find_contracts("SPY", "STK", "USD", "SMART")
    [eur] = find_contracts("EUR", "CASH", "USD", "IDEALPRO")
    assert ib_commission(spy, 100, 600.0, 60_000) == 1.00  # minimum
    assert ib_commission(spy, 1000, 600.0, 600_000) == 5.00  # USD 0.005/share
    assert ib_commission(spy, 1000, 0.5, 500) == 5.00  # 1% cap = 5.00
    assert ib_commission(spy, 1000, 0.2, 200) == 2.00  # 1% cap below the per-share fee
    assert ib_commission(eur, 100_000, 1.1, 110_000) == 2.20  # 0.2 bps
    assert ib_commission(eur, 20_000, 1.1, 22_000) == 2.00  # minimum


def test_what_if_order_estimates_without_placing(sim_gateway, ib_connect):
    ib = ib_connect(sim_gateway)
    spy = _spy(ib)
    state = ib.whatIfOrder(spy, MarketOrder("BUY", 100))
    assert float(state.initMarginChange) > 0 and float(state.commission) == 1.0
    assert float(state.equityWithLoanBefore) == 1_000_000.0
    assert ib.openTrades() == [] and sim_gateway.call(lambda: len(sim_gateway.server.broker.orders)) == 0


def test_good_till_date_and_what_if_are_read_from_the_order_tail():
    from ibkrtool.sim import codec

    for version in (176, 178):
        fields = _place_order_fields(version, what_if=True)
        args = codec.decode(fields, version).args
        assert args["what_if"] is True and args["good_till_date"] == "20261231 23:59:59 UTC"
        assert codec.decode(_place_order_fields(version, what_if=False), version).args["what_if"] is False


def _place_order_fields(version: int, what_if: bool) -> list[str]:
    """The exact fields ib_async's Client.placeOrder sends, captured without a socket."""
    from ib_async.client import Client

    sent: list[str] = []
    client = Client(wrapper=None)
    client.isConnected = lambda: True
    client.serverVersion = lambda: version
    client.sendMsg = lambda msg: sent.append(msg)
    order = LimitOrder("BUY", 10, 600.5, goodTillDate="20261231 23:59:59 UTC", tif="GTD", whatIf=what_if)
    client.placeOrder(7, Stock("SPY", "SMART", "USD", conId=756733), order)
    return sent[0].split("\0")[:-1]


def test_day_limit_expires_at_the_close(sim_factory, ib_connect, wait_until):
    # 15:59:40 New York, 10x: the regular session closes after ~2 s of real time.
    gw = sim_factory(start=datetime(2026, 11, 20, 20, 59, 40, tzinfo=timezone.utc), speed=10)
    ib = ib_connect(gw)
    spy = _spy(ib)
    day = ib.placeOrder(spy, LimitOrder("BUY", 1, 1.00, tif="DAY"))
    gtc = ib.placeOrder(spy, LimitOrder("BUY", 1, 1.00, tif="GTC"))
    assert wait_until(ib, lambda: day.orderStatus.status == "Submitted" == gtc.orderStatus.status)
    assert ib.reqCurrentTime() < datetime(2026, 11, 20, 21, 0, tzinfo=timezone.utc)  # placed in the session
    assert wait_until(ib, lambda: day.orderStatus.status == "Cancelled")
    assert gtc.orderStatus.status == "Submitted"


def test_completed_orders_after_reconnect(sim_gateway, ib_connect, wait_until):
    ib = ib_connect(sim_gateway)
    trade = ib.placeOrder(_spy(ib), MarketOrder("BUY", 3))
    assert wait_until(ib, trade.isDone)
    other = ib_connect(sim_gateway, client_id=9)
    [done] = other.reqCompletedOrders(apiOnly=False)
    assert done.order.permId == trade.order.permId and done.orderStatus.status == "Filled"
    assert done.order.filledQuantity == 3
