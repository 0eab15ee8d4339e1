"""Risk limits checked before every order. Pure: the caller passes the state (position, counts, P&L, clock).

Rules:
* the kill switch (a file that exists) blocks every order;
* outside the trading-hours window (exchange local time, start inclusive, end exclusive) no order is sent;
* max position: the target's absolute size may not exceed it (orders towards flat always pass);
* max order value: quantity × price may not exceed it (for any order — a live account's hard cap);
* max orders per day and max daily loss block orders that open or grow a position; orders that reduce it pass,
  so a position can always be closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from ibkrtool.errors import InputError
from ibkrtool.model.order import OrderIntent


@dataclass(frozen=True)
class RiskLimits:
    """``None`` = no limit. Money in the instrument's quote currency; ``max_daily_loss`` is a positive amount."""

    max_position: float | None = None
    max_order_value: float | None = None
    max_orders_per_day: int | None = None
    max_daily_loss: float | None = None
    hours: tuple[time, time] | None = None


@dataclass(frozen=True)
class RiskState:
    position: float  # current signed position (shares / base units)
    orders_today: int
    daily_pnl: float  # realised + unrealised of today, quote currency
    local_time: time  # the exchange's wall clock
    killed: bool = False


def parse_hours(text: str | None) -> tuple[time, time] | None:
    """``09:35-15:55`` → (start, end) exchange local times; None for no window. Raises ``InputError``."""
    if not text:
        return None
    try:
        lo, hi = (time.fromisoformat(p.strip()) for p in text.split("-", 1))
    except ValueError:
        raise InputError(f"--hours {text!r}: write HH:MM-HH:MM in the exchange's time zone") from None
    if not lo < hi:
        raise InputError(f"--hours {text!r}: the start must be before the end")
    return lo, hi


def loss_limit_hit(limits: RiskLimits, daily_pnl: float) -> bool:
    return limits.max_daily_loss is not None and daily_pnl <= -abs(limits.max_daily_loss)


def check_order(limits: RiskLimits, intent: OrderIntent, price: float, state: RiskState) -> str | None:
    """Why ``intent`` must not be sent (one line), or None when every limit allows it."""
    if state.killed:
        return "kill switch is set"
    if limits.hours is not None and not limits.hours[0] <= state.local_time < limits.hours[1]:
        return f"outside trading hours {limits.hours[0]:%H:%M}-{limits.hours[1]:%H:%M}"
    value = intent.quantity * price
    if limits.max_order_value is not None and value > limits.max_order_value:
        return f"order value {value:,.2f} exceeds the cap {limits.max_order_value:,.2f}"
    reduces = abs(intent.target) < abs(state.position) and intent.target * state.position >= 0
    if reduces:
        return None
    if limits.max_position is not None and abs(intent.target) > limits.max_position:
        return f"target position {intent.target:g} exceeds the limit {limits.max_position:g}"
    if limits.max_orders_per_day is not None and state.orders_today >= limits.max_orders_per_day:
        return f"{state.orders_today} orders today reached the daily limit"
    if loss_limit_hit(limits, state.daily_pnl):
        return f"daily loss {-state.daily_pnl:,.2f} reached the limit {limits.max_daily_loss:,.2f}"
    return None
