"""Orders through ib_async: place a market order tagged with its ``orderRef``, wait for its end, and read what IB
knows — positions, working orders and executions (with commission reports) by ``orderRef``. IB's Trade, Fill and
Execution objects stop here; callers get ``ibkrtool.model.order.Fill`` and plain values.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ibkrtool.ib.compat import IB, Contract
from ibkrtool.model.order import Fill, OrderIntent, Side

log = logging.getLogger(__name__)
DONE_STATES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


@dataclass
class OrderOutcome:
    """How one placed order ended: ``status`` is IB's (Filled, Cancelled, Inactive, or ``Timeout``)."""

    intent: OrderIntent
    order_id: int
    perm_id: int
    status: str
    fills: list[Fill] = field(default_factory=list)
    error_code: int | None = None
    error_text: str = ""

    @property
    def rejected(self) -> bool:
        return self.status != "Filled" and self.error_code is not None

    @property
    def filled_quantity(self) -> float:
        return sum(f.quantity for f in self.fills)


@dataclass(frozen=True)
class Position:
    """A signed position (shares / base units) held in ``account``; ``average_cost`` per unit as IB reports it."""

    account: str
    conid: int
    symbol: str
    quantity: float
    average_cost: float


@dataclass(frozen=True)
class WorkingOrder:
    """An order IB still works (submitted, not filled or cancelled), of any client."""

    order_id: int
    perm_id: int
    order_ref: str
    conid: int
    side: Side
    quantity: float
    status: str
    account: str


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def to_fill(ib_fill: Any, mode: str) -> Fill:
    """An ib_async Fill (execution + commission report) → our ``Fill`` (time UTC; commission NaN-free or 0)."""
    ex, report = ib_fill.execution, ib_fill.commissionReport
    symbol = ib_fill.contract.localSymbol or ib_fill.contract.symbol
    if ib_fill.contract.secType == "CASH" and "." not in symbol:
        symbol = f"{ib_fill.contract.symbol}.{ib_fill.contract.currency}"
    commission = float(report.commission) if report is not None and report.execId else 0.0
    return Fill(ex.execId, ex.orderRef or "", symbol, Side.BUY if ex.side == "BOT" else Side.SELL, float(ex.shares),
                float(ex.price), commission, _utc(ex.time), mode,
                (report.currency if report is not None and report.currency else "USD"), int(ex.orderId),
                int(ex.permId), ex.acctNumber)


def realized_pnl(ib_fill: Any) -> float | None:
    """IB's realized P&L of one execution (closing trades), or None when IB sent none (its 'unset' max float)."""
    value = getattr(ib_fill.commissionReport, "realizedPNL", None)
    return float(value) if value is not None and abs(value) < 1e300 else None


def market_order(intent: OrderIntent, account: str = "", outside_rth: bool = False) -> Any:
    """An IB market order for ``intent`` carrying its idempotency key as ``orderRef`` (DAY order)."""
    from ibkrtool.ib.compat import MarketOrder

    return MarketOrder(intent.side.value, intent.quantity, orderRef=intent.order_ref, account=account, tif="DAY",
                       outsideRth=outside_rth)


def _has_commissions(trade: Any) -> bool:
    return all(f.commissionReport is not None and f.commissionReport.execId for f in trade.fills)


_ERROR_PREFIX = re.compile(r"^Error -?\d+, reqId -?\d+: ")


def _last_error(trade: Any) -> tuple[int | None, str]:
    """IB's last error on the order, its text without ib_async's ``Error N, reqId M:`` prefix."""
    for entry in reversed(trade.log):
        if entry.errorCode:
            return int(entry.errorCode), _ERROR_PREFIX.sub("", entry.message)
    return None, ""


async def place_and_wait(ib: IB, contract: Contract, intent: OrderIntent, mode: str, account: str = "",
                         timeout_s: float = 30.0) -> OrderOutcome:
    """Place ``intent`` as a market order and wait (at most ``timeout_s`` real seconds) until IB ends it and every
    fill has its commission report. Never raises for a rejection: the outcome carries IB's error code and text
    (e.g. 201 "Order rejected - reason: ..."). Status ``Timeout`` when IB did not finish in time (the order stays).
    """
    trade = ib.placeOrder(contract, market_order(intent, account))
    log.info("placed %s %g %s ref=%s as order %s", intent.side.value, intent.quantity, intent.symbol,
             intent.order_ref, trade.order.orderId)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (trade.orderStatus.status in DONE_STATES and _has_commissions(trade)):
        if asyncio.get_running_loop().time() > deadline or not ib.isConnected():
            break
        await asyncio.sleep(0.02)
    status = trade.orderStatus.status if trade.orderStatus.status in DONE_STATES else "Timeout"
    code, text = _last_error(trade)
    return OrderOutcome(intent, int(trade.order.orderId), int(trade.order.permId or 0), status,
                        [to_fill(f, mode) for f in trade.fills], code, text)


