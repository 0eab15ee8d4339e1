"""The backtest engine: target directions in, trades and a mark-to-market equity curve out. Pure, no I/O.

Semantics (stated in every result as ``fill``):

* ``positions[i]`` in {-1, 0, +1} is the direction the strategy wants, decided on bar ``i``'s CLOSE with data up
  to and including bar ``i`` (no look-ahead is possible: the engine never lets a decision act earlier).
* ``fill="next-open"`` (default): that decision is filled at bar ``i+1``'s OPEN.
  ``fill="close"``: it is filled at bar ``i``'s CLOSE (the optimistic "trade on close" convention).
* The decision on the LAST bar is never executed (there is no later bar to hold anything over). A position still
  open after the last bar is closed at the last bar's close with exit reason ``end-of-data``.
* A change from long to short (or back) is two orders at the same price: close the old trade, open the new one.
* Quantity is fixed when a trade opens (``SizeRule``); equity sizing uses the equity at the fill instant.
* Cash: buying costs ``qty × price + commission``; selling (also short) credits ``qty × price − commission``.
  No margin interest, borrow fees or dividends are modelled. Equity = cash + signed quantity × close.
* Slippage moves each fill price against the order (buys higher, sells lower).

The work is vectorised: fills happen only where the executed direction changes, so the per-trade loop runs once
per order, and the per-bar equity/position series are built with array indexing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ibkrtool.backtest.costs import IB_FIXED, CommissionModel, Slippage
from ibkrtool.backtest.sizing import IDEALPRO_MIN_UNITS, SizeRule
from ibkrtool.errors import InputError

ENGINE_VERSION = "1.0"
FILL_MODES = ("next-open", "close")
END_OF_DATA = "end-of-data"
TRADE_COLUMNS = (
    "entry_time", "exit_time", "side", "quantity", "entry_price", "exit_price", "gross_pnl", "commission",
    "net_pnl", "return_pct", "bars_held", "entry_reason", "exit_reason", "entry_bar", "exit_bar", "slippage_cost",
)


@dataclass(frozen=True)
class BacktestConfig:
    """How to simulate. Money is in the instrument's quote currency; ``tick`` is its minimum price increment."""

    cash: float = 100_000.0
    size: SizeRule = field(default_factory=SizeRule)
    commission: CommissionModel = IB_FIXED
    slippage: Slippage = field(default_factory=Slippage)
    fill: str = "next-open"
    tick: float = 0.01
    is_forex: bool = False

    def check(self) -> None:
        """Raise ``InputError`` for a configuration no backtest can run with."""
        if not np.isfinite(self.cash) or self.cash <= 0:
            raise InputError(f"starting cash must be a positive amount, got {self.cash:g}")
        if self.fill not in FILL_MODES:
            raise InputError(f"fill {self.fill!r} is not one of {', '.join(FILL_MODES)}")
        if self.size.amount <= 0:
            raise InputError(f"size {self.size} must be positive")
        if self.slippage.amount < 0 or not self.tick > 0:
            raise InputError("slippage and tick size must be >= 0 and > 0")


@dataclass
class BacktestResult:
    """Trades (one row per round trip, columns ``TRADE_COLUMNS``), per-bar ``equity`` and signed ``position``."""

    trades: pd.DataFrame
    equity: pd.Series
    position: pd.Series
    config: BacktestConfig
    warnings: list[str] = field(default_factory=list)

    @property
    def final_equity(self) -> float:
        return float(self.equity.iloc[-1])


def executed_directions(positions: np.ndarray, fill: str) -> np.ndarray:
    """Direction held over each bar's close after that bar's fills (the decision schedule, shifted per ``fill``)."""
    n = len(positions)
    held = np.zeros(n)
    if fill == "next-open":
        held[1:] = positions[:-1]
    elif n > 1:
        held[:-1] = positions[:-1]
        held[-1] = positions[-2]  # the last bar's decision is not executed
    return held


