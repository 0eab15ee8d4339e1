"""Same bars, same positions, same costs in backtesting.py (kernc, a reference nobody here wrote) and our engine:
the trades must be identical and the final equity must agree to 1e-9 relative.

Conventions matched (read from backtesting.py 0.6.6's source):
* Its ``Strategy.next()`` runs from bar 1 on (no indicators → no warm-up), so our positions start flat at bar 0.
* Market orders fill at the next bar's open; ``trade_on_close=True`` fills them at the deciding bar's close and
  records that bar as the entry/exit bar — our ``fill="close"``. ``trade.close()`` orders are "contingent" and
  always fill at the next open, so the follower below trades by NETTING orders (``sell(size=2q)`` reverses).
* It charges ``commission(size, price)`` at entry and again at exit, per trade, which is how we charge IB's fixed
  schedule; it has no slippage model matching ours (its ``spread`` adjusts entries only), so slippage is 0 here.
* ``margin=1`` and ample cash so that no order is refused for margin; fixed quantities (its fractional sizes
  are computed on available margin net of commission, a different convention).
* Positions end flat before the last bar so no trade is left open (its ``finalize_trades`` closes at the last
  bar's open, ours at its close).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest, Strategy

from ibkrtool.backtest.costs import IB_FIXED
from ibkrtool.backtest.engine import BacktestConfig, run_backtest
from ibkrtool.backtest.sizing import SizeRule
from tests.backtest.helpers import random_bars, random_positions

QTY = 100
CASH = 1_000_000.0


def reference_run(bars: pd.DataFrame, positions: np.ndarray, trade_on_close: bool, quantity: int = QTY):
    """Run backtesting.py following ``positions``; returns its stats Series."""
    data = bars.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    data.index = data.index.tz_localize(None)  # backtesting.py wants naive stamps

    class Follow(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            want = positions[len(self.data) - 1] * quantity
            delta = want - self.position.size
            if delta > 0:
                self.buy(size=delta)
            elif delta < 0:
                self.sell(size=-delta)

    def ib_fixed(size: float, price: float) -> float:
        return IB_FIXED.commission(abs(size), price)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(data, Follow, cash=CASH, commission=ib_fixed, margin=1.0, trade_on_close=trade_on_close,
                      exclusive_orders=False, finalize_trades=False)
        return bt.run()


@pytest.mark.parametrize("method", ["vector", "loop"])
@pytest.mark.parametrize("fill", ["next-open", "close"])
@pytest.mark.parametrize("seed", [1, 2])
def test_trades_and_equity_match_backtesting_py(fill: str, seed: int, method: str) -> None:
    bars = random_bars(3000, seed=seed)
    positions = random_positions(len(bars), seed=seed + 100)
    config = BacktestConfig(cash=CASH, size=SizeRule("fixed", QTY), fill=fill)
    ours = run_backtest(bars, positions, config, method=method)
    ref = reference_run(bars, positions, trade_on_close=(fill == "close"))
    ref_trades = ref["_trades"].sort_values(["EntryBar", "ExitBar"]).reset_index(drop=True)
    mine = ours.trades.sort_values(["entry_bar", "exit_bar"]).reset_index(drop=True)

    assert len(mine) > 50 and len(mine) == len(ref_trades)
    assert (mine["entry_bar"].to_numpy() == ref_trades["EntryBar"].to_numpy()).all()
    assert (mine["exit_bar"].to_numpy() == ref_trades["ExitBar"].to_numpy()).all()
    naive = bars.index.tz_localize(None)
    assert (naive[mine["entry_bar"]] == pd.DatetimeIndex(ref_trades["EntryTime"])).all()
    assert (naive[mine["exit_bar"]] == pd.DatetimeIndex(ref_trades["ExitTime"])).all()
    assert np.array_equal(mine["entry_price"].to_numpy(), ref_trades["EntryPrice"].to_numpy())
    assert np.array_equal(mine["exit_price"].to_numpy(), ref_trades["ExitPrice"].to_numpy())
    signed = np.where(mine["side"] == "long", 1, -1) * mine["quantity"].to_numpy()
    assert np.array_equal(signed, ref_trades["Size"].to_numpy())
    np.testing.assert_allclose(mine["net_pnl"].to_numpy(), ref_trades["PnL"].to_numpy(), rtol=1e-9, atol=1e-9)
    assert ours.final_equity == pytest.approx(ref["Equity Final [$]"], rel=1e-9)
    # The whole mark-to-market curve agrees, not only its end. (With trade_on_close, backtesting.py books a fill at
    # bar i's close during bar i+1, so its curve lags ours by one bar on the fill bars only; compare the others.)
    compare = np.ones(len(bars), dtype=bool)
    compare[0] = False  # its curve starts at bar 1
    if fill == "close":
        compare[np.concatenate([mine["entry_bar"], mine["exit_bar"]])] = False
    np.testing.assert_allclose(ours.equity.to_numpy()[compare], ref["_equity_curve"]["Equity"].to_numpy()[compare],
                               rtol=1e-9)


def test_open_position_at_the_end_matches_its_mark_to_market_less_the_closing_commission() -> None:
    """backtesting.py marks an open trade at the last close without closing it; we close it there (end-of-data),
    paying one more commission. Everything else must agree exactly."""
    bars = random_bars(1500, seed=5)
    positions = random_positions(len(bars), seed=6)
    positions[-40:] = -1.0
    ours = run_backtest(bars, positions, BacktestConfig(cash=CASH, size=SizeRule("fixed", QTY)))
    ref = reference_run(bars, positions, trade_on_close=False)
    last = ours.trades.iloc[-1]
    assert last.exit_reason == "end-of-data" and last.side == "short"
    closing_fee = IB_FIXED.commission(QTY, last.exit_price)
    assert ours.final_equity == pytest.approx(ref["Equity Final [$]"] - closing_fee, rel=1e-12)
    assert len(ours.trades) - 1 == len(ref["_trades"])
