"""``execute``: turn a run's target positions into fills — simulated on bars, or through IB — never twice.

Idempotency: each intent carries as ``orderRef`` the key of its ``OrderIdentity`` — mode, account, conid, run and
signal bar (format in ``execution.identity``). An intent is skipped when its key already has executions in the store
or, through IB, in today's reqExecutions or among the working orders; so a rerun of the same command places nothing
new, while simulated fills never block paper or live orders, paper never live, and one instrument never another.
An old-format key (``<run id>:<signal bar>``, before keys named mode and account) blocks its intent only when the
execution or working order carrying it is of the same mode, account and instrument.

Through IB (paper/live), what a historical run means:
* default ("now, not history"): ONE market order bringing IB's current position (plus this account's working orders
  in the instrument) to the run's final target, carrying the key of the run's last signal — or none;
* ``replay``: every intent not placed yet, in signal order, each sent NOW as a market order — refused as a whole
  (``InputError``, nothing sent) when any of them is older than ``max_signal_age_s`` (default: one bar) by the
  gateway's clock (``execution.freshness``).

Once, even when run twice at once: the placing phase holds the order lock of (account, instrument) in the store
(``store.locks``), and under it IB's position, working orders and today's executions are read again before EACH
order, so a second process for the same account and instrument sees the first one's orders and sends nothing again.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy.engine import Engine

from ibkrtool.backtest.costs import IB_FIXED, CommissionModel
from ibkrtool.errors import InputError, OrderRefused
from ibkrtool.execution.identity import OrderIdentity
from ibkrtool.execution.planner import STOCK_LOTS, LotRules, plan_from_targets, rebalance, unplaced
from ibkrtool.execution.simulate import simulate_fills
from ibkrtool.execution.targets import Targets
from ibkrtool.ib.account import account_mode
from ibkrtool.model.contract import Contract
from ibkrtool.model.order import Fill, OrderIntent, Side

if TYPE_CHECKING:  # the gateway (and ib_async behind it) is loaded only by the modes that reach IB
    from ibkrtool.ib.gateway import Gateway
    from ibkrtool.ib.orders import OrderOutcome, WorkingOrder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutePlan:
    """What to execute: ``quantity`` shares/base units per unit of target; ``mode`` simulate|paper|live;
    ``legacy_run_id`` the run id earlier versions gave these targets (to recognise their order keys)."""

    symbol: str
    run_id: str
    targets: Targets
    quantity: float
    mode: str = "simulate"
    lots: LotRules = STOCK_LOTS
    fill: str = "next-open"
    commission: CommissionModel = IB_FIXED
    bar_s: float = 0.0
    replay: bool = False
    max_signal_age_s: float | None = None
    on_reject: str = "continue"
    max_order_value: float | None = None
    timeout_s: float = 30.0
    legacy_run_id: str = ""
    lock_wait_s: float = 300.0

    def identity(self, mode: str, account: str, conid: int) -> OrderIdentity:
        """Whose orders these are, once the account and the instrument's conid are known."""
        return OrderIdentity(mode, account, conid, self.run_id, self.legacy_run_id)


