"""Charts of a backtest (matplotlib, Agg backend): candlesticks with the strategy's own overlays, entry/exit markers,
an oscillator panel when the strategy has one (Aroon), and equity and drawdown panels.

Readability: bars are drawn on a bar-number axis (no empty nights and weekends), and a window of more than
``max_candles`` bars is aggregated into OHLC buckets of k consecutive bars (open first, high max, low min, close
last; overlays take the bucket's last value), so 10,000 bars still show ~600 candles. ``start``/``end`` zoom.
Output by suffix: ``.png``, ``.svg``, ``.pdf``, or ``.html`` (an SVG inside a small HTML page).
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ibkrtool.backtest.stats import drawdown
from ibkrtool.errors import InputError

FORMATS = (".png", ".svg", ".pdf", ".html")
OSCILLATORS = ("aroon_up", "aroon_down", "aroon_oscillator")
LINE_STYLES = {"swing_high": dict(color="tab:green", ls="--", lw=0.8, alpha=0.7, drawstyle="steps-post"),
               "swing_low": dict(color="tab:red", ls="--", lw=0.8, alpha=0.7, drawstyle="steps-post")}
SKIP_OVERLAYS = ("pivot_high", "pivot_low")  # pivot bars are only known later; the confirmed swing lines show them


def bucket_size(n: int, max_candles: int) -> int:
    """Bars per drawn candle so that at most ``max_candles`` are drawn."""
    return max(1, -(-n // max_candles))


def aggregate(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """OHLC of every ``k`` consecutive bars; other columns take the bucket's last value."""
    if k == 1:
        return frame
    groups = np.arange(len(frame)) // k
    agg = {c: "last" for c in frame.columns}
    agg.update({"open": "first", "high": "max", "low": "min", "close": "last", "drawdown": "min"})
    out = frame.groupby(groups).agg({c: agg[c] for c in frame.columns})
    out.index = frame.index[::k]
    return out


def _window(index: pd.DatetimeIndex, start: datetime | None, end: datetime | None) -> slice:
    lo = int(index.searchsorted(pd.Timestamp(start))) if start is not None else 0
    hi = int(index.searchsorted(pd.Timestamp(end))) if end is not None else len(index)
    if hi - lo < 2:
        raise InputError("the plot window holds fewer than 2 bars; widen --plot-start/--plot-end")
    return slice(lo, hi)


