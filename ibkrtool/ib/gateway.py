"""The Gateway: the only way data/ and execution/ talk to TWS / IB Gateway.

Its signatures carry our types only (``model`` types, DataFrames, the dataclasses of ``ib/``): no ib_async class,
no camelCase, no IB error-code number. Connectivity arrives as typed events (``ib/events.py``); ``reconnect`` is the
one reconnect loop (``ib/reconnect.py``). Historical requests go through the gateway's pacer, which a caller with a
store swaps for the persisted ledger (``use_ledger``) so IB's budget is shared per gateway across processes.

Open one with ``async with open_gateway(settings, readonly=True) as gateway:`` inside one ``asyncio.run`` (ib_async
requests made from another loop wait for their timeout).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pandas as pd
from sqlalchemy.engine import Engine

from ibkrtool.errors import GatewayError
from ibkrtool.ib import contracts, orders
from ibkrtool.ib.account import AccountSummary, AccountValue, account_summaries
from ibkrtool.ib.chunks import is_paced
from ibkrtool.ib.compat import IB
from ibkrtool.ib.compat import Contract as IbContract
from ibkrtool.ib.events import ConnectivityEvent, Disconnected, event_for
from ibkrtool.ib.history import (
    BarsAnswer,
    BarsRequest,
    NoData,
    duration_text,
    empty_bars,
    end_text,
    fetch_bar_list,
    max_span_s,
)
from ibkrtool.ib.live_bars import ClosedBars, closed_bars
from ibkrtool.ib.orders import OrderOutcome, Position, WorkingOrder
from ibkrtool.ib.pacer import Clock, Pacer, Sleep
from ibkrtool.ib.pacing import HistRequest, PacingPlanner
from ibkrtool.ib.reconnect import OnRetry, ReconnectPolicy, Stop, reconnect_loop
from ibkrtool.ib.session import ConnectOptions, connect
from ibkrtool.ib.streams import BarHandler, Subscription, TickHandler, subscribe, unsubscribe
from ibkrtool.model import BarSize, Instrument
from ibkrtool.model.contract import Contract
from ibkrtool.model.order import Fill, OrderIntent
from ibkrtool.settings import Settings

log = logging.getLogger(__name__)
UTC = timezone.utc


class Gateway:
    """One connection to TWS / IB Gateway at a time, re-made by ``reconnect``. Times are tz-aware UTC."""

    def __init__(self, options: ConnectOptions, clock: Clock = time.time,
                 policy: ReconnectPolicy | None = None) -> None:
        self.options = options
        self.clock = clock  # epoch seconds (UTC): pacing bookings are persisted with it
        self.policy = policy or ReconnectPolicy(options.backoff_s)
        self.pacer = Pacer(PacingPlanner(), clock=clock)
        self._ib: IB | None = None
        self._events: asyncio.Queue[ConnectivityEvent] = asyncio.Queue()
        self._ib_contracts: dict[int, IbContract] = {}

    # ---- connection ----------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """``host:port``: what the pacing ledger is keyed by."""
        return f"{self.options.host}:{self.options.port}"

    @property
    def connected(self) -> bool:
        return self._ib is not None and self._ib.isConnected()

    async def connect(self) -> None:
        """Connect (``options.attempts`` tries with backoff). Raises ``GatewayError`` (unreachable, client id in
        use)."""
        self._attach(await connect(self.options))

    async def reconnect(self, stop: Stop = lambda: False, on_retry: OnRetry | None = None,
                        policy: ReconnectPolicy | None = None) -> bool:
        """Drop the current connection and connect again: the one reconnect loop, with ``policy`` (default: the
        gateway's), one try per attempt, pausing first. True once connected, False if ``stop()`` became true first.
        Raises ``GatewayError`` after the policy's last attempt."""
        self.close()
        once = ConnectOptions(**{**self.options.__dict__, "attempts": 1})

        async def attempt() -> None:
            self._attach(await connect(once))

        return await reconnect_loop(attempt, policy or self.policy, stop, on_retry)

    def close(self) -> None:
        """Disconnect (safe to call twice). Events of the closed connection are dropped."""
        ib, self._ib = self._ib, None
        self._events = asyncio.Queue()
        if ib is not None:
            ib.disconnect()

    def _attach(self, ib: IB) -> None:
        # a fresh queue per connection: ib_async may report one disconnect twice (ib_async#207)
        events: asyncio.Queue[ConnectivityEvent] = asyncio.Queue()
        gone: list[bool] = []

        def on_error(req_id: int, code: int, message: str, contract: object = None) -> None:
            event = event_for(code, message)
            if event is not None:
                events.put_nowait(event)

        def on_disconnect() -> None:
            if not gone:
                gone.append(True)
                events.put_nowait(Disconnected())

        ib.errorEvent += on_error
        ib.disconnectedEvent += on_disconnect
        self._ib, self._events = ib, events

    async def next_event(self, timeout_s: float | None = None) -> ConnectivityEvent | None:
        """The next connectivity event, waiting at most ``timeout_s`` seconds (None: none came)."""
        events = self._events
        if not events.empty() or timeout_s == 0:
            return events.get_nowait() if not events.empty() else None
        try:
            return await asyncio.wait_for(events.get(), timeout_s)
        except asyncio.TimeoutError:
            return None

    def _client(self) -> IB:
        if self._ib is None:
            raise GatewayError(f"not connected to TWS/IB Gateway at {self.name}")
        return self._ib

    # ---- clocks --------------------------------------------------------------------------------------------------
    async def now(self) -> datetime:
        """The gateway's clock (reqCurrentTime), tz-aware UTC."""
        return (await self._client().reqCurrentTimeAsync()).astimezone(UTC)

    def wall_now(self) -> datetime:
        """Our own clock (the injected ``clock``), tz-aware UTC."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # ---- contracts -----------------------------------------------------------------------------------------------
    async def qualify(self, instrument: Instrument, engine: Engine | None = None) -> Contract:
        """``instrument`` as IB resolves it, cached in ``engine``'s contracts table when given. Raises
        ``IbRefused`` for an unknown or ambiguous symbol."""
        return await contracts.qualify(self._client(), instrument, engine)

    def _ib_contract(self, contract: Contract) -> IbContract:
        found = self._ib_contracts.get(contract.conid)
        if found is None:
            found = self._ib_contracts[contract.conid] = contracts.to_ib(contract)
        return found

    # ---- history -------------------------------------------------------------------------------------------------
    def use_ledger(self, engine: Engine, scale: float = 1.0, sleep: Sleep | None = None) -> Pacer:
        """Pace historical requests with the ledger stored in ``engine`` for this gateway (``scale`` as the sim's
        ``--pacing-scale``); returns the pacer now in use."""
        from ibkrtool.ib.ledger import pacer_for

        self.pacer = pacer_for(engine, self.name, scale, self.clock, sleep or asyncio.sleep)
        return self.pacer

    async def request_bars(self, contract: Contract, bar_size: BarSize, what_to_show: str, start: datetime,
                           end: datetime, rth: bool, timeout_s: float = 60.0) -> BarsAnswer:
        """ONE historical request for ``[start, end)`` (at most ``max_span_s(bar_size)`` long), released by the
        pacer. "No data" is an empty answer. Raises ``PacingError`` (IB refused it for pacing),
        ``asyncio.TimeoutError`` (no answer in ``timeout_s``), ``IbRefused``."""
        request = BarsRequest(end_text(end), duration_text((end - start).total_seconds()), bar_size.ib,
                              what_to_show, rth)
        booking = HistRequest(str(contract.conid), what_to_show, request.bar_size, request.end, request.duration,
                              paced=is_paced(bar_size))
        pacer = self.pacer
        at = await pacer.acquire(booking)
        try:
            bars = await fetch_bar_list(self._client(), self._ib_contract(contract), request, timeout_s,
                                        on_sent=lambda: pacer.sent(booking, at),
                                        on_answered=lambda: pacer.answered(booking, at))
        except NoData:
            bars = []
        finally:
            pacer.answered(booking, at)  # no-op once answered; covers a send that failed
        return BarsAnswer(bars, bar_size)

    async def history(self, contract: Contract, bar_size: BarSize, what_to_show: str, start: datetime,
                      end: datetime, rth: bool, timeout_s: float = 60.0) -> pd.DataFrame:
        """Bars starting in ``[start, end)``, in as many paced requests as IB's spans need (newest first).
        Same errors as ``request_bars``."""
        frames, hi = [], end
        while hi > start:
            lo = max(start, hi - timedelta(seconds=max_span_s(bar_size)))
            frame = (await self.request_bars(contract, bar_size, what_to_show, lo, hi, rth, timeout_s)).frame()
            frames.append(frame[(frame.index >= lo) & (frame.index < hi)])
            hi = lo
        return pd.concat(frames).sort_index() if frames else empty_bars()

    def closed_bars(self, contract: Contract, bar_size: BarSize, what_to_show: str, rth: bool, warmup_days: int,
                    stop: Stop, poll_s: float = 1.0) -> AsyncIterator[ClosedBars | ConnectivityEvent]:
        """Closed bars (warm-up first, then each bar as it closes) and connectivity events; see
        ``ib/live_bars.py``. Use with ``contextlib.aclosing`` so the subscription is cancelled on exit."""
        return closed_bars(self._client(), self._ib_contract(contract), bar_size, what_to_show, rth, warmup_days,
                           self.next_event, self.now, stop, poll_s)

    # ---- real-time streams ---------------------------------------------------------------------------------------
    def stream(self, contract: Contract, what_to_show: str, rth: bool, on_bar: BarHandler,
               on_tick: TickHandler) -> Subscription:
        """5-second real-time bars and the matching tick-by-tick stream (trades, or midpoints for MIDPOINT)."""
        return subscribe(self._client(), self._ib_contract(contract), what_to_show, rth, on_bar, on_tick)

    def cancel_stream(self, subscription: Subscription) -> None:
        """Cancel both streams of ``subscription``; safe on a dead connection."""
        if self._ib is not None:
            unsubscribe(self._ib, subscription)

    # ---- orders and positions ------------------------------------------------------------------------------------
    async def positions(self, account: str = "") -> list[Position]:
        return await orders.positions(self._client(), account)

    async def position(self, conid: int, account: str = "") -> float:
        """The signed position in ``conid`` (shares / base units), freshly requested."""
        return orders.position_in(await self.positions(account), conid, account)

    async def working_orders(self, conid: int | None = None) -> list[WorkingOrder]:
        """Working orders of every client (optionally of one contract), freshly requested."""
        return await orders.working_orders(self._client(), conid)

    async def executions(self, mode: str, conid: int | None = None) -> list[Fill]:
        """Today's executions with commissions (IB keeps about a day); ``mode`` (paper|live) tags the fills."""
        return await orders.executions(self._client(), mode, conid)

    async def place_and_wait(self, contract: Contract, intent: OrderIntent, mode: str, account: str = "",
                             timeout_s: float = 30.0) -> OrderOutcome:
        """A market order for ``intent`` (``orderRef`` = its ref), waited for at most ``timeout_s``; never raises
        for a rejection (the outcome carries IB's reason)."""
        return await orders.place_and_wait(self._client(), self._ib_contract(contract), intent, mode, account,
                                           timeout_s)

    def cancel(self, order_id: int) -> bool:
        """Cancel one of this session's working orders; False if this session does not know it."""
        return orders.cancel(self._client(), order_id)

    async def reference_price(self, contract: Contract, what_to_show: str) -> float | None:
        """The last 1-minute close (the price risk checks use for a market order), or None."""
        return await orders.reference_price(self._client(), self._ib_contract(contract), what_to_show)

    # ---- accounts ------------------------------------------------------------------------------------------------
    def managed_accounts(self) -> list[str]:
        return orders.managed_accounts(self._client())

    async def account_type(self, account: str) -> str:
        """IB's account type (e.g. INDIVIDUAL), '' if unknown."""
        return await orders.account_type(self._client(), account)

    async def account_values(self, account: str = "") -> list[AccountValue]:
        """Every summary value IB sends for the managed accounts (or ``account``)."""
        values = await self._client().accountSummaryAsync(account)
        return [AccountValue(v.account, v.tag, v.value, v.currency or "") for v in values]

    async def account_summaries(self, account: str = "") -> list[AccountSummary]:
        return await account_summaries(self, account)


def connect_options(target: Settings | ConnectOptions, readonly: bool) -> ConnectOptions:
    """Settings (or ready options) → the options to connect with, ``readonly`` applied."""
    if isinstance(target, Settings):
        return ConnectOptions.from_settings(target, readonly=readonly)
    return ConnectOptions(**{**target.__dict__, "readonly": readonly})


@asynccontextmanager
async def open_gateway(target: Settings | ConnectOptions, readonly: bool = True, clock: Clock = time.time,
                       policy: ReconnectPolicy | None = None) -> AsyncIterator[Gateway]:
    """``async with open_gateway(settings, readonly=True) as gateway``: connected on entry, closed on exit (also on
    errors). Raises ``GatewayError`` when the gateway is unreachable or the client id is in use."""
    gateway = Gateway(connect_options(target, readonly), clock, policy)
    await gateway.connect()
    try:
        yield gateway
    finally:
        gateway.close()