def run_backtest(
    bars: pd.DataFrame,
    positions: np.ndarray,
    config: BacktestConfig | None = None,
    signals: np.ndarray | None = None,
    method: str = "auto",
) -> BacktestResult:
    """Simulate ``positions`` (target direction per bar, decided at its close) on ``bars``.

    ``bars`` follows the house convention (UTC ``ts`` index, float ``open``/``close`` …) and must already be
    validated (see ``backtest.validate``). ``signals[i]`` (str or None) names why the target changed at bar ``i``
    and becomes the trade's entry/exit reason. ``method``: ``vector`` (whole-array arithmetic; only when orders are
    independent, see ``vectorisable``), ``loop`` (one Python step per order; any config) or ``auto``. Both give the
    same result where both apply (a test checks it). Raises ``InputError`` for bad config or array lengths.
    """
    config = config or BacktestConfig()
    config.check()
    n = len(bars)
    positions = np.asarray(positions, dtype=np.float64)
    if n == 0:
        raise InputError("no bars to backtest")
    if positions.shape != (n,):
        raise InputError(f"positions has {positions.size} values for {n} bars; they must match one to one")
    magnitude = np.abs(positions)
    if not (magnitude * (magnitude - 1.0) == 0.0).all():  # also false for NaN
        raise InputError("positions must be -1 (short), 0 (flat) or 1 (long) at every bar, without NaN")
    held = executed_directions(positions, config.fill)
    opens = bars["open"].to_numpy(np.float64)
    closes = bars["close"].to_numpy(np.float64)
    prices = opens if config.fill == "next-open" else closes
    if method == "auto":
        method = "vector" if vectorisable(config) else "loop"
    if method == "vector":
        if not vectorisable(config):
            raise ValueError("equity sizing and tiered commissions need method='loop' (orders depend on each other)")
        return _vectorised(config, bars.index, held, prices, closes, signals)
    sim = _Simulation(config, bars.index, prices, closes, signals)
    changes = np.flatnonzero(np.diff(held, prepend=0.0))
    for j in changes:
        sim.change(int(j), held[j])
    sim.finish(n - 1)
    return sim.result(n, closes)


def vectorisable(config: BacktestConfig) -> bool:
    """True when no order depends on an earlier one: quantities not tied to equity, commission not to volume."""
    return config.size.kind != "equity" and not config.commission.tiered


