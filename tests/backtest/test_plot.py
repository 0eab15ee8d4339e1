"""Charts: a real render of 10,000 bars with the strategies' own overlays; the files are checked, not eyeballed."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from ibkrtool.backtest import plot
from ibkrtool.backtest.engine import BacktestConfig
from ibkrtool.backtest.runner import Market, backtest_strategy
from ibkrtool.backtest.stats import buy_and_hold_equity
from ibkrtool.errors import InputError
from ibkrtool.model import BarSize, Instrument
from ibkrtool.strategies import get_strategy
from tests.backtest.helpers import random_bars

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def report(name: str, bars: pd.DataFrame):
    strategy = get_strategy(name)
    market = Market(Instrument.parse("SPY"), BarSize.parse("5m"), rth=False)
    return backtest_strategy(bars, strategy, strategy.defaults(), BacktestConfig(), market)


@pytest.mark.parametrize("name", ["pivot-breakout", "ema-aroon"])
def test_png_of_10000_bars_is_a_real_non_blank_chart(name: str, tmp_path) -> None:
    bars = random_bars(10_000, seed=3)
    rep = report(name, bars)
    assert len(rep.result.trades) > 10
    path = plot.render(tmp_path / "chart.png", bars, rep.result.equity, rep.result.trades, rep.indicators,
                       buy_and_hold_equity(bars, 100_000, "next-open"), title=name)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 50_000
    pixels = mpimg.imread(path)
    assert pixels.shape[0] > 600 and pixels.shape[1] > 1000
    rgb = pixels[..., :3]
    assert rgb.std() > 0.05  # not blank
    # Candle colours (teal up, red down) are really drawn: both appear in a good number of pixels.
    teal = (np.abs(rgb - np.array([0x26, 0xA6, 0x9A]) / 255).sum(axis=-1) < 0.05).sum()
    red = (np.abs(rgb - np.array([0xEF, 0x53, 0x50]) / 255).sum(axis=-1) < 0.05).sum()
    assert teal > 500 and red > 500


def test_svg_html_and_zoom(tmp_path) -> None:
    bars = random_bars(3000, seed=4)
    rep = report("ema-aroon", bars)
    lo, hi = bars.index[1000].to_pydatetime(), bars.index[1200].to_pydatetime()
    svg = plot.render(tmp_path / "c.svg", bars, rep.result.equity, rep.result.trades, rep.indicators, start=lo, end=hi)
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "aroon_up" in text
    assert "1 candle =" not in text  # 200 bars need no aggregation
    html = plot.render(tmp_path / "c.html", bars, rep.result.equity, rep.result.trades, rep.indicators)
    assert html.read_text().startswith("<!doctype html>") and "<svg" in html.read_text()


def test_aggregation_keeps_ohlc_meaning() -> None:
    frame = pd.DataFrame({"open": [1, 2, 3, 4.0], "high": [5, 6, 7, 8.0], "low": [0, -1, 2, 1.0],
                          "close": [2, 3, 4, 5.0], "equity": [10, 11, 12, 13.0]},
                         index=pd.date_range("2024-01-02", periods=4, freq="5min", tz="UTC"))
    out = plot.aggregate(frame, 2)
    assert out.to_dict("list") == {"open": [1, 3], "high": [6, 8], "low": [-1, 1], "close": [3, 5], "equity": [11, 13]}
    assert plot.bucket_size(10_000, 600) == 17


def test_bad_plot_requests_are_refused(tmp_path) -> None:
    bars = random_bars(100)
    rep = report("pivot-breakout", bars)
    with pytest.raises(InputError, match="png"):
        plot.render(tmp_path / "c.jpg", bars, rep.result.equity, rep.result.trades)
    with pytest.raises(InputError, match="fewer than 2 bars"):
        plot.render(tmp_path / "c.png", bars, rep.result.equity, rep.result.trades,
                    start=bars.index[-1].to_pydatetime())
