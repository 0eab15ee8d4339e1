"""``execute``: turn a run's target positions into fills — simulated on bars, or through IB — never twice.

Idempotency: each intent carries as ``orderRef`` the key of its ``OrderIdentity`` — mode, account, conid, run and
signal bar (format in ``execution.identity``). An intent is skipped when its key already has executions in the store
or, through IB, in today's reqExecutions or among the working orders; so a rerun of the same command places nothing
new, while simulated fills never block paper or live orders, paper never live, and one instrument never another.
An old-format key (``<run id>:<signal bar>``, before keys named mode and account) blocks its intent only when the
execution or working order carrying it is of the same mode, account and instrument.

Through IB (paper/live), what a historical run means:
* default: every intent not placed yet, in signal order, each sent NOW as a market order (the run replayed);
* ``latest``: ONE market order bringing IB's current position to the run's final target (ref of the last signal).
"""

from __future__ import annotations

import logging
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
from ibkrtool.model.order import Fill, OrderIntent

if TYPE_CHECKING:  # the gateway (and ib_async behind it) is loaded only by the modes that reach IB
    from ibkrtool.ib.gateway import Gateway
    from ibkrtool.ib.orders import OrderOutcome

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
    latest: bool = False
    on_reject: str = "continue"
    max_order_value: float | None = None
    timeout_s: float = 30.0
    legacy_run_id: str = ""

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
    """Send the run's pending intents through ``gateway`` (see module doc for default vs ``latest``), wait for each,
    record IB's executions and commissions. Raises ``OrderRefused`` on a rejection when ``on_reject == 'stop'``
    (after recording what filled before it), ``GatewayError`` when the link is gone."""
    mode = account_mode(account)
    conid = int(contract.conid)
    identity = plan.identity(mode, account, conid)
    intents, skipped = plan_intents(plan, identity)
    if plan.latest and intents:
        current = await gateway.position(conid, account)
        last = intents[-1]
        one = rebalance(plan.symbol, identity, last.signal_ts, last.target, current, plan.lots)
        skipped += [] if one is not None else [(last.order_ref, f"position {current:g} already at the target")]
        intents = [one] if one is not None else []
    placed = await _ib_placed(gateway, intents, identity)
    if engine is not None:
        placed |= stored_placed(engine, intents, identity)
    todo, already = unplaced(intents, placed)
    result = ExecuteResult(mode, account, intents, [], already, skipped)
    price = await gateway.reference_price(contract, what_to_show) if plan.max_order_value else None
    for intent in todo:
        if plan.max_order_value and price and intent.quantity * price > plan.max_order_value:
            result.skipped.append((intent.order_ref, f"order value {intent.quantity * price:,.2f} exceeds "
                                                     f"--max-order-value {plan.max_order_value:,.2f}"))
            continue
        outcome = await gateway.place_and_wait(contract, intent, mode, account, plan.timeout_s)
        result.sent.append(intent.order_ref)
        _record(result, outcome, engine, conid, plan.run_id)
        if outcome.status != "Filled":
            result.rejected.append((intent, outcome.error_code, outcome.error_text or outcome.status))
            if plan.on_reject == "stop":
                raise OrderRefused(f"order {intent.order_ref} ({intent.side.value} {intent.quantity:g} "
                                   f"{intent.symbol}) was not filled: IB {outcome.error_code or ''} "
                                   f"{outcome.error_text or outcome.status}; stopped (--on-reject stop)",
                                   outcome.error_code)
    return result


async def _ib_placed(gateway: Gateway, intents: list[OrderIntent], identity: OrderIdentity) -> set[str]:
    """The keys of ``intents`` IB knows: today's executions or working orders of the instrument carrying them (an
    old-format key only from the identity's account)."""
    fills = await gateway.executions(identity.mode, identity.conid)
    working = await gateway.working_orders(identity.conid)
    refs = {f.order_ref for f in fills} | {o.order_ref for o in working}
    mine = {f.order_ref for f in fills if f.account in (None, "", identity.account)}
    mine |= {o.order_ref for o in working if o.account in ("", identity.account)}
    return placed_among(intents, identity, refs - {""}, mine - {""})


def _record(result: ExecuteResult, outcome: OrderOutcome, engine: Engine | None, conid: int, run_id: str) -> None:
    result.fills.extend(outcome.fills)
    if engine is not None and outcome.fills:
        from ibkrtool.store.executions import record_fills

        record_fills(engine, outcome.fills, conid, run_id)