class _Simulation:
    """The per-order loop: runs once per direction change, never per bar."""

    def __init__(self, config: BacktestConfig, index: pd.DatetimeIndex, prices: np.ndarray, closes: np.ndarray,
                 signals: np.ndarray | None) -> None:
        self.config, self.index, self.prices, self.closes, self.signals = config, index, prices, closes, signals
        self.offset = 1 if config.fill == "next-open" else 0  # decision bar = fill bar - offset
        self.cash = config.cash
        self.qty = 0.0  # signed
        self.open_trade: dict | None = None
        self.rows: list[dict] = []
        self.fill_bars: list[int] = []
        self.cash_after: list[float] = []
        self.qty_after: list[float] = []
        self.month_volume: dict[int, float] = {}
        # Calendar month (UTC) of each bar, only for schedules priced on the month's cumulative volume.
        self.months = (index.year * 12 + index.month).to_numpy() if config.commission.tiered else None
        self.warnings: list[str] = []
        self.skipped = 0
        self.end_qty = 0.0  # position held through the last close and closed there (end-of-data)

    def _reason(self, j: int, default: str) -> str:
        if self.signals is None:
            return default
        decided = j - self.offset
        value = self.signals[decided] if 0 <= decided < len(self.signals) else None
        return str(value) if value is not None and value == value else default

    def _order(self, j: int, quantity: float, price: float, side: float) -> tuple[float, float, float]:
        """Fill ``quantity`` (>0) on ``side`` (+1 buy, -1 sell) at bar ``j``: returns fill price, commission, slip."""
        slip = self.config.slippage.per_unit(price, self.config.tick)
        fill_price = price + side * slip
        month = int(self.months[j]) if self.months is not None else 0
        fee = self.config.commission.commission(quantity, fill_price, self.month_volume.get(month, 0.0))
        self.month_volume[month] = self.month_volume.get(month, 0.0) + quantity
        self.cash -= side * quantity * fill_price + fee
        return fill_price, fee, slip * quantity

    def change(self, j: int, direction: float) -> None:
        """The executed direction becomes ``direction`` at bar ``j``: close what is open, open the new trade."""
        price = self.prices[j]
        if self.open_trade is not None:
            self._close(j, price, self._reason(j, "exit:signal"))
        if direction != 0:
            self._open(j, direction, price)
        self.fill_bars.append(j)
        self.cash_after.append(self.cash)
        self.qty_after.append(self.qty)

    def _open(self, j: int, direction: float, price: float) -> None:
        equity = self.cash + self.qty * price
        quantity = self.config.size.quantity(price, equity)
        if quantity <= 0:
            self.skipped += 1
            return
        fill_price, fee, slip = self._order(j, quantity, price, direction)
        self.qty = direction * quantity
        self.open_trade = {"entry_bar": j, "entry_price": fill_price, "fee": fee, "slip": slip,
                           "quantity": quantity, "direction": direction,
                           "entry_reason": self._reason(j, "entry:signal")}
        if self.config.is_forex and quantity < IDEALPRO_MIN_UNITS and not self.warnings:
            self.warnings.append(f"forex trades below IDEALPRO's {IDEALPRO_MIN_UNITS:,} unit minimum are odd lots "
                                 "that IB fills away from IDEALPRO at worse prices")

    def _close(self, j: int, price: float, reason: str, at_close: bool = False) -> None:
        trade = self.open_trade
        assert trade is not None
        fill_price, fee, slip = self._order(j, trade["quantity"], price, -trade["direction"])
        gross = trade["direction"] * trade["quantity"] * (fill_price - trade["entry_price"])
        commission = trade["fee"] + fee
        entry_bar = trade["entry_bar"]
        # Bars whose close the position was held through: entries at an open count their own bar.
        held = j - entry_bar + (1 if at_close and self.offset == 1 else 0)
        self.rows.append({
            "entry_time": None, "exit_time": None,
            "side": "long" if trade["direction"] > 0 else "short", "quantity": trade["quantity"],
            "entry_price": trade["entry_price"], "exit_price": fill_price, "gross_pnl": gross,
            "commission": commission, "net_pnl": gross - commission,
            "return_pct": 100.0 * (gross - commission) / (trade["quantity"] * trade["entry_price"]),
            "bars_held": held, "entry_reason": trade["entry_reason"], "exit_reason": reason,
            "entry_bar": entry_bar, "exit_bar": j, "slippage_cost": trade["slip"] + slip,
        })
        self.qty = 0.0
        self.open_trade = None

    def finish(self, last: int) -> None:
        """Close what is still open at the last bar's close (``end-of-data``)."""
        if self.open_trade is None:
            return
        self.end_qty = self.qty
        self._close(last, self.closes[last], END_OF_DATA, at_close=True)
        self.fill_bars.append(last)
        self.cash_after.append(self.cash)
        self.qty_after.append(self.qty)

    def result(self, n: int, closes: np.ndarray) -> BacktestResult:
        fill_bars = np.asarray(self.fill_bars, dtype=np.int64)
        cash = np.concatenate([[self.config.cash], np.asarray(self.cash_after, dtype=np.float64)])
        qty = np.concatenate([[0.0], np.asarray(self.qty_after, dtype=np.float64)])
        # Which fill is in force at each bar's close: the last one at or before it (0 = before any fill).
        in_force = np.searchsorted(fill_bars, np.arange(n), side="right")
        held_qty = qty[in_force]
        equity = cash[in_force] + held_qty * closes
        if self.end_qty:
            held_qty[-1] = self.end_qty  # held through the last close, closed at it
        if self.skipped:
            self.warnings.append(f"{self.skipped} entries skipped: the size rule allowed no whole share/unit")
        trades = pd.DataFrame(self.rows, columns=list(TRADE_COLUMNS))
        if not trades.empty:
            trades["entry_time"] = self.index[trades["entry_bar"].to_numpy(np.int64)]
            trades["exit_time"] = self.index[trades["exit_bar"].to_numpy(np.int64)]
            trades[["entry_bar", "exit_bar", "bars_held"]] = trades[["entry_bar", "exit_bar", "bars_held"]].astype(
                np.int64)
        return BacktestResult(
            trades=trades,
            equity=pd.Series(equity, index=self.index, name="equity"),
            position=pd.Series(held_qty, index=self.index, name="position"),
            config=self.config,
            warnings=self.warnings,
        )


