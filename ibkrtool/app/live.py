"""``live``: trade a strategy on live bars through IB (a paper account unless told otherwise), on closed bars only.

The trader itself is ``execution.live``; this module builds its configuration from a typed request, opens the
store and an order-sending gateway (``readonly=False``) through the ``Workspace``, journals the run and returns
the final state as a report. A live (real-money) account needs ``live``, ``real_money_confirmed`` and a
``max_order_value`` (``LiveConfig.checked``), and is refused otherwise by the account check.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from ibkrtool.app.gateway import gateway_of
from ibkrtool.app.workspace import Workspace
from ibkrtool.errors import InputError
from ibkrtool.execution.risk import parse_hours
from ibkrtool.model import BarSize, Instrument
from ibkrtool.model.when import When
from ibkrtool.strategies import parse_param_args

__all__ = ["LiveReport", "LiveRequest", "parse_hours", "parse_param_args", "run_live"]

if TYPE_CHECKING:
    from ibkrtool.execution.decisions import Decision, DecisionLog
    from ibkrtool.execution.live_config import LiveConfig, LiveState

OnStatus = Callable[["LiveState"], None]
"""Called with the trader's state after every closed bar (for a status line)."""


@dataclass(frozen=True)
class LiveRequest:
    """What to trade and how. ``params``: the strategy's parameters as text; ``quantity``: shares (base units) per
    unit of target; ``what_to_show`` None: the instrument's default; ``hours``: the trading window in exchange time;
    ``duration_s``: real seconds to run; ``until``: an instant on IB's clock (a bare day is refused); ``decisions``:
    a CSV to append every decision to (``-`` = stdout); ``run_id`` '': ``live-<strategy>-<symbol>-<bar size>``."""

    strategy: str
    instrument: Instrument
    params: dict[str, str] = field(default_factory=dict)
    quantity: float = 1.0
    bar_size: BarSize = field(default_factory=lambda: BarSize.parse("5m"))
    warmup_days: int = 2
    rth: bool = True
    what_to_show: str | None = None
    max_position: float | None = None
    max_order_value: float | None = None
    max_orders_per_day: int | None = None
    max_daily_loss: float | None = None
    hours: tuple[time, time] | None = None
    kill_file: str | None = None
    flatten_on_exit: bool = False
    duration_s: float | None = None
    until: When | None = None
    live: bool = False
    real_money_confirmed: bool = False
    account: str = ""
    run_id: str = ""
    decisions: str | None = None

    def check(self) -> None:
        """Refuse what cannot run before the database or the gateway is touched (``InputError``, exit 3)."""
        if self.until is not None and self.until.instant is None:
            raise InputError(f"--until {self.until} is a date; give an instant on IB's clock with a time and a zone "
                             f"({self.until}T16:00:00-05:00), or a time with --tz America/New_York")
        if self.decisions and self.decisions != "-":
            folder = os.path.dirname(self.decisions) or "."
            if os.path.isdir(self.decisions) or not os.path.isdir(folder):
                raise InputError(f"--decisions {self.decisions}: not a file in an existing folder")
        self.config()

    def config(self) -> LiveConfig:
        """The trader's configuration (``LiveConfig.checked``); raises ``InputError`` for an unusable one."""
        from ibkrtool.execution.live_config import LiveConfig
        from ibkrtool.execution.planner import FOREX_LOTS, STOCK_LOTS
        from ibkrtool.execution.risk import RiskLimits
        from ibkrtool.strategies import get_strategy, parse_params

        instrument = self.instrument
        limits = RiskLimits(self.max_position, self.max_order_value, self.max_orders_per_day, self.max_daily_loss,
                            self.hours)
        return LiveConfig(
            strategy=self.strategy, params=parse_params(get_strategy(self.strategy), self.params),
            symbol=instrument.display, quantity=self.quantity, bar_size=self.bar_size, run_id=self.run_id,
            warmup_days=self.warmup_days, what_to_show=self.what_to_show or instrument.default_what_to_show,
            rth=self.rth and not instrument.is_forex, limits=limits, kill_file=self.kill_file,
            flatten_on_exit=self.flatten_on_exit, duration_s=self.duration_s,
            until=self.until.instant if self.until is not None else None, mode="live" if self.live else "paper",
            real_money_confirmed=self.real_money_confirmed, account=self.account,
            lots=FOREX_LOTS if instrument.is_forex else STOCK_LOTS).checked()

    def journal_args(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "symbol": self.instrument.display, "params": str(self.params),
                "quantity": self.quantity, "bar_size": str(self.bar_size), "what_to_show": self.what_to_show,
                "max_position": self.max_position, "max_order_value": self.max_order_value,
                "max_orders_per_day": self.max_orders_per_day, "max_daily_loss": self.max_daily_loss,
                "duration_s": self.duration_s, "until": str(self.until or ""), "live": self.live,
                "account": self.account, "run_id": self.run_id, "decisions": self.decisions}


@dataclass
class LiveReport:
    """How the trader ended: its run id, why it stopped, the last bar, the position, counts of decisions, P&L."""

    run_id: str
    strategy: str
    symbol: str
    stop_reason: str
    last_bar: datetime | None
    position: float
    orders: int
    fills: int
    skips: int
    risk_blocks: int
    reconnects: int
    pnl: float
    decisions: list[Decision] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "strategy": self.strategy, "symbol": self.symbol,
                "stopped": self.stop_reason,
                "last_bar": self.last_bar.strftime("%Y-%m-%dT%H:%M:%SZ") if self.last_bar else None,
                "position": self.position, "orders": self.orders, "fills": self.fills, "skips": self.skips,
                "risk_blocks": self.risk_blocks, "reconnects": self.reconnects, "pnl_today": self.pnl}


def run_live(ws: Workspace, request: LiveRequest, on_status: OnStatus | None = None) -> LiveReport:
    """Trade until ``duration_s`` or ``until`` (or Ctrl-C); returns the final state.

    Raises ``InputError`` (exit 3) for bad input, ``OrderRefused`` (exit 6) for an account the mode may not trade
    in, ``GatewayError`` (exit 4) when the gateway cannot be reached or reconnecting failed for good.
    """
    request.check()
    config = request.config()
    engine = ws.store(write=True)
    with ws.journal("live", request.journal_args()) as record:
        state, log = ws.run_async(_trade(ws, config, engine, request.decisions, on_status))
        record.rows_written = len(log.of_kind("fill"))
    return _report(config, state, log)


async def _trade(ws: Workspace, config: LiveConfig, engine: Any, decisions: str | None,
                 on_status: OnStatus | None) -> tuple[LiveState, DecisionLog]:
    from ibkrtool.execution.live import run_live as trade

    async with gateway_of(ws, readonly=False) as gateway:
        return await trade(gateway, config, engine, decisions, on_status)


def _report(config: LiveConfig, state: LiveState, log: DecisionLog) -> LiveReport:
    return LiveReport(
        run_id=config.run_id, strategy=config.strategy, symbol=config.symbol, stop_reason=state.stop_reason,
        last_bar=state.last_bar, position=state.position, orders=len(log.of_kind("order")),
        fills=len(log.of_kind("fill")), skips=len(log.of_kind("skip")), risk_blocks=len(log.of_kind("risk")),
        reconnects=state.reconnects, pnl=state.pnl, decisions=list(log.records))
