"""The live trader against a scripted gateway (tests/execution/fake_gateway.py): no socket, no clock races."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

import numpy as np
import pandas as pd

from ibkrtool.execution.live import LiveConfig, LiveTrader, session_days
from ibkrtool.execution.risk import RiskLimits
from ibkrtool.ib.events import ConnectivityLost, Disconnected, Restored
from ibkrtool.ib.live_bars import ClosedBars
from ibkrtool.model import Instrument
from ibkrtool.strategies.base import Strategy, StrategyResult
from tests.execution.fake_gateway import FakeGateway, bars

UTC = timezone.utc
T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 10:00 New York


@dataclass(frozen=True)
class Level:
    level: float = 100.0


def _above(frame: pd.DataFrame, params: Level) -> StrategyResult:
    """Long while the close is above ``level``, flat otherwise."""
    positions = np.where(frame["close"].to_numpy() > params.level, 1.0, 0.0)
    return StrategyResult(positions, np.full(len(frame), None, dtype=object),
                          pd.DataFrame({"level": params.level}, index=frame.index), 0)


ABOVE = Strategy("above", Level, "long above a level", _above, lambda params: 0)


def trade(gateway: FakeGateway, symbol: str = "SPY", level: float = 100.0, **overrides: object) -> LiveTrader:
    config = LiveConfig("above", Level(level), symbol, 10.0, duration_s=30.0, **overrides)  # type: ignore[arg-type]
    trader = LiveTrader(gateway, config, strategy=ABOVE)  # type: ignore[arg-type]
    asyncio.run(trader.run())
    return trader


def kinds(trader: LiveTrader, kind: str) -> list:
    return trader.decisions.of_kind(kind)


def test_a_closed_bar_above_the_level_sends_one_order() -> None:
    gateway = FakeGateway([[ClosedBars(bars(T0, [99, 99, 101]), fresh=True)]])
    trader = trade(gateway)
    [intent] = gateway.placed
    assert intent.signal_ts == T0 + timedelta(minutes=10) and intent.quantity == 10
    assert intent.order_ref == "live-above-SPY-5m:20261120T151000Z"
    assert trader.state.position == 10 and len(kinds(trader, "fill")) == 1


def test_a_disconnect_reconnects_and_evaluates_the_last_closed_bar_once() -> None:
    gateway = FakeGateway([
        [ClosedBars(bars(T0, [99, 99, 99]), fresh=True), Disconnected()],
        [ClosedBars(bars(T0, [99, 99, 99, 101, 101]), fresh=True)],  # one bar closed while away
    ])
    trader = trade(gateway)
    assert gateway.reconnects == 1 and trader.state.reconnects == 1
    assert [d.bar for d in kinds(trader, "signal")] == [T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)]
    assert len(kinds(trader, "backfill")) == 1
    [intent] = gateway.placed
    assert intent.signal_ts == T0 + timedelta(minutes=20)


def test_the_bar_it_died_on_is_evaluated_again_without_a_second_order() -> None:
    frame = bars(T0, [99, 99, 101])
    gateway = FakeGateway([[ClosedBars(frame, fresh=True), Disconnected()], [ClosedBars(frame, fresh=True)]])
    trader = trade(gateway)
    assert len(gateway.placed) == 1 and len(kinds(trader, "signal")) == 2
    assert kinds(trader, "hold")  # the position already is the target


def test_connectivity_loss_holds_orders_and_restore_resubscribes_without_reconnecting() -> None:
    gateway = FakeGateway([
        [ClosedBars(bars(T0, [99, 99, 99]), fresh=True), ConnectivityLost("IB lost connectivity"),
         ClosedBars(bars(T0, [99, 99, 99, 101])), Restored(data_lost=False, reason="restored")],
        [ClosedBars(bars(T0, [99, 99, 99, 101, 101]), fresh=True)],
    ])
    trader = trade(gateway)
    assert gateway.reconnects == 0 and gateway.subscriptions == 2 and trader.state.reconnects == 1
    assert any("held back" in d.detail for d in kinds(trader, "skip"))
    [intent] = gateway.placed
    assert intent.signal_ts == T0 + timedelta(minutes=20) and not trader.state.paused


def test_forex_trading_hours_are_new_york_time_like_the_calendars() -> None:
    """--hours 09:00-10:00 is exchange time: a EUR.USD bar closing 14:00 UTC closes at 09:00 New York."""
    start = datetime(2026, 11, 20, 13, 50, tzinfo=UTC)
    gateway = FakeGateway([[ClosedBars(bars(start, [1.0, 1.2]), fresh=True)]])
    trader = trade(gateway, "EUR.USD", level=1.1, what_to_show="MIDPOINT", rth=False,
                   limits=RiskLimits(hours=(time(9, 0), time(10, 0))))
    assert not kinds(trader, "risk"), [d.detail for d in kinds(trader, "risk")]
    assert len(gateway.placed) == 1


def test_the_forex_day_rolls_at_17_new_york_and_stocks_at_local_midnight() -> None:
    fx, spy = Instrument.parse("EUR.USD"), Instrument.parse("SPY")
    stamps = pd.DatetimeIndex([datetime(2026, 11, 19, 21, 55, tzinfo=UTC), datetime(2026, 11, 19, 22, 0, tzinfo=UTC)])
    assert [str(d) for d in session_days(stamps, fx)] == ["2026-11-19", "2026-11-20"]
    late = pd.DatetimeIndex([datetime(2026, 11, 20, 4, 30, tzinfo=UTC)])  # 23:30 New York on the 19th
    assert [str(d) for d in session_days(late, spy)] == ["2026-11-19"]
