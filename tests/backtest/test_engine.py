"""Engine semantics: fill timing, end-of-data, reversals, slippage, sizing, reasons, no look-ahead, and the vector
and loop implementations agreeing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ibkrtool.backtest.costs import IB_FIXED, IB_TIERED, NO_COMMISSION, Slippage, ib_forex, parse_commission
from ibkrtool.backtest.engine import END_OF_DATA, BacktestConfig, run_backtest
from ibkrtool.backtest.sizing import SizeRule
from ibkrtool.errors import InputError
from tests.backtest.helpers import random_bars, random_positions


def bars_from(opens: list[float], closes: list[float]) -> pd.DataFrame:
    index = pd.date_range("2024-03-04 14:30", periods=len(opens), freq="5min", tz="UTC", name="ts")
    o, c = np.array(opens, float), np.array(closes, float)
    return pd.DataFrame({"open": o, "high": np.maximum(o, c), "low": np.minimum(o, c), "close": c}, index=index)


FLAT = dict(cash=10_000.0, size=SizeRule("fixed", 10), commission=NO_COMMISSION)


def test_next_open_fills_the_bar_after_the_decision() -> None:
    bars = bars_from([10, 11, 12, 13], [10.5, 11.5, 12.5, 13.5])
    r = run_backtest(bars, np.array([1, 0, 0, 0.0]), BacktestConfig(**FLAT, fill="next-open"))
    t = r.trades.iloc[0]
    assert (t.entry_bar, t.entry_price, t.exit_bar, t.exit_price) == (1, 11, 2, 12)
    assert t.bars_held == 1 and t.gross_pnl == 10


def test_close_fill_uses_the_deciding_bars_close() -> None:
    bars = bars_from([10, 11, 12, 13], [10.5, 11.5, 12.5, 13.5])
    r = run_backtest(bars, np.array([1, 0, 0, 0.0]), BacktestConfig(**FLAT, fill="close"))
    t = r.trades.iloc[0]
    assert (t.entry_bar, t.entry_price, t.exit_bar, t.exit_price) == (0, 10.5, 1, 11.5)


@pytest.mark.parametrize("fill", ["next-open", "close"])
def test_open_position_is_closed_at_the_last_close_as_end_of_data(fill: str) -> None:
    bars = bars_from([10, 11, 12, 13], [10.5, 11.5, 12.5, 13.5])
    r = run_backtest(bars, np.array([0, 1, 1, 1.0]), BacktestConfig(**FLAT, fill=fill))
    t = r.trades.iloc[-1]
    assert t.exit_reason == END_OF_DATA and t.exit_bar == 3 and t.exit_price == 13.5
    assert r.position.iloc[-1] == 10  # held through the last close
    assert r.final_equity == pytest.approx(10_000 + t.gross_pnl)


def test_last_bar_decision_is_not_executed() -> None:
    bars = bars_from([10, 11, 12], [10.5, 11.5, 12.5])
    for fill in ("next-open", "close"):
        r = run_backtest(bars, np.array([0, 0, 1.0]), BacktestConfig(**FLAT, fill=fill))
        assert r.trades.empty and r.final_equity == 10_000


def test_reversal_is_two_orders_at_one_price() -> None:
    bars = bars_from([10, 11, 12, 13, 14], [10, 11, 12, 13, 14])
    config = BacktestConfig(cash=10_000, size=SizeRule("fixed", 10), commission=IB_FIXED)
    r = run_backtest(bars, np.array([1, -1, 0, 0, 0.0]), config)
    long, short = r.trades.iloc[0], r.trades.iloc[1]
    assert (long.side, short.side) == ("long", "short")
    assert long.exit_bar == short.entry_bar == 2 and long.exit_price == short.entry_price == 12
    assert long.commission == short.commission == 2.0  # USD 1.00 minimum on each of two orders
    assert short.gross_pnl == -10  # sold at 12, bought back at 13


def test_slippage_moves_fills_against_the_order() -> None:
    bars = bars_from([100, 100, 100, 100], [100, 100, 100, 100])
    ticks = BacktestConfig(**FLAT, slippage=Slippage(2, "ticks"), tick=0.01)
    t = run_backtest(bars, np.array([1, 0, 0, 0.0]), ticks).trades.iloc[0]
    assert t.entry_price == pytest.approx(100.02) and t.exit_price == pytest.approx(99.98)
    assert t.gross_pnl == pytest.approx(-0.4) and t.slippage_cost == pytest.approx(0.4)
    bps = BacktestConfig(**FLAT, slippage=Slippage(5, "bps"))
    t = run_backtest(bars, np.array([-1, 0, 0, 0.0]), bps).trades.iloc[0]
    assert t.entry_price == pytest.approx(99.95) and t.exit_price == pytest.approx(100.05)  # short: sell low, buy high


def test_equity_sizing_compounds_and_cash_sizing_does_not() -> None:
    bars = bars_from([100, 100, 200, 200, 200, 200], [100, 200, 200, 200, 200, 200])
    positions = np.array([1, 0, 0, 1, 0, 0.0])
    eq = run_backtest(bars, positions, BacktestConfig(cash=10_000, size=SizeRule("equity", 1.0),
                                                      commission=NO_COMMISSION))
    assert list(eq.trades["quantity"]) == [100, 100]  # 10,000/100, then 20,000/200
    cash = run_backtest(bars, positions, BacktestConfig(cash=10_000, size=SizeRule("cash", 10_000),
                                                        commission=NO_COMMISSION))
    assert list(cash.trades["quantity"]) == [100, 50]


def test_unaffordable_entry_is_skipped_with_a_warning() -> None:
    bars = bars_from([100] * 4, [100] * 4)
    for method in ("vector", "loop"):
        r = run_backtest(bars, np.array([1, 0, 0, 0.0]),
                         BacktestConfig(cash=1000, size=SizeRule("cash", 50)), method=method)
        assert r.trades.empty and r.final_equity == 1000 and "skipped" in r.warnings[0]


def test_signals_become_entry_and_exit_reasons() -> None:
    bars = bars_from([10] * 5, [10] * 5)
    signals = np.array([None, "entry:breakout", None, "exit:trailing-stop", None], dtype=object)
    for method in ("vector", "loop"):
        t = run_backtest(bars, np.array([0, 1, 1, 0, 0.0]), BacktestConfig(**FLAT), signals, method=method).trades
        assert (t.entry_reason[0], t.exit_reason[0]) == ("entry:breakout", "exit:trailing-stop")


def test_tiered_commission_follows_the_months_volume() -> None:
    assert IB_TIERED.commission(100, 50.0, 0) == pytest.approx(0.35 + 100 * 0.0002)  # minimum + clearing
    assert IB_TIERED.commission(1000, 50.0, 0) == pytest.approx(1000 * 0.0035 + 1000 * 0.0002)
    assert IB_TIERED.commission(1000, 50.0, 400_000) == pytest.approx(1000 * 0.0020 + 1000 * 0.0002)
    assert IB_FIXED.commission(10, 5.0) == pytest.approx(0.5)  # 1% cap under the USD 1.00 minimum
    assert IB_FIXED.commission(1000, 50.0) == pytest.approx(5.0)
    assert ib_forex("EUR", "USD").commission(100_000, 1.1) == pytest.approx(2.2)  # 0.2 bps of 110,000 → min 2
    assert ib_forex("EUR", "USD").commission(1_000_000, 1.1) == pytest.approx(22.0)
    assert ib_forex("USD", "JPY").commission(25_000, 150.0) == pytest.approx(300.0)  # USD 2 min in JPY
    custom = parse_commission("custom:per_share=0.01,pct=0.1,min=1")
    assert custom.commission(100, 50.0) == pytest.approx(100 * 0.01 + 5000 * 0.001)


@pytest.mark.parametrize("config", [
    BacktestConfig(cash=1e6, size=SizeRule("fixed", 37), slippage=Slippage(1, "ticks")),
    BacktestConfig(cash=1e6, size=SizeRule("cash", 25_000), slippage=Slippage(3, "bps"), fill="close"),
    BacktestConfig(cash=1e6, size=SizeRule("fixed", 20_000), commission=ib_forex(), is_forex=True, tick=0.00005),
    BacktestConfig(cash=1e6, size=SizeRule("fixed", 500), commission=parse_commission("custom:pct=0.05,min=2")),
], ids=["fixed-ticks", "cash-bps-close", "forex", "custom"])
def test_vector_and_loop_agree(config: BacktestConfig) -> None:
    bars = random_bars(4000, seed=3)
    positions = random_positions(len(bars), seed=4)
    positions[-3:] = 1.0  # leave a trade open to the end
    a = run_backtest(bars, positions, config, method="vector")
    b = run_backtest(bars, positions, config, method="loop")
    pd.testing.assert_frame_equal(a.trades, b.trades, check_exact=False, rtol=1e-12)
    np.testing.assert_allclose(a.equity, b.equity, rtol=1e-12)
    np.testing.assert_array_equal(a.position, b.position)
    assert a.warnings == b.warnings


def test_no_look_ahead_a_prefix_gives_the_same_trades() -> None:
    bars = random_bars(2000, seed=9)
    positions = random_positions(len(bars), seed=10)
    full = run_backtest(bars, positions, BacktestConfig())
    k = 1200
    part = run_backtest(bars.iloc[:k], positions[:k], BacktestConfig())
    done = part.trades[part.trades.exit_reason != END_OF_DATA]
    pd.testing.assert_frame_equal(done, full.trades.iloc[:len(done)])
    np.testing.assert_allclose(part.equity.to_numpy()[:k - 1], full.equity.to_numpy()[:k - 1])


@pytest.mark.parametrize("kwargs, message", [
    (dict(cash=-5.0), "starting cash"),
    (dict(fill="vwap"), "fill"),
])
def test_bad_config_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        run_backtest(bars_from([1, 2], [1, 2]), np.zeros(2), BacktestConfig(**kwargs))


def test_positions_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(InputError, match="must match one to one"):
        run_backtest(bars_from([1, 2, 3], [1, 2, 3]), np.zeros(2))


def test_positions_outside_minus_one_zero_one_are_refused() -> None:
    for bad in ([0, 0.5, 0], [0, np.nan, 0], [0, 2, 0]):
        with pytest.raises(InputError, match="-1 \\(short\\)"):
            run_backtest(bars_from([1, 2, 3], [1, 2, 3]), np.array(bad, dtype=float))


def test_tiered_rate_falls_as_the_months_volume_grows_and_resets_next_month() -> None:
    index = pd.DatetimeIndex(["2024-03-28 14:30", "2024-03-28 14:35", "2024-03-28 14:40", "2024-03-28 14:45",
                              "2024-04-01 13:30", "2024-04-01 13:35"], tz="UTC", name="ts")
    bars = pd.DataFrame({"open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0}, index=index)
    config = BacktestConfig(cash=1e7, size=SizeRule("fixed", 200_000), commission=IB_TIERED)
    r = run_backtest(bars, np.array([1, 0, 1, 0, 1, 0.0]), config)  # orders at bars 1, 2, 3, 4(new month), 5
    clearing = 200_000 * 0.0002
    first, second = r.trades.iloc[0], r.trades.iloc[1]
    # March: order 1 at 0 shares done → 0.0035; order 2 at 200k → 0.0035; order 3 at 400k → 0.0020.
    assert first.commission == pytest.approx(2 * (200_000 * 0.0035 + clearing))
    # Trade 2 = March order 3 (0.0020) + April order 1 (volume reset → 0.0035).
    assert second.commission == pytest.approx(200_000 * 0.0020 + 200_000 * 0.0035 + 2 * clearing)
