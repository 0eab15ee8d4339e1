"""The array path of a history reply (formatDate=2, intraday) sends exactly the bytes of the per-bar path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ibkrtool.sim import codec
from ibkrtool.sim.contracts import find_contracts
from ibkrtool.sim.handlers_market import _history_table
from ibkrtool.sim.history import HistoryWindow, bar_time_formatter
from ibkrtool.sim.market import Market
from ibkrtool.sim.wire import frame

SPY = find_contracts("SPY", "STK", "USD", "SMART")[0]
EURUSD = find_contracts("EUR", "CASH", "USD", "IDEALPRO")[0]
END = datetime(2026, 11, 19, 20, 0, tzinfo=UTC)  # 15:00 New York: a session in progress at the window's end


@pytest.mark.parametrize(("contract", "bar_size", "span", "what", "rth"), [
    (SPY, "1 secs", timedelta(minutes=30), "TRADES", True),
    (SPY, "5 secs", timedelta(hours=20), "TRADES", False),  # crosses the previous evening: two sessions
    (SPY, "1 min", timedelta(days=3), "MIDPOINT", True),
    (SPY, "5 mins", timedelta(days=2), "BID_ASK", False),
    (EURUSD, "1 min", timedelta(hours=30), "MIDPOINT", True),
    (SPY, "1 secs", timedelta(hours=3), "TRADES", True),  # ends inside the day, starts before the open
])
def test_array_reply_equals_bar_by_bar_reply(contract, bar_size, span, what, rth) -> None:
    market = Market(seed=7)
    window = HistoryWindow(END - span, END, bar_size, what, rth)
    count, rows_text = _history_table(market, contract, window)
    bars = market.bars(contract, bar_size, window.start, window.end, what, rth)
    date_of = bar_time_formatter(bar_size, 2, contract)
    rows = [(date_of(b), b.open, b.high, b.low, b.close, b.volume, b.wap, b.count) for b in bars]
    assert count == len(bars) > 0
    assert frame(codec.historical_data_joined(9, "s", "e", count, rows_text)) == \
        frame(codec.historical_data(9, "s", "e", rows))


def test_a_window_without_bars_has_an_empty_table() -> None:
    saturday = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    window = HistoryWindow(saturday - timedelta(hours=1), saturday, "1 secs", "TRADES", True)
    assert _history_table(Market(seed=7), SPY, window) == (0, "")
