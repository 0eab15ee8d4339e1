"""Smoke test of the sim with ib_insync 0.9.86 (server version 176). Not collected by pytest: run it with the
interpreter of a separate venv, because ib_insync and ib_async both install a module named ``eventkit``:

    python3 -m venv .venv-insync
    .venv-insync/bin/pip install ib_insync==0.9.86 numpy pandas exchange_calendars
    .venv-insync/bin/pip install --no-deps -e .
    .venv-insync/bin/python tests/sim/insync_smoke.py      # exit 0 = all checks passed

Each check prints one line; the script stops at the first failure with exit 1.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

from ib_insync import IB, Forex, LimitOrder, MarketOrder, Stock

from ibkrtool.sim.server import start_sim

SIM_START = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)


def check(name: str, ok: bool, detail: object = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")
    if not ok:
        raise SystemExit(1)


def wait(ib: IB, cond, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:
        ib.sleep(0.05)
    return bool(cond())


def smoke(port: int) -> None:
    ib = IB()
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code))
    t0 = time.perf_counter()
    ib.connect("127.0.0.1", port, clientId=1, timeout=4)
    check("connect", ib.isConnected(), f"{time.perf_counter() - t0:.3f}s")
    check("server version 176", ib.client.serverVersion() == 176, ib.client.serverVersion())
    spy, eur = Stock("SPY", "SMART", "USD"), Forex("EURUSD")
    check("qualify", ib.qualifyContracts(spy, eur) == [spy, eur] and spy.conId == 756733)
    bars = ib.reqHistoricalData(spy, "", "1800 S", "1 min", "TRADES", True, 2)
    check("historical bars", len(bars) >= 20, len(bars))
    fx = ib.reqHistoricalData(eur, "", "1 D", "1 hour", "MIDPOINT", False, 2)
    check("forex midpoint bars", len(fx) >= 10 and fx[0].volume == -1, len(fx))
    check("head timestamp", ib.reqHeadTimeStamp(spy, "TRADES", True, 2) < SIM_START)
    summary = {v.tag: v.value for v in ib.accountSummary()}
    check("account summary", float(summary["NetLiquidation"]) == 1_000_000.0)
    state = ib.whatIfOrder(spy, MarketOrder("BUY", 100))
    check("what-if order", float(state.commission) == 1.0 and float(state.initMarginChange) > 0)
    trade = ib.placeOrder(spy, MarketOrder("BUY", 100))
    check("market order filled", wait(ib, lambda: trade.isDone() and trade.fills
                                          and trade.fills[0].commissionReport.execId), trade.orderStatus.status)
    check("commission", trade.fills[0].commissionReport.commission == 1.0)
    check("position", wait(ib, lambda: any(p.position == 100 for p in ib.positions())))
    limit = ib.placeOrder(spy, LimitOrder("BUY", 10, round(bars[-1].close * 0.5, 2)))
    check("limit resting", wait(ib, lambda: limit.orderStatus.status == "Submitted"))
    ib.cancelOrder(limit.order)
    check("limit cancelled", wait(ib, lambda: limit.orderStatus.status == "Cancelled"))
    other = IB()
    other.connect("127.0.0.1", port, clientId=2, timeout=4)
    done = other.reqCompletedOrders(apiOnly=False)
    check("completed orders", {t.orderStatus.status for t in done} == {"Filled", "Cancelled"}, len(done))
    check("executions with commission", [f.commissionReport.commission for f in other.fills()] == [1.0])
    other.disconnect()
    rt = ib.reqRealTimeBars(spy, 5, "TRADES", False)
    check("real-time bars", wait(ib, lambda: len(rt) >= 2), len(rt))
    clash = IB()
    clash_errors: list[int] = []
    clash.errorEvent += lambda req_id, code, text, contract: clash_errors.append(code)
    try:
        clash.connect("127.0.0.1", port, clientId=1, timeout=1)
    except Exception:  # ib_insync raises TimeoutError/ConnectionError when the socket is closed
        pass
    clash.disconnect()
    check("clientId clash 326", 326 in clash_errors)
    ib.disconnect()


def main() -> int:
    gateway = start_sim(start=SIM_START, speed=10, pacing_scale=0.01)
    try:
        smoke(gateway.port)
    finally:
        gateway.stop()
    print("ib_insync smoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
