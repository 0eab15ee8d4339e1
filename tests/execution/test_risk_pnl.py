"""Pure pieces of execution: risk checks, today's P&L, duration parsing."""

from __future__ import annotations

from datetime import datetime, time, timezone

import pytest

from ibkrtool.cli.live import parse_duration
from ibkrtool.errors import InputError
from ibkrtool.execution.pnl import daily_pnl
from ibkrtool.execution.risk import RiskLimits, RiskState, check_order, parse_hours
from ibkrtool.model.order import Fill, OrderIntent, OrderType, Side

T = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)


def buy(quantity: float, target: float) -> OrderIntent:
    return OrderIntent("SPY", Side.BUY, quantity, OrderType.MARKET, "r:1", T, target)


def sell(quantity: float, target: float) -> OrderIntent:
    return OrderIntent("SPY", Side.SELL, quantity, OrderType.MARKET, "r:2", T, target)


def state(position: float = 0.0, orders: int = 0, pnl: float = 0.0, at: time = time(11, 0), killed: bool = False):
    return RiskState(position, orders, pnl, at, killed)


LIMITS = RiskLimits(max_position=100, max_order_value=10_000, max_orders_per_day=3, max_daily_loss=500,
                    hours=(time(9, 35), time(15, 55)))


def test_an_order_within_every_limit_passes():
    assert check_order(LIMITS, buy(10, 10), 100.0, state()) is None


@pytest.mark.parametrize(("intent", "st", "why"), [
    (buy(10, 10), state(killed=True), "kill switch"),
    (buy(10, 10), state(at=time(9, 30)), "outside trading hours"),
    (buy(10, 10), state(at=time(15, 55)), "outside trading hours"),
    (buy(200, 200), state(), "order value"),
    (buy(90, 110), state(position=20), "exceeds the limit"),
    (buy(10, 10), state(orders=3), "daily limit"),
    (buy(10, 10), state(pnl=-500), "daily loss"),
])
def test_limits_block(intent, st, why):
    assert why in check_order(LIMITS, intent, 100.0, st)


def test_reducing_orders_pass_after_the_loss_and_count_limits():
    assert check_order(LIMITS, sell(10, 0), 100.0, state(position=10, orders=9, pnl=-9_999)) is None
    assert check_order(LIMITS, sell(20, -10), 100.0, state(position=10, pnl=-9_999)) is not None  # a reversal opens


def test_hours_parse():
    assert parse_hours("09:35-15:55") == (time(9, 35), time(15, 55))
    assert parse_hours(None) is None
    with pytest.raises(InputError):
        parse_hours("16:00-09:00")


def fill(side: Side, quantity: float, price: float, commission: float = 1.0) -> Fill:
    return Fill("e", "r", "SPY", side, quantity, price, commission, T, "paper")


def test_daily_pnl_marks_fills_and_the_overnight_position():
    # bought 10 at 100 today, now 105: +50 - 1 commission
    assert daily_pnl([fill(Side.BUY, 10, 100.0)], 10, 105.0, 99.0) == pytest.approx(49.0)
    # held 10 overnight from a 99 close, sold them today at 101: +20 - 1
    assert daily_pnl([fill(Side.SELL, 10, 101.0)], 0, 103.0, 99.0) == pytest.approx(19.0)
    assert daily_pnl([], 5, 98.0, 100.0) == pytest.approx(-10.0)


def test_duration_parse():
    assert [parse_duration(x) for x in ("90", "90s", "5m", "2h", None)] == [90, 90, 300, 7200, None]
    with pytest.raises(InputError):
        parse_duration("soon")
