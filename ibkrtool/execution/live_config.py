"""The live trader's configuration and running state (see ``execution.live``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime

from ibkrtool.errors import InputError
from ibkrtool.execution.planner import STOCK_LOTS, LotRules
from ibkrtool.execution.risk import RiskLimits
from ibkrtool.model import BarSize
from ibkrtool.model.order import Fill


def default_run_id(strategy: str, symbol: str, bar_size: BarSize) -> str:
    return f"live-{strategy}-{symbol}-{bar_size}"


@dataclass(frozen=True)
class LiveConfig:
    """What to trade and how. ``quantity``: shares (base units) per unit of target; ``duration_s``: real seconds;
    ``until``: stop once a closed bar ends at or after it (IB's clock, UTC)."""

    strategy: str
    params: object  # the strategy's frozen parameter dataclass
    symbol: str
    quantity: float
    bar_size: BarSize = field(default_factory=lambda: BarSize.parse("5m"))
    run_id: str = ""
    warmup_days: int = 2
    what_to_show: str = "TRADES"
    rth: bool = True
    limits: RiskLimits = field(default_factory=RiskLimits)
    kill_file: str | None = None
    flatten_on_exit: bool = False
    duration_s: float | None = None
    until: datetime | None = None
    mode: str = "paper"
    real_money_confirmed: bool = False
    account: str = ""
    lots: LotRules = STOCK_LOTS
    order_timeout_s: float = 30.0
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def checked(self) -> LiveConfig:
        """Self with the default run id; raises ``InputError`` for an unusable configuration."""
        if self.quantity <= 0:
            raise InputError(f"--quantity must be positive, got {self.quantity:g}")
        if self.warmup_days < 1:
            raise InputError("--warmup-days must be at least 1")
        if self.mode == "live" and not (self.real_money_confirmed and self.limits.max_order_value):
            raise InputError("--live needs --yes-i-mean-real-money and --max-order-value N")
        return self if self.run_id else replace(self, run_id=default_run_id(self.strategy, self.symbol, self.bar_size))


@dataclass
class LiveState:
    position: float = 0.0
    working: int = 0
    orders_today: int = 0
    fills: list[Fill] = field(default_factory=list)
    last_bar: datetime | None = None
    last_close: float = math.nan
    pnl: float = 0.0
    halted: str = ""  # why trading stopped (daily loss), '' = trading
    paused: bool = False  # TWS lost its link to IB, until restored: no orders
    reconnects: int = 0
    stop_reason: str = ""
