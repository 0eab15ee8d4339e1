"""ib/orders.py through the unmodified ib_async client against the sim: place, wait, read back by orderRef."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from ibkrtool.ib import orders
from ibkrtool.ib.contracts import qualify, to_ib
from ibkrtool.ib.session import ConnectOptions, ib_session
from ibkrtool.model import Instrument
from ibkrtool.model.order import OrderIntent, OrderType, Side

pytestmark = pytest.mark.timeout(30)
SIGNAL = datetime(2026, 11, 20, 14, 55, tzinfo=timezone.utc)


def intent(ref: str, side: Side = Side.BUY, quantity: float = 30) -> OrderIntent:
    return OrderIntent("SPY", side, quantity, OrderType.MARKET, ref, SIGNAL, quantity)


def run(gateway, body):
    async def main():
        async with ib_session(ConnectOptions(port=gateway.port, client_id=4, readonly=False)) as ib:
            contract = to_ib(await qualify(ib, Instrument.parse("SPY")))
            return await body(ib, contract)

    return asyncio.run(main())


def test_market_order_fills_and_is_found_by_ref(sim_gateway):
    async def body(ib, contract):
        outcome = await orders.place_and_wait(ib, contract, intent("r1:20261120T145500Z"), "paper", "DU1234567")
        by_ref = await orders.executions_by_ref(ib, "paper", contract.conId)
        return outcome, by_ref, await orders.position_of(ib, contract.conId), orders.managed_accounts(ib)

    outcome, by_ref, position, accounts = run(sim_gateway, body)
    assert outcome.status == "Filled" and not outcome.rejected and outcome.filled_quantity == 30
    [fill] = outcome.fills
    assert (fill.side, fill.quantity, fill.commission, fill.account) == (Side.BUY, 30, 1.0, "DU1234567")
    assert fill.perm_id and fill.exec_id and fill.time.tzinfo is not None
    assert [f.exec_id for f in by_ref["r1:20261120T145500Z"]] == [fill.exec_id]
    assert position == 30 and accounts == ["DU1234567"]


def test_rejection_carries_ib_code_and_reason(sim_factory):
    gw = sim_factory(faults="reject-orders")

    async def body(ib, contract):
        return await orders.place_and_wait(ib, contract, intent("r2:x"), "paper")

    outcome = run(gw, body)
    assert outcome.rejected and outcome.error_code == 201 and outcome.fills == []
    assert outcome.error_text.startswith("Order rejected - reason:")


def test_working_orders_are_listed_by_ref(sim_gateway):
    from ib_async import LimitOrder

    async def body(ib, contract):
        [bar] = (await ib.reqHistoricalDataAsync(contract, "", "1800 S", "1 min", "TRADES", True, 2))[-1:]
        ib.placeOrder(contract, LimitOrder("BUY", 5, round(bar.close * 0.5, 2), orderRef="r3:resting"))
        for _ in range(200):
            working = await orders.working_orders(ib, contract.conId)
            if working:
                return orders.working_refs(working)
            await asyncio.sleep(0.02)
        return set()

    assert run(sim_gateway, body) == {"r3:resting"}