@dataclass
class ExecuteResult:
    mode: str
    account: str = "SIM"
    intents: list[OrderIntent] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    already_placed: list[OrderIntent] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (order ref or bar, reason)
    rejected: list[tuple[OrderIntent, int | None, str]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # order refs placed (or simulated) by THIS call

    @property
    def placed(self) -> int:
        return len(self.sent)


def plan_intents(plan: ExecutePlan, identity: OrderIdentity) -> tuple[list[OrderIntent], list[tuple[str, str]]]:
    """Every intent of the run, keyed by ``identity`` (pure), and the signals skipped for size."""
    t = plan.targets
    planned = plan_from_targets(plan.symbol, identity, t.ts, t.position, plan.quantity, plan.lots, reasons=t.reason)
    return planned.intents, [(f"{ts:%Y-%m-%dT%H:%M:%SZ}", why) for ts, why in planned.skipped]


def placed_among(intents: list[OrderIntent], identity: OrderIdentity, refs: set[str],
                 legacy_refs: set[str]) -> set[str]:
    """The keys of ``intents`` already placed: found in ``refs`` (current keys), or whose old-format key is in
    ``legacy_refs`` (which the caller has limited to the identity's mode, account and instrument)."""
    return {i.order_ref for i in intents
            if i.order_ref in refs or identity.legacy(i.signal_ts) in legacy_refs}


def stored_placed(engine: Engine, intents: list[OrderIntent], identity: OrderIdentity) -> set[str]:
    """The keys of ``intents`` with executions in the store (old-format keys: of the same mode, account, conid)."""
    from ibkrtool.store.executions import refs_with_executions

    current = refs_with_executions(engine, (i.order_ref for i in intents), identity.mode)
    legacy = refs_with_executions(engine, (identity.legacy(i.signal_ts) for i in intents), identity.mode,
                                  identity.conid, identity.account)
    return placed_among(intents, identity, current, legacy)


def execute_simulated(plan: ExecutePlan, bars: pd.DataFrame, engine: Engine | None = None,
                      conid: int | None = None) -> ExecuteResult:
    """Fill the run's unplaced intents on ``bars`` by ``plan.fill`` (see ``execution.simulate``); records them in
    ``executions`` (mode simulate, account SIM, ``conid``) when ``engine`` is given. Raises
    ``InputError``/``StoreError``."""
    from ibkrtool.store.executions import record_fills

    conid = conid if conid is not None else 0
    identity = plan.identity("simulate", "SIM", conid)
    intents, skipped = plan_intents(plan, identity)
    done = stored_placed(engine, intents, identity) if engine is not None else set()
    todo, already = unplaced(intents, done)
    closes = dict(zip(plan.targets.ts, plan.targets.close.tolist(), strict=True))
    run = simulate_fills(todo, bars, plan.fill, plan.commission, plan.bar_s, closes)
    skipped += [(i.order_ref, why) for i, why in run.skipped]
    sent = [f.order_ref for f in run.fills]
    result = ExecuteResult("simulate", "SIM", intents, run.fills, already, skipped, sent=sent)
    if engine is not None and run.fills:
        record_fills(engine, run.fills, conid, plan.run_id)
    return result


def check_account(accounts: list[str], wanted: str, mode: str, real_money_confirmed: bool) -> str:
    """The account to trade in, or ``OrderRefused`` (exit 6): paper mode needs a paper (``DU…``) account; a live
    account needs ``--live --yes-i-mean-real-money``."""
    if wanted and wanted not in accounts:
        raise OrderRefused(f"account {wanted} is not managed by this login (it manages {', '.join(accounts)})")
    account = wanted or (accounts[0] if len(accounts) == 1 else "")
    if not account:
        raise OrderRefused(f"this login manages several accounts ({', '.join(accounts)}); pick one with --account")
    kind = account_mode(account)
    if kind == "live" and not (mode == "live" and real_money_confirmed):
        raise OrderRefused(f"account {account} is a LIVE account (paper ids start with DU); refusing to send orders "
                           "— use a paper login, or --live --yes-i-mean-real-money --max-order-value N")
    if mode == "live" and kind == "paper":
        log.info("--live given but %s is a paper account: executions are recorded as paper", account)
    return account


def check_live_flags(mode: str, real_money_confirmed: bool, max_order_value: float | None) -> None:
    """Raise ``InputError`` unless live mode comes with its confirmation flag and an order value cap."""
    if mode != "live":
        return
    if not real_money_confirmed:
        raise InputError("--live trades real money: add --yes-i-mean-real-money to confirm")
    if max_order_value is None or max_order_value <= 0:
        raise InputError("--live needs --max-order-value N (the largest order value allowed, quote currency)")


async def execute_through_ib(gateway: Gateway, plan: ExecutePlan, contract: Contract, account: str,
                             engine: Engine | None = None, what_to_show: str = "TRADES") -> ExecuteResult:
    """Bring ``account`` to the run's final target in one order, or with ``plan.replay`` send the run's pending
    intents (see module doc), under the (account, instrument) order lock when ``engine`` is given; wait for each
    order, record IB's executions and commissions. Raises ``InputError`` for a replay of too old signals (nothing
    sent), ``OrderRefused`` on a rejection when ``on_reject == 'stop'`` (after recording what filled before it),
    ``LockBusy``/``StoreError`` when the lock cannot be had, ``GatewayError`` when the link is gone."""
    mode = account_mode(account)
    conid = int(contract.conid)
    identity = plan.identity(mode, account, conid)
    intents, skipped = plan_intents(plan, identity)
    result = ExecuteResult(mode, account, [], [], [], skipped)
    price = await gateway.reference_price(contract, what_to_show) if plan.max_order_value else None
    send = _Sender(gateway, plan, contract, identity, engine, result, price)
    async with _lock(engine, account, conid, plan.lock_wait_s):
        if plan.replay:
            await send.replay(intents)
        else:
            await send.to_target(intents)
    return result


def _lock(engine: Engine | None, account: str, conid: int, wait_s: float) -> AbstractAsyncContextManager[None]:
    if engine is None:
        return nullcontext()
    from ibkrtool.store.locks import order_lock, order_lock_key

    return order_lock(engine, order_lock_key(account, conid), wait_s)


@dataclass
class _Sender:
    """The placing phase of one ``execute_through_ib`` call (run under the order lock)."""

    gateway: Gateway
    plan: ExecutePlan
    contract: Contract
    identity: OrderIdentity
    engine: Engine | None
    result: ExecuteResult
    price: float | None

    async def to_target(self, intents: list[OrderIntent]) -> None:
        """ONE order from IB's position (plus working orders) to the final target, unless its key is placed."""
        if not intents:
            return
        last = intents[-1]
        state = await self.read_ib()
        current = state.position + state.pending
        one = rebalance(self.plan.symbol, self.identity, last.signal_ts, last.target, current, self.plan.lots)
        if one is None:
            self.result.skipped.append((last.order_ref, f"position {current:g} already at the target"))
            return
        self.result.intents = [one]
        if self.placed_by(state, [one]):
            self.result.already_placed.append(one)
            return
        await self.send(one)

    async def replay(self, intents: list[OrderIntent]) -> None:
        """Every pending intent in signal order, after the age check; IB is read again before each order."""
        from ibkrtool.execution.freshness import check_fresh

        self.result.intents = intents
        todo, already = unplaced(intents, self.placed_by(await self.read_ib(), intents))
        self.result.already_placed.extend(already)
        check_fresh(todo, self.plan.bar_s, self.plan.max_signal_age_s, await self.gateway.now())
        for k, intent in enumerate(todo):
            state = await self.read_ib() if k else None
            if state is not None and self.placed_by(state, [intent]):
                self.result.already_placed.append(intent)
                continue
            await self.send(intent)

    async def read_ib(self) -> IbState:
        """IB's position, this account's working orders and today's executions in the instrument, freshly read."""
        ident = self.identity
        fills = await self.gateway.executions(ident.mode, ident.conid)
        working = await self.gateway.working_orders(ident.conid)
        position = await self.gateway.position(ident.conid, ident.account)
        return IbState(position, fills, working, ident.account)

    def placed_by(self, state: IbState, intents: list[OrderIntent]) -> set[str]:
        """The keys of ``intents`` IB (``state``) or the store knows as placed."""
        placed = placed_among(intents, self.identity, state.refs(), state.refs(mine=True))
        if self.engine is not None:
            placed |= stored_placed(self.engine, intents, self.identity)
        return placed

    async def send(self, intent: OrderIntent) -> None:
        plan, result = self.plan, self.result
        if plan.max_order_value and self.price and intent.quantity * self.price > plan.max_order_value:
            result.skipped.append((intent.order_ref, f"order value {intent.quantity * self.price:,.2f} exceeds "
                                                     f"--max-order-value {plan.max_order_value:,.2f}"))
            return
        outcome = await self.gateway.place_and_wait(self.contract, intent, self.identity.mode, self.identity.account,
                                                    plan.timeout_s)
        result.sent.append(intent.order_ref)
        _record(result, outcome, self.engine, self.identity.conid, plan.run_id)
        if outcome.status != "Filled":
            result.rejected.append((intent, outcome.error_code, outcome.error_text or outcome.status))
            if plan.on_reject == "stop":
                raise OrderRefused(f"order {intent.order_ref} ({intent.side.value} {intent.quantity:g} "
                                   f"{intent.symbol}) was not filled: IB {outcome.error_code or ''} "
                                   f"{outcome.error_text or outcome.status}; stopped (--on-reject stop)",
                                   outcome.error_code)


@dataclass(frozen=True)
class IbState:
    """What IB knows of one account and instrument at one moment: the position, today's executions and the working
    orders (of every client; ``account`` picks this account's for ``pending`` and old-format keys)."""

    position: float
    fills: list[Fill]
    working: list[WorkingOrder]
    account: str

    @property
    def pending(self) -> float:
        """The signed quantity this account's working orders in the instrument would still add."""
        return float(sum(o.quantity if o.side is Side.BUY else -o.quantity for o in self.working
                         if o.account in ("", self.account)))

    def refs(self, mine: bool = False) -> set[str]:
        """Order refs of the executions and working orders (``mine``: only this account's)."""
        refs = {f.order_ref for f in self.fills if not mine or f.account in (None, "", self.account)}
        refs |= {o.order_ref for o in self.working if not mine or o.account in ("", self.account)}
        return refs - {""}


def _record(result: ExecuteResult, outcome: OrderOutcome, engine: Engine | None, conid: int, run_id: str) -> None:
    result.fills.extend(outcome.fills)
    if engine is not None and outcome.fills:
        from ibkrtool.store.executions import record_fills

        record_fills(engine, outcome.fills, conid, run_id)
