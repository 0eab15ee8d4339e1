"""The live trader: one asyncio loop, one gateway, decisions only on closed bars.

Start-up: check the account (paper unless ``mode == 'live'`` with the confirmation) and qualify the contract. Then
per session (at start, after every reconnect and every resubscription):
1. reconcile with IB: position, working orders, today's executions by ``orderRef`` (recorded in the store);
2. ``gateway.closed_bars``: ``warmup_days`` of bars, the bars missed while away, and each bar as it closes
   (the bar still forming is never evaluated);
3. evaluate the last closed bar once (also right after a reconnect), then again each time a bar closes.

Before every order the position and working orders are read from IB: no order while one is working, no
duplicate entry (the order for the signal of bar B has ``orderRef = <run id>:<B>``, and a ref IB or the store
already knows is never sent again). Risk limits (``execution.risk``) and the kill-switch file are checked on
every bar, in the exchange's time zone (``ibkrtool.calendars``, as the backtest and resample use). The run id is
deterministic (``live-<strategy>-<symbol>-<bar size>`` unless given) so that a restarted trader recognises its
own orders.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from contextlib import aclosing
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from ibkrtool import calendars
from ibkrtool.errors import GatewayError, InputError, OrderRefused
from ibkrtool.execution.decisions import Decision, DecisionLog, DecisionValues
from ibkrtool.execution.executor import check_account
from ibkrtool.execution.live_config import LiveConfig, LiveState, default_run_id  # noqa: F401 (re-exported)
from ibkrtool.execution.planner import rebalance
from ibkrtool.execution.pnl import daily_pnl
from ibkrtool.execution.risk import RiskState, check_order, loss_limit_hit
from ibkrtool.ib.account import account_mode
from ibkrtool.ib.events import ConnectivityEvent, ConnectivityLost, Disconnected, Restored
from ibkrtool.ib.live_bars import ClosedBars
from ibkrtool.ib.orders import by_ref
from ibkrtool.ib.reconnect import ReconnectPolicy
from ibkrtool.model import Instrument
from ibkrtool.model.contract import Contract
from ibkrtool.model.order import Fill, OrderIntent

if TYPE_CHECKING:
    from ibkrtool.ib.gateway import Gateway
    from ibkrtool.strategies.base import Strategy

log = logging.getLogger(__name__)
UTC = timezone.utc
LINK_ERRORS = (ConnectionError, OSError, asyncio.TimeoutError)


def session_days(index: pd.DatetimeIndex, instrument: Instrument) -> np.ndarray:
    """The trading day of each instant, by ``ibkrtool.calendars``: the exchange's local date; a forex day runs
    17:00→17:00 New York and carries the date on which it closes."""
    local = index.tz_convert(calendars.exchange_zone(instrument))
    if instrument.is_forex:
        roll = calendars.FOREX_ROLL
        local = local + (pd.Timedelta(days=1) - pd.Timedelta(hours=roll.hour, minutes=roll.minute))
    return np.asarray(local.date)


class LiveTrader:
    """Runs ``config`` through ``gateway`` until ``duration_s``/``until``; see the module doc. ``on_status(state)``
    is called after every bar for the CLI's status line. ``strategy`` defaults to the registered ``config.strategy``.
    """

    def __init__(self, gateway: Gateway, config: LiveConfig, engine: Engine | None = None,
                 decisions: DecisionLog | None = None, on_status: Callable[[LiveState], None] | None = None,
                 strategy: Strategy | None = None) -> None:
        from ibkrtool.strategies import get_strategy

        self.gateway = gateway
        self.cfg = config.checked()
        self.engine, self.decisions = engine, decisions or DecisionLog()
        if engine is not None and self.decisions.sink is None:
            self.decisions.sink = self._store_decision
        self.on_status = on_status or (lambda state: None)
        self.strategy = strategy or get_strategy(self.cfg.strategy)
        self.instrument = Instrument.parse(self.cfg.symbol)
        self.zone: ZoneInfo = calendars.exchange_zone(self.instrument)
        self.policy = ReconnectPolicy(self.cfg.backoff_s, self.cfg.max_backoff_s)
        self.state = LiveState()
        self.evaluated: datetime | None = None
        self.started = 0.0
        self.contract: Contract | None = None
        self.account = ""

    # ---- the outer loop: sessions, reconnecting through the gateway's one loop ------------------------------------
    async def run(self) -> LiveState:
        """Trade until the stop condition; returns the final state. Raises ``OrderRefused`` for a refused account,
        ``IbRefused``/``InputError`` for an unknown symbol or strategy problem, ``GatewayError`` when reconnecting
        failed for good."""
        self.started = asyncio.get_running_loop().time()
        self.account = check_account(self.gateway.managed_accounts(), self.cfg.account, self.cfg.mode,
                                     self.cfg.real_money_confirmed)
        self.contract = await self.gateway.qualify(self.instrument, self.engine)
        while not self._done():
            try:
                ended = await self._session()
            except LINK_ERRORS as exc:  # the link died mid-request
                ended = Disconnected(f"session ended ({exc or type(exc).__name__})")
            if ended is None or self._done():
                break
            self.state.reconnects += 1
            if isinstance(ended, Restored) and self.gateway.connected:
                self._decide(self.state.last_bar, "connect", f"{ended.reason}: resubscribing, then backfilling")
                continue
            self._decide(self.state.last_bar, "connect", f"{ended.reason}: reconnecting, then backfilling")
            if not await self.gateway.reconnect(self._done, self._on_retry, self.policy):
                break
        if self.cfg.flatten_on_exit and self.gateway.connected:
            await self._flatten()
        self.state.stop_reason = self.state.stop_reason or "duration reached"
        self._decide(None, "stop", self.state.stop_reason)
        self.decisions.close()
        return self.state

    def _on_retry(self, attempt: int, pause_s: float, exc: GatewayError) -> None:
        self._decide(None, "connect", f"connect failed ({exc}); retrying in {pause_s:g}s")

    def _remaining(self) -> float:
        if self.cfg.duration_s is None:
            return float("inf")
        return self.cfg.duration_s - (asyncio.get_running_loop().time() - self.started)

    def _done(self) -> bool:
        if self.state.stop_reason:
            return True
        if self._remaining() <= 0:
            return True
        last = self.state.last_bar
        if self.cfg.until is not None and last is not None and last + self._bar >= self.cfg.until:
            self.state.stop_reason = f"reached --until {self.cfg.until:%Y-%m-%dT%H:%M:%SZ}"
            return True
        return False

    @property
    def _bar(self) -> timedelta:
        return timedelta(seconds=self.cfg.bar_size.seconds)

    @property
    def _contract(self) -> Contract:
        if self.contract is None:  # pragma: no cover - run() qualifies before any session
            raise RuntimeError("the trader has not qualified its contract yet")
        return self.contract

    # ---- one session: reconcile, then closed bars until the stream ends -------------------------------------------
    async def _session(self) -> ConnectivityEvent | None:
        """Trade on closed bars; returns the event that ended the stream (None: the stop condition)."""
        await self._reconcile()
        c = self.cfg
        stream = self.gateway.closed_bars(self._contract, c.bar_size, c.what_to_show, c.rth, c.warmup_days,
                                          stop=self._done, poll_s=min(1.0, max(self._remaining(), 0.05)))
        async with aclosing(stream) as items:
            async for item in items:
                if isinstance(item, ClosedBars):
                    await self._on_close(item)
                elif isinstance(item, ConnectivityLost):
                    self.state.paused = True
                    self._decide(self.state.last_bar, "connect", f"{item.reason}: no orders until restored")
                elif isinstance(item, Restored | Disconnected):
                    if isinstance(item, Restored):
                        self.state.paused = False
                    return item
                if self._done():
                    break
        return None

    # ---- reconcile -------------------------------------------------------------------------------------------
    async def _reconcile(self) -> None:
        mode = "live" if self.cfg.mode == "live" else "paper"
        conid = self._contract.conid
        self.state.position = await self.gateway.position(conid, self.account)
        working = await self.gateway.working_orders(conid)
        self.state.working = len(working)
        mine = {ref: fills for ref, fills in by_ref(await self.gateway.executions(mode, conid)).items()
                if ref.startswith(self.cfg.run_id + ":")}
        known = {f.exec_id for f in self.state.fills}
        self.state.fills.extend(f for fills in mine.values() for f in fills if f.exec_id not in known)
        self.state.orders_today = len(mine)
        self._record([f for fills in mine.values() for f in fills])
        self._decide(self.state.last_bar, "reconcile",
                     f"position {self.state.position:g}, {len(working)} working order(s), {len(mine)} order(s) of "
                     f"this run today", position=self.state.position)

    # ---- a bar closed ----------------------------------------------------------------------------------------
    async def _on_close(self, closed: ClosedBars) -> None:
        frame, bar = closed.frame, closed.last
        if self.evaluated is not None and (bar < self.evaluated or (bar == self.evaluated and not closed.fresh)):
            return
        missed = 0 if self.evaluated is None else int((frame.index > self.evaluated).sum()) - 1
        if missed > 0:
            self._decide(bar, "backfill", f"{missed} bar(s) closed while away were backfilled; evaluating the last")
        self._store_bars(frame)
        self.evaluated, self.state.last_bar = bar, bar
        self.state.last_close = float(frame["close"].iloc[-1])
        await self._evaluate(frame, bar)
        self.on_status(self.state)

    async def _evaluate(self, frame: pd.DataFrame, bar: datetime) -> None:
        if self.cfg.kill_file and os.path.exists(self.cfg.kill_file):
            self._decide(bar, "skip", f"kill switch {self.cfg.kill_file} exists: no new orders")
            return
        try:
            result = self.strategy.run(frame, self.cfg.params)
        except InputError as exc:
            self._decide(bar, "skip", f"strategy not ready: {exc}")
            return
        indicators = {str(k): _plain(v) for k, v in result.indicators.iloc[-1].items()}
        direction = float(result.positions[-1])
        target = self.cfg.lots.round(direction * self.cfg.quantity)
        self._decide(bar, "signal", f"close {self.state.last_close:g} → target {target:g} "
                                    f"({result.signals[-1] or 'no change'})", target=target,
                     values={"close": self.state.last_close, **indicators})
        conid = self._contract.conid
        self.state.position = await self.gateway.position(conid, self.account)
        working = await self.gateway.working_orders(conid)
        self.state.working = len(working)
        self._update_pnl(frame)
        if working:
            self._decide(bar, "skip", f"{len(working)} order(s) still working: no new order",
                         position=self.state.position, target=target)
            return
        await self._maybe_order(bar, target)

    async def _maybe_order(self, bar: datetime, target: float) -> None:
        intent = rebalance(self.instrument.display, self.cfg.run_id, bar, target, self.state.position, self.cfg.lots)
        if intent is None:
            self._decide(bar, "hold", f"position {self.state.position:g} is the target", position=self.state.position,
                         target=target)
            return
        placed = set(by_ref(await self.gateway.executions(self.cfg.mode, self._contract.conid)))
        if self.engine is not None:
            from ibkrtool.store.executions import refs_with_executions

            placed |= refs_with_executions(self.engine, [intent.order_ref])
        if intent.order_ref in placed:
            self._decide(bar, "skip", "order for this bar already placed", order_ref=intent.order_ref)
            return
        if self.state.paused:
            self._decide(bar, "skip", "IB connectivity lost: order held back", order_ref=intent.order_ref)
            return
        why = check_order(self.cfg.limits, intent, self.state.last_close, self._risk_state(bar))
        if why is not None:
            self._decide(bar, "risk", f"order {intent.side.value} {intent.quantity:g} blocked: {why}",
                         position=self.state.position, target=target, order_ref=intent.order_ref)
            return
        await self._place(bar, intent)

    async def _place(self, bar: datetime, intent: OrderIntent) -> None:
        self._decide(bar, "order", f"{intent.side.value} {intent.quantity:g} {intent.symbol} MKT",
                     position=self.state.position, target=intent.target, order_ref=intent.order_ref)
        outcome = await self.gateway.place_and_wait(self._contract, intent, account_mode(self.account), self.account,
                                                    self.cfg.order_timeout_s)
        self.state.orders_today += 1
        for fill in outcome.fills:
            self.state.position += fill.side.sign * fill.quantity
            self.state.fills.append(fill)
            self._decide(bar, "fill", f"{fill.side.value} {fill.quantity:g} @ {fill.price:g}, commission "
                                      f"{fill.commission:g}", position=self.state.position,
                         order_ref=fill.order_ref, values={"price": fill.price, "commission": fill.commission,
                                                           "exec_id": fill.exec_id, "time": fill.time.isoformat()})
        self._record(outcome.fills)
        if outcome.status != "Filled":
            self._decide(bar, "reject", f"IB {outcome.error_code or ''} {outcome.error_text or outcome.status}",
                         order_ref=intent.order_ref)

    async def _flatten(self) -> None:
        self.state.position = await self.gateway.position(self._contract.conid, self.account)
        bar = self.state.last_bar or datetime.now(UTC)
        intent = rebalance(self.instrument.display, f"{self.cfg.run_id}-flatten", bar, 0.0, self.state.position,
                           self.cfg.lots)
        if intent is not None:
            await self._place(bar, intent)

    # ---- bookkeeping -----------------------------------------------------------------------------------------
    def _risk_state(self, bar: datetime) -> RiskState:
        return RiskState(self.state.position, self.state.orders_today, self.state.pnl, self._local_time(bar))

    def _local_time(self, bar: datetime) -> time:
        """The exchange's wall clock when ``bar`` closes (``--hours`` is written in it)."""
        return (bar + self._bar).astimezone(self.zone).time()

    def _update_pnl(self, frame: pd.DataFrame) -> None:
        days = session_days(frame.index, self.instrument)
        today = days[-1]
        before = frame["close"][days < today]
        start_price = float(before.iloc[-1]) if len(before) else float(frame["open"][days == today].iloc[0])
        fills = [f for f in self.state.fills if self._day_of(f.time) == today]
        self.state.pnl = daily_pnl(fills, self.state.position, self.state.last_close, start_price)
        if not self.state.halted and loss_limit_hit(self.cfg.limits, self.state.pnl):
            self.state.halted = f"daily loss {-self.state.pnl:,.2f} hit the limit"
            self._decide(self.state.last_bar, "risk", f"ALERT {self.state.halted}: no new entries today")

    def _day_of(self, moment: datetime) -> date:
        return session_days(pd.DatetimeIndex([moment]), self.instrument)[0]

    def _record(self, fills: list[Fill]) -> None:
        if self.engine is None or not fills:
            return
        from ibkrtool.store.executions import record_fills

        record_fills(self.engine, fills, int(self._contract.conid), self.cfg.run_id)

    def _store_bars(self, frame: pd.DataFrame) -> None:
        if self.engine is None:
            return
        from ibkrtool.store.bars import write_bars

        fresh = frame if self.evaluated is None else frame[frame.index > self.evaluated]
        if len(fresh):
            write_bars(self.engine, int(self._contract.conid), self.cfg.bar_size, self.cfg.what_to_show, fresh)

    def _store_decision(self, d: Decision) -> None:
        from ibkrtool.store.live_decisions import record_decision

        record_decision(self.engine, self.cfg.run_id, d.time, d.bar, d.kind, d.detail, d.position, d.target,
                        d.order_ref, d.values)

    def _decide(self, bar: datetime | None, kind: str, detail: str, position: float | None = None,
                target: float | None = None, order_ref: str = "", values: DecisionValues | None = None) -> None:
        self.decisions.add(Decision(datetime.now(UTC), bar, kind, detail, position, target, order_ref,
                                    values or {}))


def _plain(value: object) -> float | str:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


async def run_live(gateway: Gateway, config: LiveConfig, engine: Engine | None = None,
                   decisions_path: str | None = None, on_status: Callable[[LiveState], None] | None = None
                   ) -> tuple[LiveState, DecisionLog]:
    """Run the trader through ``gateway`` (see ``LiveTrader``); returns its final state and every decision taken.
    Raises what ``LiveTrader.run`` raises."""
    log_ = DecisionLog(decisions_path)
    trader = LiveTrader(gateway, config, engine, log_, on_status)
    try:
        state = await trader.run()
    except (OrderRefused, GatewayError):
        log_.close()
        raise
    return state, log_
