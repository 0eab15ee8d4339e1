"""One connected API client: handshake, the reply queue, and dispatch of each request to its ``_on_<name>``
handler — contracts and time here, market data in ``handlers_market.py``, account and orders in
``handlers_account.py`` (mixins of ``Session``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ibkrtool.sim import codec
from ibkrtool.sim.contracts import SimContract, find_contracts, trading_hours
from ibkrtool.sim.handlers_account import AccountOrderHandlers
from ibkrtool.sim.handlers_market import MarketDataHandlers
from ibkrtool.sim.history import SimRequestError
from ibkrtool.sim.wire import WireError, frame, read_frame, read_hello, split_payload

if TYPE_CHECKING:
    from ibkrtool.sim import streams
    from ibkrtool.sim.server import SimServer

log = logging.getLogger(__name__)

TEXT_326 = "Unable to connect as the client id is already in use. Retry with a unique client id."
TEXT_200 = "No security definition has been found for the request"
FARM_NOTICES = ((2104, "Market data farm connection is OK:usfarm"),
                (2106, "HMDS data farm connection is OK:ushmds"),
                (2158, "Sec-def data farm connection is OK:secdefnj"))


class Session(MarketDataHandlers, AccountOrderHandlers):
    """Serves one socket. Replies are queued and written in order by one writer task (so delay faults keep order)."""

    def __init__(self, server: SimServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader, self.writer = reader, writer
        self.peer = writer.get_extra_info("peername")
        self.server_version = 0
        self.client_id: int | None = None
        self.registered = False
        self.streams: dict[int, streams.Stream] = {}
        self.account_updates = False
        self.positions_sub = False
        self.closed = False
        self._out: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        self._writer_task: asyncio.Task | None = None
        self._pending: set[int | None] = set()  # historical queries still computing
        self._tasks: set[asyncio.Task] = set()

    # --- transport ----------------------------------------------------------------------------------------------
    def send(self, fields: list) -> None:
        """Queue one message for this client (dropped silently once the session is closed)."""
        if not self.closed:
            self._out.put_nowait((time.monotonic(), frame(fields)))

    def send_error(self, req_id: int, code: int, text: str) -> None:
        self.send(codec.error(req_id, code, text))

    async def _write_loop(self) -> None:
        delay = self.server.faults.delay_ms / 1000.0
        while True:
            item = await self._out.get()
            if item is None:
                break
            queued_at, data = item
            if delay:  # latency: each reply leaves ``delay`` after it was produced (not cumulative)
                await asyncio.sleep(max(0.0, queued_at + delay - time.monotonic()))
            self.writer.write(data)
            if self._out.empty():
                await self.writer.drain()

    async def run(self) -> None:
        """Handshake, then read and dispatch requests until the peer closes or the sim drops the connection."""
        self._writer_task = asyncio.create_task(self._write_loop())
        try:
            if not await self._handshake():
                return
            while not self.closed:
                fields = split_payload(await read_frame(self.reader))
                if fields:
                    self._dispatch(codec.decode(fields, self.server_version))
        except (asyncio.IncompleteReadError, ConnectionError, WireError) as exc:
            log.info("client %s (%s) disconnected: %s", self.client_id, self.peer, type(exc).__name__)
        finally:
            await self.close()

    async def _handshake(self) -> bool:
        hello = await read_hello(self.reader)
        version = min(hello.max_version, codec.MAX_SERVER_VERSION)
        if version < max(hello.min_version, codec.MIN_SERVER_VERSION):
            log.warning("client %s offers versions %d..%d; the sim speaks %d..%d: closing", self.peer,
                        hello.min_version, hello.max_version, codec.MIN_SERVER_VERSION, codec.MAX_SERVER_VERSION)
            return False
        self.server_version = version
        now = self.server.clock.now()
        self.send([version, now.strftime("%Y%m%d %H:%M:%S") + " UTC"])
        log.info("handshake from %s: client v%d..%d%s -> server version %d", self.peer, hello.min_version,
                 hello.max_version, f" {hello.options}" if hello.options else "", version)
        return True

    async def close(self) -> None:
        """Stop streams, free the clientId and close the socket (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for stream in list(self.streams.values()):
            stream.cancel()
        for task in list(self._tasks):
            task.cancel()
        self.streams.clear()
        self.server.unregister(self)
        self._out.put_nowait(None)
        if self._writer_task is not None:
            try:
                await asyncio.wait_for(self._writer_task, 2.0)
            except (asyncio.TimeoutError, ConnectionError, asyncio.CancelledError):
                self._writer_task.cancel()
        self.writer.close()

    def drop(self) -> None:
        """Fault injection: close the socket now, without any goodbye."""
        log.warning("fault: dropping client %s", self.client_id)
        self.writer.transport.abort()

    # --- dispatch -----------------------------------------------------------------------------------------------
    def _dispatch(self, req: codec.Request) -> None:
        self.server.count(req)
        if req.name == "startApi":
            self._start_api(req)
            return
        if not self.registered:
            log.warning("client %s sent %s before startApi: ignored", self.peer, req.name)
            return
        log.info("client %s %s%s %s", self.client_id, req.name, "" if req.req_id is None else f" id={req.req_id}",
                 _brief(req.args))
        handler = getattr(self, "_on_" + req.name, None)
        if handler is None:
            self._unsupported(req)
            return
        req_id = req.req_id if req.req_id is not None else -1
        try:
            handler(req)
        except SimRequestError as exc:
            log.warning("client %s %s id=%s refused: %d %s", self.client_id, req.name, req_id, exc.code, exc.text)
            self.send_error(req_id, exc.code, exc.text)
        except Exception as exc:  # a sim bug must cost one request, not the connection
            log.exception("client %s %s id=%s failed", self.client_id, req.name, req_id)
            self.send_error(req_id, 322, f"Error processing request:-'{req.name}' : cause - {type(exc).__name__}")
        if self.server.should_drop_after(self):
            self.drop()

    def _unsupported(self, req: codec.Request) -> None:
        name = req.name.split(":", 1)[-1]
        log.warning("client %s: %s (message %d) is not supported by the sim", self.client_id, name, req.msg_id)
        if req.name.startswith("malformed:"):
            self.send_error(-1 if req.req_id is None else req.req_id, 320,
                            f"Error reading request:-'{name}' : cause - wrong number of fields")
            return
        self.send_error(-1 if req.req_id is None else req.req_id, 322,
                        f"Error processing request:-'{name}' : cause - not supported by ibkrtool sim")

    def _start_api(self, req: codec.Request) -> None:
        client_id = req.args["client_id"]
        if not self.server.register(client_id, self):
            log.warning("clientId %d already in use: error 326, closing %s", client_id, self.peer)
            self.send_error(-1, 326, TEXT_326)
            asyncio.get_running_loop().create_task(self.close())
            return
        self.client_id, self.registered = client_id, True
        self.server.broker.listeners.append(self._on_broker_event)
        self.send(codec.managed_accounts([self.server.account]))
        self.send(codec.next_valid_id(self.server.next_order_id(client_id)))
        for code, text in FARM_NOTICES:
            self.send_error(-1, code, text)

    # --- contracts and time -------------------------------------------------------------------------------------
    def resolve(self, c: dict[str, Any]) -> SimContract:
        """The one contract a request names. Raises SimRequestError(200) if none or ambiguous."""
        found = find_contracts(c.get("symbol", ""), c.get("sec_type", ""), c.get("currency", ""),
                               c.get("exchange", ""), c.get("primary_exchange", ""), c.get("conid", 0),
                               c.get("local_symbol", ""))
        if len(found) == 1:
            return found[0]
        if not found:
            raise SimRequestError(200, TEXT_200)
        raise SimRequestError(200, f"The contract description specified for {c.get('symbol')} is ambiguous.")

    def _on_reqCurrentTime(self, req: codec.Request) -> None:
        self.send(codec.current_time(int(self.server.clock.now().timestamp())))

    def _on_reqContractDetails(self, req: codec.Request) -> None:
        c = req.args["contract"]
        found = find_contracts(c["symbol"], c["sec_type"], c["currency"], c["exchange"], c["primary_exchange"],
                               c["conid"], c["local_symbol"])
        if not found:
            raise SimRequestError(200, TEXT_200)
        now = self.server.clock.now()
        for contract in found:
            hours, liquid = trading_hours(contract, now)
            self.send(codec.contract_details(req.req_id, contract, hours, liquid))
        self.send(codec.contract_details_end(req.req_id))


def _brief(args: dict[str, Any]) -> str:
    parts = []
    for k, v in args.items():
        if isinstance(v, dict):
            v = v.get("local_symbol") or v.get("symbol") or v.get("conid")
        if v not in ("", None, False):
            parts.append(f"{k}={v}")
    return " ".join(parts)
