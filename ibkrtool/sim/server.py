"""The simulated gateway: asyncio server, client registry (clientId clash → 326), fault timers, and a
thread-backed handle (``start_sim``) for tests and embedding."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ibkrtool.errors import GatewayError
from ibkrtool.sim.broker import Broker
from ibkrtool.sim.clock import SimClock
from ibkrtool.sim.codec import Request
from ibkrtool.sim.faults import Faults, parse_faults
from ibkrtool.sim.market import Market
from ibkrtool.sim.pacing import PacingEnforcer
from ibkrtool.sim.session import Session

log = logging.getLogger(__name__)

STEP_S = 0.1  # real seconds between checks of resting orders and timed faults
ACCOUNT_REFRESH = timedelta(minutes=3)  # sim time
DEFAULT_ACCOUNT = "DU1234567"
TEXT_1100 = "Connectivity between IB and Trader Workstation has been lost."
TEXT_1102 = "Connectivity between IB and Trader Workstation has been restored - data maintained."


@dataclass
class _FaultState:
    dropped_after: bool = False
    dropped_at: bool = False
    lost: bool = False
    restored: bool = False


@dataclass
class SimServer:
    """Gateway state shared by all clients: clock, market, broker, pacing, registry, counters."""

    clock: SimClock
    market: Market
    pacing: PacingEnforcer
    account: str = DEFAULT_ACCOUNT
    faults: Faults = field(default_factory=Faults)
    stats: Counter = field(default_factory=Counter)
    sessions: set[Session] = field(default_factory=set)
    clients: dict[int, Session] = field(default_factory=dict)
    messages: int = 0
    connected_to_ib: bool = True  # False between a simulated 1100 and 1102: streams send nothing
    _state: _FaultState = field(default_factory=_FaultState)
    _server: asyncio.AbstractServer | None = None
    _ticker: asyncio.Task | None = None
    _tasks: set = field(default_factory=set)

    def __post_init__(self) -> None:
        self.broker = Broker(self.market, self.account, reject_symbols=self.faults.reject_orders)
        # Historical queries run on one worker thread (IB's HMDS answers asynchronously) with their own Market:
        # the market is deterministic, so a second instance gives identical data without sharing its caches.
        self.hmds_market = Market(seed=self.market.seed, replay=self.market.replay)
        self.hmds = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim-hmds")

    async def in_hmds(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the HMDS worker thread and await its result."""
        return await asyncio.get_running_loop().run_in_executor(self.hmds, fn, *args)

    @property
    def violations(self) -> int:
        return self.pacing.violations

    # --- lifecycle ----------------------------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 = any free port); returns the bound port. Raises GatewayError if it can't."""
        try:
            self._server = await asyncio.start_server(self._accept, host, port)
        except OSError as exc:
            raise GatewayError(f"sim cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from None
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        bound = self._server.sockets[0].getsockname()[1]
        log.info("sim gateway listening on %s:%d (account %s, sim time %s, speed %gx)", host, bound, self.account,
                 self.clock.now().isoformat(timespec="seconds"), self.clock.speed)
        return bound

    async def stop(self) -> None:
        """Close the listener and every client connection."""
        if self._ticker is not None:
            self._ticker.cancel()
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            await session.close()
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        if self._server is not None:
            await self._server.wait_closed()
        self.hmds.shutdown(wait=False, cancel_futures=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            self._tasks.discard(task)

    # --- registry -----------------------------------------------------------------------------------------------
    def register(self, client_id: int, session: Session) -> bool:
        """Claim ``client_id`` for ``session``; False if another live session holds it (IB error 326)."""
        holder = self.clients.get(client_id)
        if holder is not None and holder is not session and not holder.closed:
            return False
        self.clients[client_id] = session
        return True

    def unregister(self, session: Session) -> None:
        if session.client_id is not None and self.clients.get(session.client_id) is session:
            del self.clients[session.client_id]
        if session._on_broker_event in self.broker.listeners:
            self.broker.listeners.remove(session._on_broker_event)

    def market_data_lines_used(self) -> int:
        """Streaming reqMktData subscriptions open over all clients (each uses one market-data line)."""
        from ibkrtool.sim.streams import MarketData

        return sum(1 for s in self.sessions for st in s.streams.values() if isinstance(st, MarketData))

    def next_order_id(self, client_id: int | None) -> int:
        """nextValidId for a client: one above the highest order id it has used (IB paper starts at 1)."""
        used = [oid for (cid, oid) in self.broker.orders if cid == client_id]
        return max(used, default=0) + 1

    def count(self, req: Request) -> None:
        self.stats[req.name] += 1
        self.messages += 1

    def should_drop_after(self, session: Session) -> bool:
        """drop-after-messages fault: true once, for the session whose request reached the count."""
        n = self.faults.drop_after_messages
        if n is None or self._state.dropped_after or self.messages < n:
            return False
        self._state.dropped_after = True
        return True

    # --- periodic work ------------------------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        next_refresh = self.clock.now() + ACCOUNT_REFRESH
        while True:
            await asyncio.sleep(STEP_S)
            try:
                now = self.clock.now()
                self.broker.step(now)
                self._timed_faults(now)
                if now >= next_refresh:  # IB refreshes subscribed account/portfolio values every 3 minutes
                    next_refresh = now + ACCOUNT_REFRESH
                    for session in list(self.clients.values()):
                        session.refresh_account()
            except Exception:
                log.exception("sim periodic step failed")

    def _timed_faults(self, now: datetime) -> None:
        f, st = self.faults, self._state
        if f.drop_at is not None and not st.dropped_at and now >= f.drop_at:
            st.dropped_at = True
            for session in list(self.sessions):
                session.drop()
        if f.connectivity_lost_at is None:
            return
        if not st.lost and now >= f.connectivity_lost_at:
            st.lost = True
            self.connected_to_ib = False
            self._broadcast(1100, TEXT_1100)
            for session in list(self.clients.values()):
                session.kill_live_updates()
        if st.lost and not st.restored and now >= f.connectivity_lost_at + f.restored_after:
            st.restored = True
            self.connected_to_ib = True
            self._broadcast(1102, TEXT_1102)

    def _broadcast(self, code: int, text: str) -> None:
        log.warning("fault: sending %d to %d clients", code, len(self.clients))
        for session in list(self.clients.values()):
            session.send_error(-1, code, text)

    def summary(self) -> dict[str, Any]:
        """Counters for the exit summary: requests by type, pacing violations, orders, executions."""
        return {"requests": dict(self.stats), "requests_total": sum(self.stats.values()),
                "pacing_violations": self.violations, "orders": len(self.broker.orders),
                "executions": len(self.broker.executions)}


def build_server(seed: int = 1, start: datetime | None = None, speed: float = 1.0, pacing_scale: float = 1.0,
                 account: str = DEFAULT_ACCOUNT, faults: Faults | str | None = None, replay: Any = None) -> SimServer:
    """Assemble a SimServer. Raises InputError for a bad fault spec or start time, ValueError for speed <= 0."""
    plan = faults if isinstance(faults, Faults) else parse_faults(faults)
    return SimServer(clock=SimClock(start, speed), market=Market(seed=seed, replay=replay),
                     pacing=PacingEnforcer(scale=pacing_scale), account=account, faults=plan)


class SimGateway:
    """A running sim on its own thread and event loop. Use as a context manager or call ``stop()``."""

    def __init__(self, server: SimServer, host: str, port: int) -> None:
        self.server, self.host = server, host
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, args=(port,), name="ibkrtool-sim", daemon=True)

    def _main(self, port: int) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.port = self._loop.run_until_complete(self.server.start(self.host, port))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.stop())
        self._loop.close()

    def start(self) -> SimGateway:
        self._thread.start()
        if not self._ready.wait(10):
            raise GatewayError(f"sim did not start listening on {self.host} within 10 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Stop the server and join its thread (idempotent)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the sim's loop and return its result (for tests that inspect sim state)."""
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    @property
    def violations(self) -> int:
        return self.server.violations

    @property
    def stats(self) -> Counter:
        """Requests counted by IB request name (a snapshot taken on the sim's loop while it runs)."""
        if self._thread.is_alive() and self._loop.is_running():
            return self.call(lambda: Counter(self.server.stats))
        return Counter(self.server.stats)

    @property
    def clock(self) -> SimClock:
        return self.server.clock

    def __enter__(self) -> SimGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sim(host: str = "127.0.0.1", port: int = 0, seed: int = 1, start: datetime | None = None,
              speed: float = 1.0, pacing_scale: float = 1.0, account: str = DEFAULT_ACCOUNT,
              faults: Faults | str | None = None, replay: Any = None) -> SimGateway:
    """Start a sim gateway in a background thread; returns it listening (``.port``). Raises GatewayError/InputError."""
    server = build_server(seed, start, speed, pacing_scale, account, faults, replay)
    return SimGateway(server, host, port).start()


async def serve(server: SimServer, host: str, port: int, stop: asyncio.Event,
                on_ready: Any = None) -> dict[str, Any]:
    """Run ``server`` on the current loop until ``stop`` is set; returns ``server.summary()``.

    ``on_ready(port)`` is called once listening. Raises GatewayError if the port cannot be bound.
    """
    bound = await server.start(host, port)
    if on_ready is not None:
        on_ready(bound)
    try:
        await stop.wait()
    finally:
        await server.stop()
    summary = server.summary()
    log.debug("sim stopped: %d requests, %d pacing violations", summary["requests_total"], summary["pacing_violations"])
    return summary