async def executions(ib: IB, mode: str, conid: int | None = None) -> list[Fill]:
    """IB's executions of today (reqExecutions; IB keeps about one day), with commissions, as our ``Fill``."""
    from ibkrtool.ib.compat import ExecutionFilter

    fills = await ib.reqExecutionsAsync(ExecutionFilter())
    return [to_fill(f, mode) for f in fills if conid is None or int(f.contract.conId) == conid]


def by_ref(fills: list[Fill]) -> dict[str, list[Fill]]:
    """Fills that carry an ``orderRef``, grouped by it (in order)."""
    grouped: dict[str, list[Fill]] = {}
    for f in fills:
        if f.order_ref:
            grouped.setdefault(f.order_ref, []).append(f)
    return grouped


async def executions_by_ref(ib: IB, mode: str, conid: int | None = None) -> dict[str, list[Fill]]:
    """IB's executions of today grouped by ``orderRef``."""
    return by_ref(await executions(ib, mode, conid))


def _working(trade: Any) -> WorkingOrder:
    o = trade.order
    return WorkingOrder(int(o.orderId), int(o.permId or 0), o.orderRef or "", int(trade.contract.conId),
                        Side.BUY if o.action == "BUY" else Side.SELL, float(o.totalQuantity),
                        trade.orderStatus.status, o.account or "")


async def working_orders(ib: IB, conid: int | None = None) -> list[WorkingOrder]:
    """IB's working (not done) orders of every client, freshly requested (reqAllOpenOrders)."""
    trades = await ib.reqAllOpenOrdersAsync()
    return [_working(t) for t in trades if t.orderStatus.status not in DONE_STATES
            and (conid is None or int(t.contract.conId) == conid)]


def working_refs(orders: list[WorkingOrder]) -> set[str]:
    """The ``orderRef`` of each working order."""
    return {o.order_ref for o in orders if o.order_ref}


def cancel(ib: IB, order_id: int) -> bool:
    """Ask IB to cancel one of this client's working orders; False when this session does not know the order."""
    for trade in ib.openTrades():
        if int(trade.order.orderId) == order_id:
            ib.cancelOrder(trade.order)
            return True
    return False


async def positions(ib: IB, account: str = "") -> list[Position]:
    """Every position (or only ``account``'s), freshly requested from IB (reqPositions)."""
    held = await ib.reqPositionsAsync()
    return [Position(p.account, int(p.contract.conId), p.contract.localSymbol or p.contract.symbol,
                     float(p.position), float(p.avgCost)) for p in held if not account or p.account == account]


def position_in(held: list[Position], conid: int, account: str = "") -> float:
    """The signed position in ``conid`` summed over ``held`` (restricted to ``account`` when given)."""
    return float(sum(p.quantity for p in held if p.conid == conid and (not account or p.account == account)))


async def position_of(ib: IB, conid: int, account: str = "") -> float:
    """The signed position (shares / base units) in ``conid``, freshly requested from IB (reqPositions)."""
    return position_in(await positions(ib, account), conid, account)


def managed_accounts(ib: IB) -> list[str]:
    """The account ids this login manages (IB sends them at connect)."""
    return [a for a in ib.managedAccounts() if a]


async def account_type(ib: IB, account: str) -> str:
    """IB's ``AccountType`` tag of ``account`` (e.g. INDIVIDUAL), '' if IB sent none."""
    values = await ib.accountSummaryAsync(account)
    return next((v.value for v in values if v.tag == "AccountType" and v.account == account), "")


async def reference_price(ib: IB, contract: Contract, what_to_show: str, timeout_s: float = 20.0) -> float | None:
    """The last 1-minute close IB has for ``contract`` (the risk checks' price for a market order), or None."""
    bars = await ib.reqHistoricalDataAsync(contract, "", "1800 S", "1 min", what_to_show, False, 2,
                                           timeout=timeout_s)
    return float(bars[-1].close) if bars else None
