"""The Gateway facade: against the sim through the unmodified ib_async client, plus its pure pieces."""

from __future__ import annotations

import asyncio
from datetime import timedelta, timezone

import pytest

from ibkrtool.errors import GatewayError
from ibkrtool.ib.events import ConnectivityLost, Disconnected, FarmStatus, Restored, event_for
from ibkrtool.ib.gateway import open_gateway
from ibkrtool.ib.reconnect import ReconnectPolicy, reconnect_loop
from ibkrtool.ib.session import ConnectOptions
from ibkrtool.model import BarSize, Instrument
from ibkrtool.model.order import OrderIntent, OrderType, Side
from tests.plugins.sim import SIM_START

pytestmark = pytest.mark.timeout(60)
UTC = timezone.utc


def test_connectivity_codes_become_typed_events() -> None:
    assert isinstance(event_for(1100, "Connectivity between IB and TWS has been lost."), ConnectivityLost)
    assert event_for(1101, "restored - data lost") == Restored(True, "IB connectivity restored, data lost (1101)")
    assert event_for(1102, "restored - data maintained").data_lost is False  # type: ignore[union-attr]
    assert event_for(2104, "Market data farm connection is OK:usfarm") == FarmStatus("usfarm", True)
    assert event_for(2103, "Market data farm connection is broken:usfarm") == FarmStatus("usfarm", False)
    assert event_for(162, "pacing violation") is None and event_for(200, "no security") is None


def test_the_reconnect_loop_is_bounded_and_stoppable() -> None:
    tries: list[int] = []

    async def failing() -> None:
        tries.append(1)
        raise GatewayError("down")

    async def ok() -> None:
        tries.append(1)

    policy = ReconnectPolicy(backoff_s=0.0, max_attempts=3)
    with pytest.raises(GatewayError):
        asyncio.run(reconnect_loop(failing, policy, lambda: False))
    assert len(tries) == 3
    assert asyncio.run(reconnect_loop(ok, policy, lambda: False)) is True
    assert asyncio.run(reconnect_loop(ok, policy, lambda: True)) is False and len(tries) == 4
    assert ReconnectPolicy(0.5, 2.0, 5).pauses() == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_clock_contracts_history_and_accounts_in_our_types(sim_gateway) -> None:
    async def run():
        async with open_gateway(ConnectOptions(port=sim_gateway.port, client_id=11)) as gateway:
            now = await gateway.now()
            spy = await gateway.qualify(Instrument.parse("SPY"))
            lo = SIM_START - timedelta(days=1)
            frame = await gateway.history(spy, BarSize.parse("5s"), "TRADES", lo, lo + timedelta(hours=2), True)
            return now, spy, frame, await gateway.account_summaries(), gateway.managed_accounts()

    now, spy, frame, summaries, accounts = asyncio.run(run())
    assert now.tzinfo is not None and abs(now - SIM_START) < timedelta(minutes=5)
    assert spy.conid == 756733 and spy.sec_type == "STK"
    assert len(frame) == 2 * 720 and frame.index.tz is not None and frame.index.is_monotonic_increasing
    assert [s.account for s in summaries] == accounts == ["DU1234567"]
    assert sim_gateway.violations == 0


def test_orders_positions_and_executions_in_our_types(sim_gateway) -> None:
    intent = OrderIntent("SPY", Side.BUY, 7, OrderType.MARKET, "gw:20261120T145500Z", SIM_START, 7)

    async def run():
        async with open_gateway(ConnectOptions(port=sim_gateway.port, client_id=12), readonly=False) as gateway:
            spy = await gateway.qualify(Instrument.parse("SPY"))
            outcome = await gateway.place_and_wait(spy, intent, "paper", "DU1234567")
            return (outcome, await gateway.position(spy.conid), await gateway.executions("paper", spy.conid),
                    await gateway.working_orders(spy.conid))

    outcome, position, fills, working = asyncio.run(run())
    assert outcome.status == "Filled" and position == 7 and working == []
    assert [f.order_ref for f in fills] == ["gw:20261120T145500Z"] and outcome.fills[0].commission == 1.0


def test_a_dropped_connection_is_an_event_and_reconnect_restores_it(sim_factory) -> None:
    sim = sim_factory(faults=f"drop-at={(SIM_START + timedelta(seconds=1)):%Y-%m-%dT%H:%M:%SZ}")

    async def run():
        async with open_gateway(ConnectOptions(port=sim.port, client_id=13)) as gateway:
            event = None
            while not isinstance(event, Disconnected):
                event = await gateway.next_event(10.0)
                assert event is not None, "no Disconnected within 10 s"
            back = await gateway.reconnect(policy=ReconnectPolicy(backoff_s=0.2, max_attempts=5))
            return back, gateway.connected, await gateway.now()

    back, connected, now = asyncio.run(run())
    assert back and connected and now.tzinfo is not None