def render(
    path: str | Path,
    bars: pd.DataFrame,
    equity: pd.Series,
    trades: pd.DataFrame,
    indicators: pd.DataFrame | None = None,
    benchmark: pd.Series | None = None,
    title: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    max_candles: int = 600,
    start_cash: float | None = None,
) -> Path:
    """Draw the chart to ``path`` (format from its suffix). Raises ``InputError`` for an unknown suffix or empty
    window. Times on the axis are the bars' UTC starts. Drawdown is measured from ``start_cash`` (default: the first
    equity value) and the run's running peak."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"--plot {path.name!r}: use a .png, .svg, .pdf or .html file name")
    window = _window(bars.index, start, end)
    frame = bars.iloc[window][["open", "high", "low", "close"]].copy()
    frame["equity"] = equity.iloc[window].to_numpy()
    # Drawdown from the peak of the WHOLE run (a zoomed window keeps the peaks before it).
    full = equity.to_numpy(np.float64)
    frame["drawdown"] = 100 * drawdown(full, full[0] if start_cash is None else start_cash)[window]
    if benchmark is not None:
        frame["benchmark"] = benchmark.iloc[window].to_numpy()
    extra = [] if indicators is None else [c for c in indicators.columns if c not in SKIP_OVERLAYS]
    for col in extra:
        frame[f"ind:{col}"] = indicators[col].iloc[window].to_numpy(np.float64)
    k = bucket_size(len(frame), max_candles)
    drawn = aggregate(frame, k)
    oscillators = [c for c in extra if c in OSCILLATORS]
    fig = _figure(drawn, trades, bars.index[window], k, extra, oscillators, title)
    _save(fig, path)
    return path


def _figure(drawn: pd.DataFrame, trades: pd.DataFrame, index: pd.DatetimeIndex, k: int, extra: list[str],
            oscillators: list[str], title: str) -> plt.Figure:
    rows = [4] + ([1.2] if oscillators else []) + [1.5, 1]
    fig, axes = plt.subplots(len(rows), 1, sharex=True, figsize=(14, 3 + 1.6 * len(rows)),
                             gridspec_kw={"height_ratios": rows, "hspace": 0.06})
    x = np.arange(len(drawn))
    price = axes[0]
    _candles(price, x, drawn)
    for col in extra:
        if col not in OSCILLATORS:
            style = LINE_STYLES.get(col, dict(lw=1.1))
            price.plot(x, drawn[f"ind:{col}"].to_numpy(), label=col, **style)
    _markers(price, trades, index, k)
    price.legend(loc="upper left", fontsize=8, ncols=4)
    price.set_ylabel("price")
    price.set_title(title + (f"  (1 candle = {k} bars)" if k > 1 else ""), fontsize=10, loc="left")
    panel = 1
    if oscillators:
        for col in oscillators:
            axes[panel].plot(x, drawn[f"ind:{col}"].to_numpy(), lw=1, label=col)
        axes[panel].set_ylabel("aroon")
        axes[panel].legend(loc="upper left", fontsize=8, ncols=3)
        panel += 1
    _equity(axes[panel], axes[panel + 1], x, drawn)
    _time_axis(axes[-1], drawn.index)
    for ax in axes:
        ax.grid(alpha=0.25)
    return fig


def _candles(ax: plt.Axes, x: np.ndarray, d: pd.DataFrame) -> None:
    o, h, lo, c = (d[col].to_numpy() for col in ("open", "high", "low", "close"))
    up = c >= o
    colors = np.where(up, "#26a69a", "#ef5350")
    ax.vlines(x, lo, h, colors=colors, lw=0.7)
    body = np.maximum(np.abs(c - o), (h - lo).max() * 1e-4)
    ax.bar(x, body, bottom=np.minimum(o, c), width=0.7, color=colors, linewidth=0)


def _markers(ax: plt.Axes, trades: pd.DataFrame, index: pd.DatetimeIndex, k: int) -> None:
    if trades is None or trades.empty:
        return
    first, last = index[0], index[-1]
    for kind, time_col, price_col in (("entry", "entry_time", "entry_price"), ("exit", "exit_time", "exit_price")):
        t = trades[(trades[time_col] >= first) & (trades[time_col] <= last)]
        if t.empty:
            continue
        pos = index.searchsorted(pd.DatetimeIndex(t[time_col])) // k
        long = (t["side"] == "long").to_numpy()
        if kind == "entry":
            for mask, marker, color, label in ((long, "^", "tab:green", "long entry"),
                                               (~long, "v", "tab:red", "short entry")):
                if mask.any():
                    ax.scatter(pos[mask], t[price_col][mask], marker=marker, s=40, color=color, zorder=5,
                               label=label, edgecolors="black", linewidths=0.4)
        else:
            ax.scatter(pos, t[price_col], marker="x", s=30, color="black", zorder=5, label="exit")


def _equity(ax_eq: plt.Axes, ax_dd: plt.Axes, x: np.ndarray, d: pd.DataFrame) -> None:
    ax_eq.plot(x, d["equity"].to_numpy(), color="tab:blue", lw=1.2, label="strategy")
    if "benchmark" in d:
        ax_eq.plot(x, d["benchmark"].to_numpy(), color="grey", lw=1, ls=":", label="buy & hold")
    ax_eq.set_ylabel("equity")
    ax_eq.legend(loc="upper left", fontsize=8)
    dd = d["drawdown"].to_numpy()
    ax_dd.fill_between(x, dd, 0, color="tab:red", alpha=0.35, step="post")
    ax_dd.set_ylabel("drawdown %")


def _time_axis(ax: plt.Axes, index: pd.DatetimeIndex) -> None:
    labels = index.strftime("%Y-%m-%d %H:%M")

    def fmt(value: float, _pos: int) -> str:
        i = round(value)
        return labels[i] if 0 <= i < len(labels) else ""

    ax.xaxis.set_major_locator(MaxNLocator(8, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(fmt))
    ax.set_xlabel("bar start (UTC)")


def _save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.suffix.lower() == ".html":
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", bbox_inches="tight")
            path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{path.stem}</title></head>"
                            f"<body>{buffer.getvalue()}</body></html>\n", encoding="utf-8")
        else:
            fig.savefig(path, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
