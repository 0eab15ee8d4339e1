"""Benchmark: ibkrtool's backtest engine vs backtesting.py (and backtrader, if installed) on the same bars and trades.

What runs:
1. 1,000,000 synthetic 5-minute bars (a seeded random walk), positions from the REAL ``pivot-breakout`` strategy
   (registry, default parameters), 100 shares fixed, IB fixed commission, fill at the next bar's open.
2. Our engine (best of 3), backtesting.py 0.6.x (one run; its Strategy.next() follows the precomputed positions with
   netting orders), and backtrader (one run on the first ``--bt-bars`` bars: it is slow enough that a full run
   would dominate the benchmark; bars/s is what is compared). Trades and final equity are VERIFIED identical
   before any figure is printed.
3. A 100-combination sweep (pivot × ma_period, 10 × 10) on 100,000 bars on every core: wall time.

Goal: ≥ 100× backtesting.py's bars/s on one core; sweep < 10 s on 2 cores.
Run: ``.venv/bin/python bench/backtest.py`` (``--bars``, ``--sweep-bars``, ``--bt-bars`` to resize; 0 skips).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ibkrtool.backtest.costs import IB_FIXED
from ibkrtool.backtest.engine import BacktestConfig, run_backtest
from ibkrtool.backtest.runner import Market
from ibkrtool.backtest.sizing import SizeRule
from ibkrtool.backtest.sweep import SweepJob, parse_grid, run_sweep
from ibkrtool.model import BarSize, Instrument
from ibkrtool.strategies import get_strategy, parse_params

QTY = 100
CASH = 10_000_000.0


def synthetic_bars(n: int, seed: int = 42) -> pd.DataFrame:
    """Seeded random-walk 5-minute bars (UTC, contiguous), house convention."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0015, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0.0, 0.0003, n))
    wick = np.abs(rng.normal(0.0, 0.0008, n)) * close
    index = pd.date_range("2010-01-04 14:30", periods=n, freq="5min", tz="UTC", name="ts")
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + wick,
                         "low": np.minimum(open_, close) - wick, "close": close,
                         "volume": rng.integers(100, 10_000, n).astype(float), "wap": np.nan, "bar_count": np.nan},
                        index=index)


def ours(bars: pd.DataFrame, positions: np.ndarray, repeat: int = 3) -> tuple[float, object]:
    config = BacktestConfig(cash=CASH, size=SizeRule("fixed", QTY), commission=IB_FIXED, fill="next-open")
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run_backtest(bars, positions, config)
        best = min(best, time.perf_counter() - t0)
    return best, result


def backtesting_py(bars: pd.DataFrame, positions: np.ndarray) -> tuple[float, pd.Series]:
    from backtesting import Backtest, Strategy

    data = bars.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    data.index = data.index.tz_localize(None)

    class Follow(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            delta = positions[len(self.data) - 1] * QTY - self.position.size
            if delta > 0:
                self.buy(size=delta)
            elif delta < 0:
                self.sell(size=-delta)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(data, Follow, cash=CASH, commission=lambda s, p: IB_FIXED.commission(abs(s), p), margin=1.0)
        t0 = time.perf_counter()
        stats = bt.run()
    return time.perf_counter() - t0, stats


def backtrader_run(bars: pd.DataFrame, positions: np.ndarray) -> tuple[float, list, float] | None:
    try:
        import backtrader as bt
    except ImportError:
        return None

    class IBFixed(bt.CommInfoBase):
        params = (("stocklike", True), ("commtype", bt.CommInfoBase.COMM_FIXED))

        def _getcommission(self, size, price, pseudoexec):
            return IB_FIXED.commission(abs(size), price)

    fills: list = []

    class Follow(bt.Strategy):
        def notify_order(self, order) -> None:
            if order.status == order.Completed:
                fills.append((len(self) - 1, order.executed.price, order.executed.size))

        def next(self) -> None:
            delta = positions[len(self) - 1] * QTY - self.position.size
            if delta > 0:
                self.buy(size=delta)
            elif delta < 0:
                self.sell(size=-delta)

    frame = bars[["open", "high", "low", "close", "volume"]].copy()
    frame.index = frame.index.tz_localize(None)
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Follow)
    cerebro.broker.setcash(CASH)
    cerebro.broker.addcommissioninfo(IBFixed())
    t0 = time.perf_counter()
    cerebro.run()
    return time.perf_counter() - t0, fills, cerebro.broker.getvalue()