def _reasons(signals: np.ndarray | None, bars_: np.ndarray, offset: int, default: str) -> np.ndarray:
    """Signal text at each decision bar (fill bar − offset), or ``default`` where there is none."""
    out = np.full(bars_.size, default, dtype=object)
    if signals is None or bars_.size == 0:
        return out
    decided = bars_ - offset
    ok = (decided >= 0) & (decided < len(signals))
    values = np.asarray(signals, dtype=object)[decided[ok]]
    present = np.array([v is not None and v == v for v in values], dtype=bool)
    picked = out[ok]
    picked[present] = values[present].astype(str)
    out[ok] = picked
    return out


def _vectorised(config: BacktestConfig, index: pd.DatetimeIndex, held: np.ndarray, prices: np.ndarray,
                closes: np.ndarray, signals: np.ndarray | None) -> BacktestResult:
    """The same simulation as ``_Simulation`` in whole-array steps (independent orders only)."""
    rt = _round_trips(config, held, prices, closes)
    equity, position = _curves(config, rt, closes)
    offset = 1 if config.fill == "next-open" else 0
    keep = rt["qty"] > 0
    per_trade = {k: v[keep] for k, v in rt.items() if k not in ("slot", "changes")}
    trades = _trade_table(per_trade, index, signals, offset)
    warnings = []
    if (~keep).any():
        warnings.append(f"{int((~keep).sum())} entries skipped: the size rule allowed no whole share/unit")
    if config.is_forex and (rt["qty"][keep] < IDEALPRO_MIN_UNITS).any():
        warnings.append(f"forex trades below IDEALPRO's {IDEALPRO_MIN_UNITS:,} unit minimum are odd lots "
                        "that IB fills away from IDEALPRO at worse prices")
    return BacktestResult(trades, pd.Series(equity, index=index, name="equity"),
                          pd.Series(position, index=index, name="position"), config, warnings)


