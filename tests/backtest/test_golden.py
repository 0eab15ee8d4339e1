"""A golden test: eight 5-minute SPY bars whose trades, equity and every metric are worked out by hand below.

Bars (UTC, from 2024-03-04 14:30, i.e. 09:30 New York), open/close:
    i:      0    1    2    3    4    5    6    7
    open:  100  102  104  101   98   96   95   97
    close: 101  103  102   99   97   95   96   98
positions (decided at each close): [1, 1, 0, -1, -1, 0, 0, 0]; fill next-open; 100 shares fixed; cash 100,000;
IB fixed commission: 100 × 0.005 = 0.50 < USD 1.00 minimum → 1.00 per order (cap 1% of ~10,000 not binding).

Trade 1 (long): decided at bar 0 → buy 100 @ open[1] = 102; flat decided at bar 2 → sell @ open[3] = 101.
    gross = 100 × (101 − 102) = −100; commission 2; net −102; bars held 3 − 1 = 2 (closes of bars 1 and 2).
Trade 2 (short): decided at bar 3 → sell 100 @ open[4] = 98; flat decided at bar 5 → buy @ open[6] = 95.
    gross = −100 × (95 − 98) = +300; commission 2; net 298; bars held 2.
Equity at each close (cash + qty × close):
    bar 0: 100,000
    bar 1: cash 100,000 − 10,200 − 1 = 89,799; + 100 × 103 = 100,099
    bar 2: 89,799 + 10,200 = 99,999
    bar 3: cash 89,799 + 10,100 − 1 = 99,898 (flat)
    bar 4: cash 99,898 + 9,800 − 1 = 109,697; − 100 × 97 = 99,997
    bar 5: 109,697 − 9,500 = 100,197
    bar 6: cash 109,697 − 9,500 − 1 = 100,196 (flat);  bar 7: 100,196
Final 100,196 = 100,000 − 102 + 298 → total return 0.196 %.
Trades 2; win rate 50 %; profit factor 298 / 102; avg win 298; avg loss −102; expectancy (298 − 102) / 2 = 98;
commissions 4; exposure: position held at the closes of bars 1, 2, 4, 5 → 4 / 8 = 50 %.
Drawdown: peaks 100,000, 100,099 (bar 1), 100,197 (bar 5). Deepest: bar 3, 99,898 / 100,099 − 1 = −0.2008 %.
Longest: bars 2–4 under the bar-1 peak (3 bars; 14:35 → recovery at bar 5, 14:55 = 20 minutes); bars 6–7 are
only 2 bars.
Annualisation: 5-minute bars, NYSE regular hours: 252 sessions × 23,400 s / 300 s = 19,656 bars a year.
Buy and hold: 100,000 × close[7] / open[0] = 98,000 → −2 %.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ibkrtool.backtest.costs import IB_FIXED
from ibkrtool.backtest.engine import BacktestConfig
from ibkrtool.backtest.runner import Market, evaluate
from ibkrtool.backtest.sizing import SizeRule
from ibkrtool.model import BarSize, Instrument

OPEN = [100, 102, 104, 101, 98, 96, 95, 97]
CLOSE = [101, 103, 102, 99, 97, 95, 96, 98]
POSITIONS = np.array([1, 1, 0, -1, -1, 0, 0, 0], dtype=float)
EQUITY = [100_000, 100_099, 99_999, 99_898, 99_997, 100_197, 100_196, 100_196]


def golden_bars() -> pd.DataFrame:
    index = pd.date_range("2024-03-04 14:30", periods=8, freq="5min", tz="UTC", name="ts")
    o, c = np.array(OPEN, float), np.array(CLOSE, float)
    return pd.DataFrame({"open": o, "high": np.maximum(o, c) + 0.5, "low": np.minimum(o, c) - 0.5, "close": c},
                        index=index)


def test_golden_trades_equity_and_metrics() -> None:
    config = BacktestConfig(cash=100_000, size=SizeRule("fixed", 100), commission=IB_FIXED, fill="next-open")
    market = Market(Instrument.parse("SPY"), BarSize.parse("5m"))
    result, m = evaluate(golden_bars(), POSITIONS, config, market)
    t = result.trades
    assert list(t["side"]) == ["long", "short"]
    assert list(t["entry_price"]) == [102, 98] and list(t["exit_price"]) == [101, 95]
    assert list(t["gross_pnl"]) == [-100, 300] and list(t["commission"]) == [2, 2] and list(t["net_pnl"]) == [-102, 298]
    assert list(t["bars_held"]) == [2, 2]
    assert list(t["entry_bar"]) == [1, 4] and list(t["exit_bar"]) == [3, 6]
    assert list(result.equity) == EQUITY

    assert m["final_equity"] == 100_196
    assert m["total_return_pct"] == pytest.approx(0.196)
    assert m["trades"] == 2 and m["win_rate_pct"] == 50.0
    assert m["profit_factor"] == pytest.approx(298 / 102)
    assert m["avg_win"] == 298 and m["avg_loss"] == -102 and m["expectancy"] == 98
    assert m["commissions"] == 4 and m["net_pnl"] == 196
    assert m["exposure_pct"] == 50.0
    assert m["max_drawdown_pct"] == pytest.approx(100 * (99_898 / 100_099 - 1))
    assert m["max_drawdown_bars"] == 3 and m["max_drawdown_duration"] == str(pd.Timedelta(minutes=20))
    assert m["periods_per_year"] == 19_656

    # Return-based ratios, recomputed here from the hand-derived equity with the documented formulas.
    eq = np.array(EQUITY, float)
    r = eq / np.concatenate([[100_000], eq[:-1]]) - 1
    assert m["volatility_ann_pct"] == pytest.approx(100 * r.std(ddof=1) * math.sqrt(19_656))
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(19_656))
    assert m["sortino"] == pytest.approx(r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(19_656))
    years = 8 * 300 / (365.25 * 86400)
    assert m["cagr_pct"] == pytest.approx(100 * (1.00196 ** (1 / years) - 1))
    assert m["buy_and_hold"]["final_equity"] == pytest.approx(98_000)
    assert m["buy_and_hold"]["total_return_pct"] == pytest.approx(-2.0)
