"""Simulated execution: fill order intents on bars by the backtest's rules, with IB's commission model. Pure.

Fill rules (the same names and meaning as ``backtest.engine``):

* ``next-open`` (default): the intent decided at the close of bar ``i`` fills at the OPEN of the first bar after
  it; the fill time is that bar's start (UTC). A signal on the last bar has no next bar: it is skipped.
* ``close``: it fills at bar ``i``'s CLOSE; the fill time is the end of bar ``i`` (its start + the bar length).

Commissions come from ``backtest.costs`` (IB fixed by default), with the month's cumulative volume for tiered.
Simulated exec ids are ``sim:<order_ref>``, so a rerun upserts the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ibkrtool.backtest.costs import IB_FIXED, CommissionModel
from ibkrtool.errors import InputError
from ibkrtool.model.order import Fill, OrderIntent

FILL_RULES = ("next-open", "close")


@dataclass(frozen=True)
class SimulatedRun:
    fills: list[Fill]
    skipped: list[tuple[OrderIntent, str]]


def _price_at(bars: pd.DataFrame, intent: OrderIntent, fill: str, bar_s: float,
              closes: dict[datetime, float]) -> tuple[float, datetime] | str:
    """(price, fill time) for ``intent`` or the reason it cannot be filled."""
    ts = pd.Timestamp(intent.signal_ts)
    if fill == "close":
        if ts in bars.index:
            return float(bars.at[ts, "close"]), intent.signal_ts + timedelta(seconds=bar_s)
        if np.isfinite(closes.get(intent.signal_ts, np.nan)):
            return float(closes[intent.signal_ts]), intent.signal_ts + timedelta(seconds=bar_s)
        return f"no bar at {intent.signal_ts:%Y-%m-%d %H:%M}Z to take the close from"
    later = bars.index.searchsorted(ts, side="right")
    if later >= len(bars):
        return "no bar after the signal bar yet (next-open fills at the next bar's open)"
    return float(bars["open"].iloc[later]), bars.index[later].to_pydatetime()


def simulate_fills(intents: Sequence[OrderIntent], bars: pd.DataFrame, fill: str = "next-open",
                   commission: CommissionModel = IB_FIXED, bar_s: float = 0.0,
                   closes: dict[datetime, float] | None = None, account: str = "SIM") -> SimulatedRun:
    """Fill ``intents`` on ``bars`` (house bars frame, UTC) by ``fill``; ``bar_s`` is the bar length in seconds
    (only for the fill time of ``close`` fills); ``closes`` maps signal bar → close when ``bars`` lack that bar.
    Raises ``InputError`` for an unknown fill rule."""
    if fill not in FILL_RULES:
        raise InputError(f"--fill {fill!r} is not one of {', '.join(FILL_RULES)}")
    fills: list[Fill] = []
    skipped: list[tuple[OrderIntent, str]] = []
    month_volume: dict[tuple[int, int], float] = {}
    for intent in intents:
        found = _price_at(bars, intent, fill, bar_s, closes or {})
        if isinstance(found, str):
            skipped.append((intent, found))
            continue
        price, when = found
        month = (when.year, when.month)
        fee = commission.commission(intent.quantity, price, month_volume.get(month, 0.0))
        month_volume[month] = month_volume.get(month, 0.0) + intent.quantity
        fills.append(Fill(f"sim:{intent.order_ref}", intent.order_ref, intent.symbol, intent.side, intent.quantity,
                          price, round(fee, 6), when, "simulate", account=account))
    return SimulatedRun(fills, skipped)