def _round_trips(config: BacktestConfig, held: np.ndarray, prices: np.ndarray, closes: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """One entry per trade (entry bar, exit bar, prices, fees…) plus the change bars and each trade's slot in them."""
    n = held.size
    changes = np.flatnonzero(np.diff(held, prepend=0.0))
    opened = held[changes] != 0
    entry_bar = changes[opened]
    direction = held[entry_bar]
    # Each trade ends at the next change after its entry, or at the last close (end-of-data).
    next_change = np.concatenate([changes[1:], [n]])[opened]
    at_end = next_change >= n
    exit_bar = np.where(at_end, n - 1, next_change)
    raw_entry = prices[entry_bar]
    raw_exit = np.where(at_end, closes[n - 1], prices[np.minimum(exit_bar, n - 1)])
    qty = _quantities(config, raw_entry)
    slip_in, slip_out = _slip(config, raw_entry), _slip(config, raw_exit)
    entry_px, exit_px = raw_entry + direction * slip_in, raw_exit - direction * slip_out
    return {
        "entry_bar": entry_bar, "exit_bar": exit_bar, "at_end": at_end, "direction": direction, "qty": qty,
        "entry_px": entry_px, "exit_px": exit_px, "fee_in": _fees(config.commission, qty, entry_px),
        "fee_out": _fees(config.commission, qty, exit_px), "slip_cost": qty * (slip_in + slip_out),
        "slot": np.flatnonzero(opened), "changes": changes,
    }


def _curves(config: BacktestConfig, rt: dict[str, np.ndarray], closes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equity and signed position at each bar's close from the round trips' cash flows."""
    changes, slot, at_end, d, qty = rt["changes"], rt["slot"], rt["at_end"], rt["direction"], rt["qty"]
    # Entries pay (or, short, receive) the fill value plus fee; exits the reverse. Both land on change bars.
    flow_in = -(d * qty * rt["entry_px"]) - rt["fee_in"]
    flow_out = d * qty * rt["exit_px"] - rt["fee_out"]
    change_flow = np.zeros(changes.size)
    change_flow[slot] += flow_in
    change_flow[slot[~at_end] + 1] += flow_out[~at_end]
    # Slot 0 is the state before any fill; slot k+1 the state after change k.
    cash_after = config.cash + np.concatenate([[0.0], np.cumsum(change_flow)])
    qty_after = np.zeros(changes.size + 1)
    qty_after[slot + 1] = d * qty
    marks = np.zeros(closes.size, dtype=np.int64)
    marks[changes] = 1
    in_force = np.cumsum(marks)
    position = qty_after[in_force]
    equity = cash_after[in_force] + position * closes
    if at_end.any():  # the end-of-data close happens at the last close: equity there is the final cash
        equity[-1] += flow_out[at_end].sum() - position[-1] * closes[-1]
    return equity, position


def _trade_table(rt: dict[str, np.ndarray], index: pd.DatetimeIndex, signals: np.ndarray | None,
                 offset: int) -> pd.DataFrame:
    gross = rt["direction"] * rt["qty"] * (rt["exit_px"] - rt["entry_px"])
    commission = rt["fee_in"] + rt["fee_out"]
    entry_bar, exit_bar, at_end = rt["entry_bar"], rt["exit_bar"], rt["at_end"]
    return pd.DataFrame({
        "entry_time": index[entry_bar], "exit_time": index[exit_bar],
        "side": np.where(rt["direction"] > 0, "long", "short").astype(object), "quantity": rt["qty"],
        "entry_price": rt["entry_px"], "exit_price": rt["exit_px"], "gross_pnl": gross,
        "commission": commission, "net_pnl": gross - commission,
        "return_pct": 100.0 * (gross - commission) / (rt["qty"] * rt["entry_px"]),
        "bars_held": (exit_bar - entry_bar + (at_end & (offset == 1))).astype(np.int64),
        "entry_reason": _reasons(signals, entry_bar, offset, "entry:signal"),
        "exit_reason": np.where(at_end, END_OF_DATA, _reasons(signals, exit_bar, offset, "exit:signal")).astype(object),
        "entry_bar": entry_bar.astype(np.int64), "exit_bar": exit_bar.astype(np.int64),
        "slippage_cost": rt["slip_cost"],
    }, columns=list(TRADE_COLUMNS))


def _quantities(config: BacktestConfig, price: np.ndarray) -> np.ndarray:
    if config.size.kind == "fixed":
        return np.full(price.size, float(np.floor(config.size.amount)))
    return np.floor(config.size.amount / price * (1 + 1e-12))


def _slip(config: BacktestConfig, price: np.ndarray) -> np.ndarray:
    slip = config.slippage
    if slip.unit == "ticks":
        return np.full(price.size, slip.amount * config.tick)
    return price * slip.amount * 1e-4


def _fees(model: CommissionModel, qty: np.ndarray, price: np.ndarray) -> np.ndarray:
    """``CommissionModel.commission`` for arrays (non-tiered schedules)."""
    value = qty * price
    fee = qty * model.per_share + value * model.pct
    fee = np.maximum(fee, model.minimum * price if model.min_in_usd_base else model.minimum)
    if model.maximum_pct:
        fee = np.minimum(fee, value * model.maximum_pct)
    return np.where(qty > 0, fee, 0.0)
