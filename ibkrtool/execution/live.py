"""The live trader: one asyncio loop, one IB connection at a time, decisions only on closed bars.

Per session (first connect and every reconnect):
1. check the account (paper unless ``mode == 'live'`` with the confirmation), qualify the contract;
2. reconcile with IB: position, working orders, today's executions by ``orderRef`` (recorded in the store);
3. request ``warmup_days`` of bars with keepUpToDate: the warm-up, the backfill of anything missed while away,
   and the live stream in one request. The last bar IB sends is the one still forming and is never evaluated;
4. evaluate the last closed bar once (also right after a reconnect), then again each time a bar closes.

Before every order the position and working orders are read from IB: no order while one is working, no
duplicate entry (the order for the signal of bar B has ``orderRef = <run id>:<B>``, and a ref IB or the store
already knows is never sent again). Risk limits (``execution.risk``) and the kill-switch file are checked on
every bar. The run id is deterministic (``live-<strategy>-<symbol>-<bar size>`` unless given) so that a restarted
trader recognises its own orders.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from ibkrtool.errors import GatewayError, InputError, OrderRefused
from ibkrtool.execution.decisions import Decision, DecisionLog
from ibkrtool.execution.live_config import LiveConfig, LiveState, default_run_id  # noqa: F401 (re-exported)
from ibkrtool.execution.planner import rebalance
from ibkrtool.execution.pnl import daily_pnl
from ibkrtool.execution.risk import RiskState, check_order, loss_limit_hit
from ibkrtool.model import Instrument
from ibkrtool.model.order import Fill

log = logging.getLogger(__name__)
UTC = timezone.utc
RESTORED = frozenset({1101, 1102})
LOST = 1100


class LiveTrader:
    """Runs ``config`` against IB until ``duration_s``/``until``; see the module doc. ``on_status(state)`` is
    called after every bar for the CLI's status line."""

    def __init__(self, config: LiveConfig, connect_opts: Any, engine: Any = None,
                 decisions: DecisionLog | None = None, on_status: Callable[[LiveState], None] | None = None) -> None:
        from ibkrtool.strategies import get_strategy

        self.cfg = config.checked()
        self.opts = replace(connect_opts, readonly=False, attempts=1)
        self.engine, self.decisions = engine, decisions or DecisionLog()
        if engine is not None and self.decisions.sink is None:
            self.decisions.sink = self._store_decision
        self.on_status = on_status or (lambda state: None)
        self.strategy = get_strategy(self.cfg.strategy)
        self.instrument = Instrument.parse(self.cfg.symbol)
        self.zone = ZoneInfo("America/New_York" if not self.instrument.is_forex else "UTC")
        self.state = LiveState()
        self.evaluated: datetime | None = None
        self.started = 0.0
        self.contract: Any = None
        self.account = ""

    # ---- the outer loop: connect, run a session, reconnect with backoff --------------------------------------------
    async def run(self) -> LiveState:
        """Trade until the stop condition; returns the final state. Raises ``OrderRefused`` for a refused account,
        ``IbRefused``/``InputError`` for an unknown symbol or strategy problem."""
        from ibkrtool.ib.session import connect

        loop = asyncio.get_running_loop()
        self.started = loop.time()
        backoff = self.cfg.backoff_s
        while not self._done():
            try:
                ib = await connect(self.opts)
            except GatewayError as exc:
                self._decide(None, "connect", f"connect failed ({exc}); retrying in {backoff:g}s")
                await asyncio.sleep(min(backoff, max(self._remaining(), 0.0)))
                backoff = min(backoff * 2, self.cfg.max_backoff_s)
                continue
            backoff = self.cfg.backoff_s
            try:
                await self._session(ib)
            except (ConnectionError, OSError, asyncio.TimeoutError) as exc:  # the link died mid-request
                self.state.reconnects += 1
                self._decide(self.state.last_bar, "connect", f"session ended ({exc or type(exc).__name__}): "
                                                             "reconnecting, then backfilling")
            finally:
                ib.disconnect()
            if not self._done():  # the connection was lost: give the gateway a moment before reconnecting
                await asyncio.sleep(min(backoff, max(self._remaining(), 0.0)))
                backoff = min(backoff * 2, self.cfg.max_backoff_s)
        self.state.stop_reason = self.state.stop_reason or "duration reached"
        self._decide(None, "stop", self.state.stop_reason)
        self.decisions.close()
        return self.state

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

    # ---- one connected session ---------------------------------------------------------------------------------
    async def _session(self, ib: Any) -> None:
        from ibkrtool.execution.executor import check_account
        from ibkrtool.ib.contracts import qualify, to_ib
        from ibkrtool.ib.orders import managed_accounts

        self.account = check_account(managed_accounts(ib), self.cfg.account, self.cfg.mode,
                                     self.cfg.real_money_confirmed)
        self.contract = await qualify(ib, self.instrument, self.engine)
        self.ib_contract = to_ib(self.contract)
        await self._reconcile(ib)
        lost, closed = asyncio.Event(), asyncio.Event()
        self._watch(ib, lost)
        bars = await ib.reqHistoricalDataAsync(self.ib_contract, "", f"{self.cfg.warmup_days} D", self.cfg.bar_size.ib,
                                               self.cfg.what_to_show, self.cfg.rth, 2, keepUpToDate=True,
                                               timeout=60)
        bars.updateEvent += lambda _bars, has_new: closed.set() if has_new else None
        try:
            await self._on_close(ib, bars, reevaluate=True)
            while not self._done() and not lost.is_set():
                await self._wait(closed, lost)
                if lost.is_set():
                    break
                if closed.is_set():
                    closed.clear()
                    await self._on_close(ib, bars)
                else:
                    await self._on_quiet(ib, bars)
            if self._done() and self.cfg.flatten_on_exit and ib.isConnected():
                await self._flatten(ib)
        finally:
            if ib.isConnected():
                ib.cancelHistoricalData(bars)
        if lost.is_set() and not self._done():
            self.state.reconnects += 1
            self._decide(self.state.last_bar, "connect", "connection lost: reconnecting, then backfilling")

    def _watch(self, ib: Any, lost: asyncio.Event) -> None:
        def on_error(req_id: int, code: int, message: str, contract: Any = None) -> None:
            if code == LOST:
                self.state.paused = True
                self._decide(self.state.last_bar, "connect", "IB lost connectivity (1100): no orders until restored")
            elif code in RESTORED:
                self.state.paused = False
                lost.set()  # resubscribe from scratch: streams IB ended (10182) come back with the backfill

        ib.errorEvent += on_error
        ib.disconnectedEvent += lost.set

    async def _wait(self, closed: asyncio.Event, lost: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(closed.wait()), asyncio.ensure_future(lost.wait())]
        timeout = min(self._remaining(), 1.0)
        try:
            await asyncio.wait(waiters, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    # ---- reconcile -------------------------------------------------------------------------------------------
    async def _reconcile(self, ib: Any) -> None:
        from ibkrtool.ib.orders import executions_by_ref, position_of, working_orders

        mode = "live" if self.cfg.mode == "live" else "paper"
        self.state.position = await position_of(ib, self.contract.conid, self.account)
        working = await working_orders(ib, self.contract.conid)
        self.state.working = len(working)
        mine = {ref: fills for ref, fills in (await executions_by_ref(ib, mode, self.contract.conid)).items()
                if ref.startswith(self.cfg.run_id + ":")}
        known = {f.exec_id for f in self.state.fills}
        self.state.fills.extend(f for fills in mine.values() for f in fills if f.exec_id not in known)
        self.state.orders_today = len(mine)
        self._record([f for fills in mine.values() for f in fills])
        self._decide(self.state.last_bar, "reconcile",
                     f"position {self.state.position:g}, {len(working)} working order(s), {len(mine)} order(s) of "
                     f"this run today", position=self.state.position)

    # ---- a bar closed ----------------------------------------------------------------------------------------
    async def _on_quiet(self, ib: Any, bars: Any) -> None:
        """No new bar for a while: at the session's close (or a halt) IB starts no next bar, so the last one is
        taken as closed once IB's clock is a whole bar length past its end."""
        if not bars:
            return
        now = await ib.reqCurrentTimeAsync()
        last = bars[-1].date
        if isinstance(last, datetime) and now >= last.astimezone(UTC) + 2 * self._bar:
            await self._on_close(ib, bars, include_last=True)

    async def _on_close(self, ib: Any, bars: Any, reevaluate: bool = False, include_last: bool = False) -> None:
        from ibkrtool.ib.history import bars_frame

        # the last bar IB sent is still forming, unless the clock says otherwise (see _on_quiet)
        frame = bars_frame(list(bars) if include_last else list(bars)[:-1], self.cfg.bar_size)
        if frame.empty:
            return
        bar = frame.index[-1].to_pydatetime()
        if self.evaluated is not None and (bar < self.evaluated or (bar == self.evaluated and not reevaluate)):
            return
        missed = 0 if self.evaluated is None else int((frame.index > self.evaluated).sum()) - 1
        if missed > 0:
            self._decide(bar, "backfill", f"{missed} bar(s) closed while away were backfilled; evaluating the last")
        self._store_bars(frame)
        self.evaluated, self.state.last_bar = bar, bar
        self.state.last_close = float(frame["close"].iloc[-1])
        await self._evaluate(ib, frame, bar)
        self.on_status(self.state)

    async def _evaluate(self, ib: Any, frame: pd.DataFrame, bar: datetime) -> None:
        from ibkrtool.ib.orders import position_of, working_orders

        if self.cfg.kill_file and os.path.exists(self.cfg.kill_file):
            self._decide(bar, "skip", f"kill switch {self.cfg.kill_file} exists: no new orders")
            return
        try:
            result = self.strategy.run(frame, self.cfg.params)
        except InputError as exc:
            self._decide(bar, "skip", f"strategy not ready: {exc}")
            return
        indicators = {k: _plain(v) for k, v in result.indicators.iloc[-1].items()}
        direction = float(result.positions[-1])
        target = self.cfg.lots.round(direction * self.cfg.quantity)
        self._decide(bar, "signal", f"close {self.state.last_close:g} → target {target:g} "
                                    f"({result.signals[-1] or 'no change'})", target=target,
                     values={"close": self.state.last_close, **indicators})
        self.state.position = await position_of(ib, self.contract.conid, self.account)
        working = await working_orders(ib, self.contract.conid)
        self.state.working = len(working)
        self._update_pnl(frame)
        if working:
            self._decide(bar, "skip", f"{len(working)} order(s) still working: no new order",
                         position=self.state.position, target=target)
            return
        await self._maybe_order(ib, bar, target)

    async def _maybe_order(self, ib: Any, bar: datetime, target: float) -> None:
        from ibkrtool.ib.orders import executions_by_ref

        intent = rebalance(self.instrument.display, self.cfg.run_id, bar, target, self.state.position, self.cfg.lots)
        if intent is None:
            self._decide(bar, "hold", f"position {self.state.position:g} is the target", position=self.state.position,
                         target=target)
            return
        placed = set(await executions_by_ref(ib, self.cfg.mode, self.contract.conid))
        if self.engine is not None:
            from ibkrtool.store.executions import refs_with_executions

            placed |= refs_with_executions(self.engine, [intent.order_ref])
        if intent.order_ref in placed:
            self._decide(bar, "skip", "order for this bar already placed", order_ref=intent.order_ref)
            return
        if self.state.paused:
            self._decide(bar, "skip", "IB connectivity lost (1100): order held back", order_ref=intent.order_ref)
            return
        why = check_order(self.cfg.limits, intent, self.state.last_close, self._risk_state(bar))
        if why is not None:
            self._decide(bar, "risk", f"order {intent.side.value} {intent.quantity:g} blocked: {why}",
                         position=self.state.position, target=target, order_ref=intent.order_ref)
            return
        await self._place(ib, bar, intent)

    async def _place(self, ib: Any, bar: datetime, intent: Any) -> None:
        from ibkrtool.ib.orders import place_and_wait

        self._decide(bar, "order", f"{intent.side.value} {intent.quantity:g} {intent.symbol} MKT",
                     position=self.state.position, target=intent.target, order_ref=intent.order_ref)
        outcome = await place_and_wait(ib, self.ib_contract, intent, self._fill_mode(), self.account,
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

    async def _flatten(self, ib: Any) -> None:
        from ibkrtool.ib.orders import position_of

        self.state.position = await position_of(ib, self.contract.conid, self.account)
        bar = self.state.last_bar or datetime.now(UTC)
        intent = rebalance(self.instrument.display, f"{self.cfg.run_id}-flatten", bar, 0.0, self.state.position,
                           self.cfg.lots)
        if intent is not None:
            await self._place(ib, bar, intent)

    # ---- bookkeeping -----------------------------------------------------------------------------------------
    def _fill_mode(self) -> str:
        from ibkrtool.ib.account import account_mode

        return account_mode(self.account)

    def _risk_state(self, bar: datetime) -> RiskState:
        end = (bar + timedelta(seconds=self.cfg.bar_size.seconds)).astimezone(self.zone)
        return RiskState(self.state.position, self.state.orders_today, self.state.pnl, end.time())

    def _update_pnl(self, frame: pd.DataFrame) -> None:
        today = frame.index[-1].tz_convert(self.zone).date()
        local_days = frame.index.tz_convert(self.zone).date
        before = frame["close"][local_days < today]
        start_price = float(before.iloc[-1]) if len(before) else float(frame["open"][local_days == today].iloc[0])
        fills = [f for f in self.state.fills if _local_date(f.time, self.zone) == today]
        self.state.pnl = daily_pnl(fills, self.state.position, self.state.last_close, start_price)
        if not self.state.halted and loss_limit_hit(self.cfg.limits, self.state.pnl):
            self.state.halted = f"daily loss {-self.state.pnl:,.2f} hit the limit"
            self._decide(self.state.last_bar, "risk", f"ALERT {self.state.halted}: no new entries today")

    def _record(self, fills: list[Fill]) -> None:
        if self.engine is None or not fills:
            return
        from ibkrtool.store.executions import record_fills

        record_fills(self.engine, fills, int(self.contract.conid), self.cfg.run_id)

    def _store_bars(self, frame: pd.DataFrame) -> None:
        if self.engine is None:
            return
        from ibkrtool.store.bars import write_bars

        fresh = frame if self.evaluated is None else frame[frame.index > self.evaluated]
        if len(fresh):
            write_bars(self.engine, int(self.contract.conid), self.cfg.bar_size, self.cfg.what_to_show, fresh)

    def _store_decision(self, d: Decision) -> None:
        from ibkrtool.store.live_decisions import record_decision

        record_decision(self.engine, self.cfg.run_id, d.time, d.bar, d.kind, d.detail, d.position, d.target,
                        d.order_ref, d.values)

    def _decide(self, bar: datetime | None, kind: str, detail: str, **extra: Any) -> None:
        self.decisions.add(Decision(datetime.now(UTC), bar, kind, detail, **extra))


def _local_date(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def _plain(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


async def run_live(config: LiveConfig, connect_opts: Any, engine: Any = None, decisions_path: str | None = None,
                   on_status: Callable[[LiveState], None] | None = None) -> tuple[LiveState, DecisionLog]:
    """Run the trader (see ``LiveTrader``); returns its final state and every decision taken."""
    log_ = DecisionLog(decisions_path)
    trader = LiveTrader(config, connect_opts, engine, log_, on_status)
    try:
        state = await trader.run()
    except OrderRefused:
        log_.close()
        raise
    return state, log_
