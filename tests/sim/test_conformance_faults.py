"""Conformance: pacing (162), several clients, clientId clash (326), injected faults and reconnects."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from ib_async import IB, Stock

from ibkrtool.errors import InputError
from ibkrtool.sim.faults import parse_faults
from tests.plugins.sim import SIM_START

pytestmark = pytest.mark.timeout(40)
PACING_TEXT = "Historical Market Data Service error message:Historical data request pacing violation"
STOCKS = ("SPY", "QQQ", "AAPL", "MSFT", "IWM")


def _groups(ib) -> list[tuple]:
    """(contract, whatToShow) pairs: IB's 2-second rule counts per contract + exchange + whatToShow, so rotating
    over these 20 groups keeps every group at <= 4 requests per burst of 61 (only the 60-per-10-minutes rule bites)."""
    stocks = [Stock(s, "SMART", "USD") for s in STOCKS]
    ib.qualifyContracts(*stocks)
    return [(c, w) for c in stocks for w in ("TRADES", "MIDPOINT", "BID", "ASK")]


def _stocks(ib):
    contracts = [Stock(s, "SMART", "USD") for s in STOCKS]
    ib.qualifyContracts(*contracts)
    return contracts


def _burst(ib, groups, n: int) -> list[list]:
    """n distinct small-bar requests (rotating groups, distinct durations), sent concurrently (ib_async throttles
    them to 45 messages per second)."""
    async def run():
        return await asyncio.gather(*[
            ib.reqHistoricalDataAsync(groups[i % len(groups)][0], "", f"{60 + i} S", "1 secs",
                                      groups[i % len(groups)][1], True, 2, timeout=10) for i in range(n)])
    return ib.run(run())


def test_sixty_first_request_in_the_window_is_refused(sim_factory, ib_connect, errors, wait_until):
    gw = sim_factory(pacing_scale=0.02)  # the 10-minute window lasts 12 s of real time
    ib = ib_connect(gw)
    seen = errors(ib)
    results = _burst(ib, _groups(ib), 61)
    assert sum(1 for r in results if r) == 60
    assert not results[-1] or not results[0]
    refused = [(r, c, t) for r, c, t in seen if c == 162]
    assert len(refused) == 1 and refused[0][2] == PACING_TEXT
    assert gw.violations == 1


def test_paced_sequence_passes(sim_factory, ib_connect, errors):
    gw = sim_factory(pacing_scale=0.01)  # windows: 6 s per 60 requests, 20 ms per 6 on one contract
    ib = ib_connect(gw)
    seen = errors(ib)
    results = _burst(ib, _groups(ib), 55)
    assert all(results) and not [e for e in seen if e[1] == 162]
    assert gw.violations == 0


def test_identical_request_within_15s_refused(sim_factory, ib_connect, errors, wait_until):
    gw = sim_factory(pacing_scale=1.0)
    ib = ib_connect(gw)
    seen = errors(ib)
    spy = _stocks(ib)[0]
    assert ib.reqHistoricalData(spy, "", "60 S", "1 secs", "TRADES", True, 2)
    assert len(ib.reqHistoricalData(spy, "", "60 S", "1 secs", "TRADES", True, 2)) == 0
    assert [t for _, c, t in seen if c == 162] == [PACING_TEXT]


def test_two_clients_at_once(sim_gateway, ib_connect):
    a = ib_connect(sim_gateway, client_id=1)
    b = ib_connect(sim_gateway, client_id=2)
    spy_a, spy_b = Stock("SPY", "SMART", "USD"), Stock("SPY", "SMART", "USD")
    a.qualifyContracts(spy_a)
    b.qualifyContracts(spy_b)
    bars_a = a.reqHistoricalData(spy_a, "", "1800 S", "1 min", "TRADES", True, 2)
    bars_b = b.reqHistoricalData(spy_b, "", "1800 S", "1 min", "TRADES", True, 2)
    assert bars_a and [x.close for x in bars_a[:-1]] == [x.close for x in bars_b[:len(bars_a) - 1]]
    assert a.isConnected() and b.isConnected()


def test_client_id_clash_gets_326_and_id_is_freed(sim_gateway, ib_connect):
    first = ib_connect(sim_gateway, client_id=5)
    second = IB()
    seen = []
    second.errorEvent += lambda req_id, code, text, contract: seen.append(code)
    with pytest.raises((TimeoutError, ConnectionError, asyncio.TimeoutError)):
        second.connect("127.0.0.1", sim_gateway.port, clientId=5, timeout=1)
    second.disconnect()
    assert 326 in seen
    assert first.isConnected() and first.reqCurrentTime() is not None
    first.disconnect()
    deadline = time.monotonic() + 5
    while sim_gateway.call(lambda: 5 in sim_gateway.server.clients) and time.monotonic() < deadline:
        time.sleep(0.02)
    third = ib_connect(sim_gateway, client_id=5)
    assert third.isConnected()


def test_reconnect_after_injected_drop(sim_factory, ib_connect, wait_until):
    gw = sim_factory(faults="drop-after-messages=9")  # connect sends 7 requests; the 9th drops the socket
    ib = ib_connect(gw)
    dropped = []
    ib.disconnectedEvent += lambda: dropped.append(True)
    ib.client.reqCurrentTime()  # fire and forget: the 9th request is answered by a dropped socket
    ib.client.reqCurrentTime()
    try:
        wait_until(ib, lambda: bool(dropped))
    except ConnectionError:  # ib_async raises "Socket disconnect" out of its loop when the peer drops
        pass
    assert dropped and not ib.isConnected()
    ib.connect("127.0.0.1", gw.port, clientId=1, timeout=4)
    assert ib.isConnected() and ib.reqCurrentTime() >= SIM_START


def test_connectivity_lost_then_restored(sim_factory, ib_connect, errors, wait_until):
    lost_at = (SIM_START + timedelta(seconds=15)).isoformat()  # 1.5 s of real time: after connect completes
    gw = sim_factory(speed=10, faults=f"connectivity-lost-at={lost_at}:restored-after=3")
    ib = ib_connect(gw)
    seen = errors(ib)
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    bars = ib.reqHistoricalData(spy, "", "300 S", "5 secs", "TRADES", False, 2, keepUpToDate=True)
    assert bars
    assert wait_until(ib, lambda: [c for _, c, _ in seen if c in (1100, 1102)] == [1100, 1102])
    assert (bars.reqId, 10182) in [(r, c) for r, c, _ in seen]  # IB ends keepUpToDate streams on the loss


def test_no_data_fault_answers_162(sim_factory, ib_connect, errors):
    gw = sim_factory(faults="no-data=SPY")
    ib = ib_connect(gw)
    seen = errors(ib)
    spy = _stocks(ib)[0]
    assert len(ib.reqHistoricalData(spy, "", "1800 S", "1 min", "TRADES", True, 2)) == 0
    assert any(c == 162 and "HMDS query returned no data" in t for _, c, t in seen)
    bars = ib.reqHistoricalData(spy, "", "1800 S", "1 min", "BID_ASK", True, 2)
    assert len(bars) == 0  # the same text as a real empty window: IB's type name, first letter in capitals
    assert (bars.reqId, 162, "Historical Market Data Service error message:HMDS query returned no data: "
                             "SPY@SMART Bid_ask") in seen


def test_delay_fault_delays_replies(sim_factory, ib_connect):
    gw = sim_factory(faults="delay-ms=50")
    ib = ib_connect(gw)
    t0 = time.perf_counter()
    ib.reqCurrentTime()
    assert time.perf_counter() - t0 >= 0.05


def test_fault_spec_parsing():
    f = parse_faults("drop-after-messages=200, drop-at=2026-11-20T15:00:00Z,"
                     "connectivity-lost-at=2026-11-20T15:01:00Z:restored-after=30,reject-orders=SPY+QQQ,"
                     "delay-ms=50,no-data=SPY")
    assert f.drop_after_messages == 200 and f.drop_at == SIM_START
    assert f.connectivity_lost_at == SIM_START + timedelta(minutes=1) and f.restored_after == timedelta(seconds=30)
    assert f.reject_orders == {"SPY", "QQQ"} and f.delay_ms == 50 and f.no_data == {"SPY"}
    assert parse_faults("reject-orders").reject_orders == frozenset()
    assert parse_faults(None).reject_orders is None
    for bad in ("explode=1", "delay-ms=fast", "drop-at=yesterday", "drop-at=2026-11-20T15:00:00", "no-data="):
        with pytest.raises(InputError, match="--faults"):
            parse_faults(bad)


def test_drop_at_sim_time_then_reconnect(sim_factory, ib_connect, wait_until):
    drop_at = (SIM_START + timedelta(seconds=15)).isoformat()  # 1.5 s of real time: after connect completes
    gw = sim_factory(speed=10, faults=f"drop-at={drop_at}")
    ib = ib_connect(gw)
    dropped = []
    ib.disconnectedEvent += lambda: dropped.append(True)
    try:
        wait_until(ib, lambda: bool(dropped))
    except ConnectionError:
        pass
    assert dropped and not ib.isConnected()
    ib.connect("127.0.0.1", gw.port, clientId=1, timeout=4)
    assert ib.reqCurrentTime() >= SIM_START + timedelta(seconds=15)


def test_garbage_and_unknown_messages_do_not_hurt_other_clients(sim_gateway, ib_connect, errors, wait_until):
    import socket
    import struct

    ib = ib_connect(sim_gateway, client_id=1)
    with socket.create_connection(("127.0.0.1", sim_gateway.port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\n\r\n")  # not the TWS protocol: the sim closes this socket
        assert raw.recv(100) == b""
    with socket.create_connection(("127.0.0.1", sim_gateway.port), timeout=5) as raw:
        hello = b"v100..120"  # older than any version the sim speaks
        raw.sendall(b"API\0" + struct.pack(">I", len(hello)) + hello)
        assert raw.recv(100) == b""
    seen = errors(ib)
    ib.client.send(250, 1, 77)  # a message id TWS does not have
    assert wait_until(ib, lambda: any(code == 322 for _, code, _ in seen))
    assert ib.isConnected() and ib.reqCurrentTime() >= SIM_START
