"""The paper broker behind the sim: orders, fills against the simulated market, positions, cash, commissions.

One Broker per gateway (IB: one account per login), shared by every connected client. It never touches sockets:
it publishes ``BrokerEvent``s that the sessions turn into openOrder/orderStatus/execDetails/commissionReport.

Fill rules (documented choices, close to IB paper trading):
- MKT fills at once at the current ask (BUY) or bid (SELL) from ``Market.quote``.
- LMT fills when marketable: BUY when ask <= limit, SELL when bid >= limit, at that ask/bid (never worse).
- STP triggers when the last trade (stocks) or midpoint (forex) reaches the stop, then fills like MKT.
- Outside the session (regular hours unless ``outsideRth``; forex: 24x5) IB accepts a stock order and holds
  it (status PreSubmitted) until the market opens, then it fills; the sim does the same instead of refusing.
- Commissions: IB Pro *fixed*: US stocks USD 0.005/share, min USD 1.00, max 1% of trade value;
  forex 0.20 bps of trade value (in USD), min USD 2.00. Commission is in the average cost of opening trades
  (as IB's avgCost) and subtracted from realized P&L of closing trades.
- Buying power check (Reg T, 25% initial margin): an order whose value exceeds BuyingPower is rejected with 201.
- Time in force: DAY orders still working when their session closes are cancelled; GTC/GTD stay (GTD's date is
  not enforced).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ibkrtool.sim.contracts import SimContract, find_contracts

START_CASH_USD = 1_000_000.0
INITIAL_MARGIN = 0.25
SUPPORTED_ORDER_TYPES = ("MKT", "LMT", "STP")


class OrderError(Exception):
    """IB refused an order: ``code`` and ``text`` are IB's."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


@dataclass
class SimOrder:
    """An order as the broker tracks it (IB's field meanings; prices in the contract's currency)."""

    order_id: int
    client_id: int
    perm_id: int
    contract: SimContract
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str = ""
    outside_rth: bool = False
    parent_id: int = 0
    status: str = "PendingSubmit"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    triggered: bool = False
    seen_open: bool = False  # was working while its market was open (a DAY order then expires at the close)
    done_at: datetime | None = None  # sim time it was filled or cancelled (completedOrder's completedTime)

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def is_done(self) -> bool:
        return self.status in ("Filled", "Cancelled", "ApiCancelled", "Inactive")


@dataclass
class SimExecution:
    """One fill; ``time`` is sim time (UTC)."""

    exec_id: str
    order: SimOrder
    contract: SimContract
    time: datetime
    exchange: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    commission: float
    realized_pnl: float | None
    added_liquidity: bool = False

    @property
    def time_text(self) -> str:
        return self.time.strftime("%Y%m%d %H:%M:%S") + " UTC"


@dataclass
class Holding:
    """Position in one contract: signed quantity, average cost per unit including commissions, realized P&L."""

    contract: SimContract
    qty: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0


@dataclass(frozen=True)
class BrokerEvent:
    """``kind``: "order" (status changed), "fill" (an execution), "reject" (error for an order id)."""

    kind: str
    order: SimOrder
    execution: SimExecution | None = None
    code: int = 0
    text: str = ""


def ib_commission(contract: SimContract, shares: float, price: float, usd_value: float) -> float:
    """IB fixed-rate commission in USD for one execution of ``shares`` at ``price`` (see module doc)."""
    if contract.sec_type == "CASH":
        return round(max(2.0, usd_value * 0.2e-4), 2)
    fee = max(1.0, 0.005 * shares)
    return round(min(fee, 0.01 * shares * price), 2)