def verify_bpy(result, stats: pd.Series) -> None:
    ref = stats["_trades"].sort_values("EntryBar").reset_index(drop=True)
    mine = result.trades.sort_values("entry_bar").reset_index(drop=True)
    closed = mine[mine["exit_reason"] != "end-of-data"]
    assert len(closed) == len(ref), (len(closed), len(ref))
    assert (closed["entry_bar"].to_numpy() == ref["EntryBar"].to_numpy()).all()
    assert (closed["exit_bar"].to_numpy() == ref["ExitBar"].to_numpy()).all()
    assert np.array_equal(closed["entry_price"].to_numpy(), ref["EntryPrice"].to_numpy())
    assert np.array_equal(closed["exit_price"].to_numpy(), ref["ExitPrice"].to_numpy())
    if len(closed) == len(mine):
        assert abs(result.final_equity / stats["Equity Final [$]"] - 1) < 1e-9


def verify_bt(result, fills: list, final_value: float) -> None:
    mine = []
    for t in result.trades.itertuples():
        sign = 1 if t.side == "long" else -1
        mine.append((t.entry_bar, t.entry_price, sign * t.quantity))
        if t.exit_reason != "end-of-data":
            mine.append((t.exit_bar, t.exit_price, -sign * t.quantity))
    assert len(mine) == len(fills), (len(mine), len(fills))
    for a, b in zip(mine, fills, strict=True):
        assert a[0] == b[0] and abs(a[1] - b[1]) < 1e-9 * a[1] and a[2] == b[2], (a, b)
    if result.trades["exit_reason"].iloc[-1] != "end-of-data":
        assert abs(result.final_equity / final_value - 1) < 1e-9, (result.final_equity, final_value)


def sweep(n: int) -> tuple[float, int]:
    bars = synthetic_bars(n, seed=7)
    strategy = get_strategy("pivot-breakout")
    combos = parse_grid("pivot=" + ",".join(map(str, range(3, 13))) + " ma_period="
                       + ",".join(map(str, range(10, 101, 10))))
    params = [parse_params(strategy, c) for c in combos]
    job = SweepJob(strategy, BacktestConfig(cash=CASH, size=SizeRule("fixed", QTY)),
                   Market(Instrument.parse("SPY"), BarSize.parse("5m"), rth=False), gaps="warn")
    t0 = time.perf_counter()
    reports = run_sweep(bars, job, params, workers=os.cpu_count())
    return time.perf_counter() - t0, len(reports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--bt-bars", type=int, default=200_000, help="bars for backtrader (0 = skip)")
    parser.add_argument("--sweep-bars", type=int, default=100_000)
    parser.add_argument("--skip-bpy", action="store_true")
    args = parser.parse_args()

    bars = synthetic_bars(args.bars)
    strategy = get_strategy("pivot-breakout")
    t0 = time.perf_counter()
    out = strategy.run(bars, strategy.defaults())
    t_strategy = time.perf_counter() - t0
    positions = out.positions
    print(f"bars: {len(bars):,} synthetic 5-minute; strategy pivot-breakout (defaults) {t_strategy:.3f} s; "
          f"cores: {os.cpu_count()}")

    t_ours, result = ours(bars, positions)
    ours_rate = len(bars) / t_ours
    print(f"ibkrtool engine      : {t_ours:8.3f} s  {ours_rate:14,.0f} bars/s  trades {len(result.trades):,}  "
          f"final equity {result.final_equity:,.2f}")
    rate_with_strategy = len(bars) / (t_ours + t_strategy)
    print(f"ibkrtool strategy+engine: {t_ours + t_strategy:5.3f} s  {rate_with_strategy:14,.0f} bars/s")

    if not args.skip_bpy:
        t_bpy, stats = backtesting_py(bars, positions)
        verify_bpy(result, stats)
        bpy_rate = len(bars) / t_bpy
        print(f"backtesting.py       : {t_bpy:8.3f} s  {bpy_rate:14,.0f} bars/s  trades {len(stats['_trades']):,} "
              f"(identical: verified)")
        print(f"ratio engine / backtesting.py: {ours_rate / bpy_rate:,.0f}x  (goal >= 100x); "
              f"with the strategy's own time: {rate_with_strategy / bpy_rate:,.0f}x")

    if args.bt_bars:
        sub = bars.iloc[: args.bt_bars]
        sub_pos = positions[: args.bt_bars]
        ran = backtrader_run(sub, sub_pos)
        if ran is None:
            print("backtrader           : not installed (pip install backtrader), skipped")
        else:
            t_bt, fills, value = ran
            _, sub_result = ours(sub, sub_pos, repeat=1)
            verify_bt(sub_result, fills, value)
            bt_rate = len(sub) / t_bt
            print(f"backtrader           : {t_bt:8.3f} s  {bt_rate:14,.0f} bars/s  on {len(sub):,} bars, "
                  f"{len(fills):,} fills (identical: verified)")
            print(f"ratio engine / backtrader: {ours_rate / bt_rate:,.0f}x")

    if args.sweep_bars:
        wall, runs = sweep(args.sweep_bars)
        print(f"sweep: {runs} combinations on {args.sweep_bars:,} bars, {os.cpu_count()} processes: {wall:.2f} s wall "
              f"(goal < 10 s)")


if __name__ == "__main__":
    main()
