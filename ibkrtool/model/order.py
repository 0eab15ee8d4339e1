"""Orders in the field's words: what we intend to trade, and what actually filled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Side(str, Enum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(str, Enum):
    MARKET = "MKT"
    LIMIT = "LMT"
    STOP = "STP"


@dataclass(frozen=True)
class OrderIntent:
    """An order we mean to place. ``order_ref`` is the idempotency key (IB's ``orderRef``).

    ``signal_ts`` is the start (UTC) of the bar whose close produced the signal; ``target`` is the position the
    order brings us to, ``quantity`` is always positive.
    """

    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    order_ref: str
    signal_ts: datetime
    target: float
    limit_price: float | None = None
    reason: str | None = None

    @property
    def signed_quantity(self) -> float:
        return self.side.sign * self.quantity


@dataclass(frozen=True)
class Fill:
    """One execution: IB's exec id (or a simulated one), price, quantity (positive) and commission."""

    exec_id: str
    order_ref: str
    symbol: str
    side: Side
    quantity: float
    price: float
    commission: float
    time: datetime
    mode: str  # "simulate" | "paper" | "live"
    commission_currency: str = "USD"
    order_id: int | None = None
    perm_id: int | None = None
    account: str | None = None
