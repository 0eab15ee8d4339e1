"""Session handlers for the account and orders: positions, account values and summary, executions, order
placement and cancellation, and the broker's events turned into this client's messages. Mixed into
``session.Session``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ibkrtool.sim import codec
from ibkrtool.sim.broker import BrokerEvent, OrderError, SimOrder
from ibkrtool.sim.contracts import SimContract
from ibkrtool.sim.history import SimRequestError

if TYPE_CHECKING:
    from ibkrtool.sim.server import SimServer


class AccountOrderHandlers:
    """``_on_<request>`` handlers for account and order requests; they use the ``Session`` they are mixed into
    (``server``, ``send``, ``send_error``, ``resolve`` and the subscription flags below)."""

    if TYPE_CHECKING:
        server: SimServer
        server_version: int
        client_id: int | None
        closed: bool
        account_updates: bool
        positions_sub: bool

        def send(self, fields: list) -> None: ...
        def send_error(self, req_id: int, code: int, text: str) -> None: ...
        def resolve(self, c: dict[str, Any]) -> SimContract: ...

    # --- account ------------------------------------------------------------------------------------------------
    def _on_reqPositions(self, req: codec.Request) -> None:
        self.positions_sub = True
        for h in self.server.broker.holdings.values():
            self.send(codec.position(self.server.account, h.contract, h.qty, h.avg_cost))
        self.send(codec.position_end())

    def _on_cancelPositions(self, req: codec.Request) -> None:
        self.positions_sub = False

    def _on_reqAccountUpdates(self, req: codec.Request) -> None:
        self.account_updates = req.args["subscribe"]
        if not self.account_updates:
            return
        self._send_account_values()
        self._send_portfolio()
        self.send(codec.account_time(self.server.clock.now().strftime("%H:%M")))
        self.send(codec.account_download_end(self.server.account))

    def _send_account_values(self) -> None:
        for key, value, currency in account_value_rows(self.server):
            self.send(codec.account_value(key, value, currency, self.server.account))

    def _send_portfolio(self) -> None:
        for r in self.server.broker.portfolio(self.server.clock.now()):
            self.send(codec.portfolio_value(r["contract"], r["qty"], round(r["price"], 6), round(r["value"], 2),
                                            round(r["avg_cost"], 6), round(r["unrealized"], 2),
                                            round(r["realized"], 2), self.server.account))

    def _on_reqAccountUpdatesMulti(self, req: codec.Request) -> None:
        for key, value, currency in account_value_rows(self.server):
            self.send(codec.account_update_multi(req.req_id, self.server.account, key, value, currency))
        self.send(codec.account_update_multi_end(req.req_id))

    def _on_cancelAccountUpdatesMulti(self, req: codec.Request) -> None:
        pass

    def _on_reqAccountSummary(self, req: codec.Request) -> None:
        values = {key: (value, cur) for key, value, cur in account_value_rows(self.server) if cur in ("", "USD")}
        values["Currency"] = ("USD", "USD")
        for tag in [t.strip() for t in req.args["tags"].split(",") if t.strip()]:
            if tag.startswith("$LEDGER"):
                for key, value, cur in account_value_rows(self.server):
                    if key in ("Currency", "CashBalance", "TotalCashBalance", "NetLiquidationByCurrency"):
                        self.send(codec.account_summary(req.req_id, self.server.account, key, value, cur))
            elif tag in values:
                value, cur = values[tag]
                self.send(codec.account_summary(req.req_id, self.server.account, tag, value, cur))
        self.send(codec.account_summary_end(req.req_id))

    def _on_cancelAccountSummary(self, req: codec.Request) -> None:
        """Accepted silently: the summary is sent once (IB's 3-minute refresh is not simulated), so nothing runs."""

    def _on_reqExecutions(self, req: codec.Request) -> None:
        wanted = req.args
        for e in self.server.broker.executions:
            if not _exec_matches(e, wanted):
                continue
            self.send(codec.exec_details(self.server_version, req.req_id, e))
            self.send(codec.commission_report(e.exec_id, e.commission, "USD", e.realized_pnl))
        self.send(codec.exec_details_end(req.req_id))

    # --- orders -------------------------------------------------------------------------------------------------
    def _on_reqOpenOrders(self, req: codec.Request) -> None:
        for o in self.server.broker.open_orders(self.client_id):
            self.send(codec.open_order(self.server_version, o))
            self.send(codec.order_status(o))
        self.send(codec.open_order_end())

    def _on_reqAllOpenOrders(self, req: codec.Request) -> None:
        for o in self.server.broker.open_orders():
            self.send(codec.open_order(self.server_version, o))
            self.send(codec.order_status(o))
        self.send(codec.open_order_end())

    def _on_reqAutoOpenOrders(self, req: codec.Request) -> None:
        pass

    def _on_reqCompletedOrders(self, req: codec.Request) -> None:
        for o in self.server.broker.completed_orders():
            if o.client_id == self.client_id or not req.args["api_only"]:
                self.send(codec.completed_order(self.server_version, o))
        self.send(codec.completed_orders_end())

    def _on_reqIds(self, req: codec.Request) -> None:
        self.send(codec.next_valid_id(self.server.next_order_id(self.client_id)))

    def _on_reqMarketDataType(self, req: codec.Request) -> None:
        pass

    def _on_reqGlobalCancel(self, req: codec.Request) -> None:
        self.server.broker.cancel_all(self.server.clock.now())

    def _on_placeOrder(self, req: codec.Request) -> None:
        a = req.args
        try:
            contract = self.resolve(a["contract"])
        except SimRequestError as exc:
            self.send_error(req.req_id, exc.code, exc.text)
            return
        order = SimOrder(order_id=req.req_id, client_id=self.client_id, perm_id=0, contract=contract,
                         action=a["action"], quantity=a["quantity"], order_type=a["order_type"],
                         lmt_price=a["lmt_price"], aux_price=a["aux_price"], tif=a["tif"],
                         account=a["account"] or self.server.account, order_ref=a["order_ref"],
                         outside_rth=a["outside_rth"], parent_id=a["parent_id"])
        try:
            if a.get("what_if"):  # IB answers with an openOrder carrying the estimates; nothing is placed
                self.send(codec.open_order(self.server_version, order,
                                           self.server.broker.what_if(order, self.server.clock.now())))
            else:
                self.server.broker.place(order, self.server.clock.now())
        except OrderError as exc:
            self.send_error(req.req_id, exc.code, exc.text)

    def _on_cancelOrder(self, req: codec.Request) -> None:
        try:
            self.server.broker.cancel(self.client_id, req.req_id, self.server.clock.now())
        except OrderError as exc:
            self.send_error(req.req_id, exc.code, exc.text)
            return
        self.send_error(req.req_id, 202, "Order Canceled - reason:")

    def _on_broker_event(self, event: BrokerEvent) -> None:
        """Turn broker events into this client's messages: its own orders, and account/position updates."""
        if self.closed:
            return
        order = event.order
        if order.client_id == self.client_id:
            if event.kind == "fill" and event.execution is not None:
                e = event.execution
                self.send(codec.exec_details(self.server_version, -1, e))
                self.send(codec.open_order(self.server_version, order))
                self.send(codec.order_status(order))
                self.send(codec.commission_report(e.exec_id, e.commission, "USD", e.realized_pnl))
            elif event.kind == "order":
                self.send(codec.open_order(self.server_version, order))
                self.send(codec.order_status(order))
        if event.kind == "fill":
            self._after_fill(order)

    def refresh_account(self) -> None:
        """Periodic push of portfolio and account values to an account-updates subscriber."""
        if self.account_updates and not self.closed:
            self._send_portfolio()
            self._send_account_values()
            self.send(codec.account_time(self.server.clock.now().strftime("%H:%M")))

    def _after_fill(self, order: SimOrder) -> None:
        holding = self.server.broker.holdings.get(order.contract.conid)
        if self.positions_sub and holding is not None:
            self.send(codec.position(self.server.account, holding.contract, holding.qty, holding.avg_cost))
        self.refresh_account()


def account_value_rows(server: SimServer) -> list[tuple[str, str, str]]:
    """(key, value, currency) rows IB sends for the account at the current sim time."""
    return server.broker.account_rows(server.clock.now())


def _exec_matches(e: Any, f: dict[str, str]) -> bool:
    if f.get("client_id") not in ("", "0", None) and str(e.order.client_id) != f["client_id"]:
        return False
    if f.get("symbol") and f["symbol"].upper() != e.contract.symbol:
        return False
    if f.get("sec_type") and f["sec_type"].upper() != e.contract.sec_type:
        return False
    side = f.get("side", "").upper()
    return not side or side == e.order.action or side == ("BOT" if e.order.action == "BUY" else "SLD")