@dataclass
class Broker:
    """Shared account state and order book of one simulated gateway. All methods run on the sim's event loop."""

    market: Any
    account: str
    cash: dict[str, float] = field(default_factory=lambda: {"USD": START_CASH_USD})
    holdings: dict[int, Holding] = field(default_factory=dict)
    orders: dict[tuple[int, int], SimOrder] = field(default_factory=dict)
    executions: list[SimExecution] = field(default_factory=list)
    listeners: list[Callable[[BrokerEvent], None]] = field(default_factory=list)
    reject_symbols: frozenset[str] | None = None  # fault injection: None = off, empty = every order
    _perm_ids: Any = field(default_factory=lambda: itertools.count(1_000_001))
    _exec_seq: Any = field(default_factory=lambda: itertools.count(1))

    # --- orders -------------------------------------------------------------------------------------------------
    def place(self, order: SimOrder, now: datetime) -> None:
        """Accept (then maybe fill) or refuse an order; events go to the listeners. Raises OrderError."""
        key = (order.client_id, order.order_id)
        existing = self.orders.get(key)
        if existing is not None and existing.is_done:
            raise OrderError(103, "Duplicate order id")
        self._validate(order, now)
        if existing is not None:  # same id, still working: IB treats it as a modification
            existing.quantity, existing.lmt_price, existing.aux_price = order.quantity, order.lmt_price, order.aux_price
            self._emit(BrokerEvent("order", existing))
            self._try_fill(existing, now)
            return
        order.perm_id = next(self._perm_ids)
        order.status = "PreSubmitted" if not self._tradable(order, now) else "Submitted"
        self.orders[key] = order
        self._emit(BrokerEvent("order", order))
        self._try_fill(order, now)

    def cancel(self, client_id: int, order_id: int, now: datetime | None = None) -> SimOrder:
        """Cancel a resting order of this client. Raises OrderError(10147) if unknown, (161) if already done."""
        order = self.orders.get((client_id, order_id))
        if order is None:
            raise OrderError(10147, f"OrderId {order_id} that needs to be cancelled is not found.")
        if order.is_done:
            raise OrderError(161, "Cancel attempted when order is not in a cancellable state.  "
                             f"Order permId ={order.perm_id}")
        order.status, order.done_at = "Cancelled", now
        self._emit(BrokerEvent("order", order))
        return order

    def cancel_all(self, now: datetime | None = None) -> None:
        """reqGlobalCancel: cancel every working order of every client."""
        for order in list(self.orders.values()):
            if not order.is_done:
                order.status, order.done_at = "Cancelled", now
                self._emit(BrokerEvent("order", order))

    def step(self, now: datetime) -> None:
        """Re-check resting orders against the market at sim time ``now`` (called periodically by the server)."""
        for order in list(self.orders.values()):
            if not order.is_done:
                self._try_fill(order, now)

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        return [o for o in self.orders.values() if not o.is_done and (client_id is None or o.client_id == client_id)]

    def completed_orders(self) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.is_done]

    # --- internals ----------------------------------------------------------------------------------------------
    def _validate(self, order: SimOrder, now: datetime) -> None:
        if order.order_type not in SUPPORTED_ORDER_TYPES:
            raise OrderError(387, "Unsupported order type for this exchange and security type.")
        if order.action not in ("BUY", "SELL"):
            raise OrderError(201, f"Order rejected - reason:Invalid action {order.action!r}")
        if order.quantity <= 0:
            raise OrderError(201, "Order rejected - reason:The order size must be positive.")
        if order.order_type == "LMT" and not order.lmt_price:
            raise OrderError(201, "Order rejected - reason:The limit price must be specified for a limit order.")
        if order.order_type == "STP" and not order.aux_price:
            raise OrderError(201, "Order rejected - reason:The stop price must be specified for a stop order.")
        rejected = self.reject_symbols
        if rejected is not None and (not rejected or order.contract.symbol in rejected):
            raise OrderError(201, "Order rejected - reason:Simulated rejection (sim fault reject-orders)")
        self._check_buying_power(order, now)

    def _check_buying_power(self, order: SimOrder, now: datetime) -> None:
        quote = self.market.quote(order.contract, now)
        value = self.usd_value(order.contract, order.quantity, quote.ask if order.action == "BUY" else quote.bid)
        closing = self._closing_qty(order.contract.conid, order.action, order.quantity)
        if closing >= order.quantity:
            return
        power = self.account_values(now)["BuyingPower"]
        if value > power:
            raise OrderError(201, "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED "
                             f"POSITION YOUR BUYING POWER [{power:.2f} USD] MUST EXCEED THE ORDER VALUE "
                             f"[{value:.2f} USD]")

    def _closing_qty(self, conid: int, action: str, qty: float) -> float:
        held = self.holdings.get(conid)
        pos = held.qty if held else 0.0
        if (action == "SELL" and pos > 0) or (action == "BUY" and pos < 0):
            return min(abs(pos), qty)
        return 0.0

    def _tradable(self, order: SimOrder, now: datetime) -> bool:
        if order.contract.sec_type == "CASH":
            return bool(self.market.is_open(order.contract, now, False))
        return bool(self.market.is_open(order.contract, now, not order.outside_rth))

    def _fill_price(self, order: SimOrder, now: datetime) -> float | None:
        quote = self.market.quote(order.contract, now)
        buy = order.action == "BUY"
        touch = quote.ask if buy else quote.bid
        if order.order_type == "STP" and not order.triggered:
            ref = quote.last if order.contract.sec_type == "STK" and quote.last > 0 else (quote.bid + quote.ask) / 2
            if (buy and ref >= order.aux_price) or (not buy and ref <= order.aux_price):
                order.triggered = True
            else:
                return None
        if order.order_type == "LMT" and ((buy and touch > order.lmt_price) or (not buy and touch < order.lmt_price)):
            return None
        return touch

    def _try_fill(self, order: SimOrder, now: datetime) -> None:
        if order.is_done:
            return
        if not self._tradable(order, now):
            if order.seen_open and order.tif in ("DAY", ""):  # IB cancels unfilled DAY orders at the close
                order.status, order.done_at = "Cancelled", now
                self._emit(BrokerEvent("order", order))
            return
        order.seen_open = True
        if order.status == "PreSubmitted":
            order.status = "Submitted"
            self._emit(BrokerEvent("order", order))
        price = self._fill_price(order, now)
        if price is None:
            return
        self._execute(order, order.remaining, price, now)

    def _execute(self, order: SimOrder, shares: float, price: float, now: datetime) -> None:
        c = order.contract
        usd = self.usd_value(c, shares, price)
        commission = ib_commission(c, shares, price, usd)
        realized = self._book(c, order.action, shares, price, commission, now)
        cum = order.filled + shares
        order.avg_fill_price = (order.avg_fill_price * order.filled + price * shares) / cum
        order.filled, order.last_fill_price = cum, price
        order.status = "Filled" if order.remaining <= 1e-9 else "Submitted"
        order.done_at = now if order.status == "Filled" else None
        seq = next(self._exec_seq)
        execution = SimExecution(f"0000e215.{order.perm_id:08x}.{seq:02d}.01", order, c, now,
                                 c.primary_exchange or c.exchange, shares, price, cum, order.avg_fill_price,
                                 commission, realized)
        self.executions.append(execution)
        self._emit(BrokerEvent("fill", order, execution))

    def _book(self, c: SimContract, action: str, shares: float, price: float, commission: float,
              now: datetime) -> float | None:
        """Update cash and the holding; returns realized P&L in USD for a closing fill, None for an opening one."""
        sign = 1.0 if action == "BUY" else -1.0
        if c.sec_type == "CASH":
            self.cash[c.symbol] = self.cash.get(c.symbol, 0.0) + sign * shares
        self.cash[c.currency] = self.cash.get(c.currency, 0.0) - sign * shares * price
        self.cash["USD"] = self.cash.get("USD", 0.0) - commission
        held = self.holdings.setdefault(c.conid, Holding(c))
        closing = self._closing_qty(c.conid, action, shares)
        realized = None
        if closing > 0:
            per_unit = (price - held.avg_cost) * (-sign)
            realized = round(per_unit * closing * self.to_usd(c.currency, now) - commission, 2)
            held.realized += realized
        opening = shares - closing
        new_qty = held.qty + sign * shares
        if opening > 0:
            cost_per_unit = price + sign * commission / max(shares, 1e-12) / self.to_usd(c.currency, now)
            held.avg_cost = cost_per_unit if abs(held.qty) < 1e-12 or closing > 0 else (
                (held.avg_cost * abs(held.qty) + cost_per_unit * opening) / abs(new_qty))
        held.qty = new_qty
        if abs(held.qty) < 1e-12:
            held.qty, held.avg_cost = 0.0, 0.0
        return realized

    def to_usd(self, currency: str, now: datetime) -> float:
        """USD per one unit of ``currency`` from the simulated forex midpoints (1.0 when no pair is known)."""
        if currency == "USD":
            return 1.0
        direct = find_contracts(currency, "CASH", "USD", "IDEALPRO")
        if direct:
            q = self.market.quote(direct[0], now)
            return (q.bid + q.ask) / 2
        inverse = find_contracts("USD", "CASH", currency, "IDEALPRO")
        if inverse:
            q = self.market.quote(inverse[0], now)
            return 2 / (q.bid + q.ask)
        return 1.0

    def usd_value(self, c: SimContract, qty: float, price: float, now: datetime | None = None) -> float:
        """Trade value in USD: quantity × price converted from the contract's currency (forex: base amount)."""
        if c.sec_type == "CASH" and c.symbol == "USD":
            return abs(qty)
        if c.currency == "USD" or now is None:
            return abs(qty * price)
        return abs(qty * price) * self.to_usd(c.currency, now)

    def _emit(self, event: BrokerEvent) -> None:
        for listener in list(self.listeners):
            listener(event)

    # --- account ------------------------------------------------------------------------------------------------
    def mark(self, c: SimContract, now: datetime) -> float:
        """Mark price: last trade for stocks when known, else the bid/ask midpoint."""
        q = self.market.quote(c, now)
        return q.last if c.sec_type == "STK" and q.last > 0 else (q.bid + q.ask) / 2

    def portfolio(self, now: datetime) -> list[dict[str, Any]]:
        """One row per non-flat holding: qty, market price/value, avg cost, unrealized and realized P&L."""
        rows = []
        for h in self.holdings.values():
            if h.qty == 0 and h.realized == 0:
                continue
            price = self.mark(h.contract, now)
            value = h.qty * price
            rows.append({"contract": h.contract, "qty": h.qty, "price": price, "value": value,
                         "avg_cost": h.avg_cost, "unrealized": value - h.qty * h.avg_cost, "realized": h.realized})
        return rows

    def account_values(self, now: datetime) -> dict[str, float]:
        """Account summary figures in USD (IB's tag names)."""
        cash = sum(amount * self.to_usd(ccy, now) for ccy, amount in self.cash.items())
        stocks = [r for r in self.portfolio(now) if r["contract"].sec_type == "STK"]
        stock_value = sum(r["value"] for r in stocks)
        gross = sum(abs(r["value"]) for r in stocks)
        net_liq = cash + stock_value
        margin = INITIAL_MARGIN * gross
        available = net_liq - margin
        return {"NetLiquidation": net_liq, "TotalCashValue": cash, "SettledCash": cash,
                "GrossPositionValue": gross, "StockMarketValue": stock_value, "EquityWithLoanValue": net_liq,
                "InitMarginReq": margin, "MaintMarginReq": margin, "FullInitMarginReq": margin,
                "FullMaintMarginReq": margin, "AvailableFunds": available, "FullAvailableFunds": available,
                "ExcessLiquidity": available, "FullExcessLiquidity": available,
                "BuyingPower": 4 * available, "Cushion": available / net_liq if net_liq else 0.0,
                "UnrealizedPnL": sum(r["unrealized"] for r in stocks),
                "RealizedPnL": sum(h.realized for h in self.holdings.values())}

    def account_rows(self, now: datetime) -> list[tuple[str, str, str]]:
        """(key, value, currency) rows as IB sends them: account facts, summary figures, cash per currency."""
        values = self.account_values(now)
        rows = [("AccountCode", self.account, ""), ("AccountType", "INDIVIDUAL", ""), ("AccountReady", "true", "")]
        for key, value in values.items():
            rows.append((key, f"{value:.6f}", "") if key == "Cushion" else (key, f"{value:.2f}", "USD"))
        base_cash = 0.0
        for ccy, amount in sorted(self.cash.items()):
            rows += [("Currency", ccy, ccy), ("CashBalance", f"{amount:.2f}", ccy),
                     ("TotalCashBalance", f"{amount:.2f}", ccy)]
            base_cash += amount * self.to_usd(ccy, now)
        rows += [("Currency", "USD", "BASE"), ("CashBalance", f"{base_cash:.2f}", "BASE"),
                 ("TotalCashBalance", f"{base_cash:.2f}", "BASE"),
                 ("NetLiquidationByCurrency", f"{values['NetLiquidation']:.2f}", "BASE")]
        return rows

    def what_if(self, order: SimOrder, now: datetime) -> dict[str, float]:
        """Margin and commission impact of ``order`` without placing it (IB's OrderState figures, USD).

        Raises OrderError like ``place`` would for an invalid order.
        """
        self._validate(order, now)
        quote = self.market.quote(order.contract, now)
        price = quote.ask if order.action == "BUY" else quote.bid
        usd = self.usd_value(order.contract, order.quantity, price, now)
        before = self.account_values(now)
        change = INITIAL_MARGIN * usd if order.contract.sec_type == "STK" else 0.0
        if self._closing_qty(order.contract.conid, order.action, order.quantity) >= order.quantity:
            change = -change
        commission = ib_commission(order.contract, order.quantity, price, usd)
        equity = before["EquityWithLoanValue"]
        return {"initMarginBefore": before["InitMarginReq"], "maintMarginBefore": before["MaintMarginReq"],
                "equityWithLoanBefore": equity, "initMarginChange": change, "maintMarginChange": change,
                "equityWithLoanChange": -commission, "initMarginAfter": before["InitMarginReq"] + change,
                "maintMarginAfter": before["MaintMarginReq"] + change, "equityWithLoanAfter": equity - commission,
                "commission": commission}
