"""Session handlers for market data: historical bars and head timestamps (computed on the HMDS worker thread),
real-time bars, market data and tick-by-tick streams. Mixed into ``session.Session``."""

from __future__ import annotations

import asyncio
import logging
from datetime import timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from ibkrtool.sim import codec, streams
from ibkrtool.sim.bars import trade_fields
from ibkrtool.sim.contracts import SimContract
from ibkrtool.sim.history import (
    HistoryWindow,
    SimRequestError,
    bar_time_formatter,
    format_range_time,
    no_data_error,
    plan_history,
)
from ibkrtool.sim.market import Market
from ibkrtool.sim.pacing import HistoricalRequestKey

if TYPE_CHECKING:
    from ibkrtool.sim.server import SimServer

log = logging.getLogger(__name__)

HMDS = "Historical Market Data Service error message:"
MARKET_DATA_LINES = 100  # IB's default allowance per login (paper and live without boosters)


class MarketDataHandlers:
    """``_on_<request>`` handlers for history and streams; they use the ``Session`` they are mixed into
    (``server``, ``send``, ``send_error``, ``resolve``, and the stream/pending registries below)."""

    if TYPE_CHECKING:
        server: SimServer
        client_id: int | None
        streams: dict[int, streams.Stream]
        _pending: set[int | None]
        _tasks: set[asyncio.Task]

        def send(self, fields: list) -> None: ...
        def send_error(self, req_id: int, code: int, text: str) -> None: ...
        def resolve(self, c: dict[str, Any]) -> SimContract: ...

    # --- historical data ----------------------------------------------------------------------------------------
    def _no_data_check(self, contract: SimContract, what: str) -> None:
        """The ``no-data`` fault: IB's own 162 text (``history.no_data_error``) for the named symbols."""
        if contract.symbol in self.server.faults.no_data or contract.local_symbol in self.server.faults.no_data:
            raise no_data_error(contract, what)

    def _on_reqHistoricalData(self, req: codec.Request) -> None:
        a = req.args
        contract = self.resolve(a["contract"])
        now = self.server.clock.now()
        window = plan_history(contract, a["end_datetime"], a["duration"], a["bar_size"], a["what_to_show"],
                              a["use_rth"], a["format_date"], a["keep_up_to_date"], now)
        key = HistoricalRequestKey(contract.conid, contract.exchange, a["what_to_show"].upper(), a["bar_size"],
                                   a["duration"], a["end_datetime"], a["use_rth"])
        self.server.pacing.admit(key, "history")
        self._no_data_check(contract, a["what_to_show"])
        self._pending.add(req.req_id)
        self._spawn(req, self._history_reply(req, contract, window))

    async def _history_reply(self, req: codec.Request, contract: SimContract, window: HistoryWindow) -> None:
        """Compute bars on the HMDS worker thread (long requests must not stall other clients), then reply.

        A valid window without bars is answered as IB does: 162 "HMDS query returned no data: …", no message 17.
        """
        a = req.args
        if a["format_date"] == 2 and not a["keep_up_to_date"]:
            table = await self.server.in_hmds(_history_table, self.server.hmds_market, contract, window)
            if table is not None:
                if req.req_id not in self._pending:  # cancelled while the query ran
                    return
                self._pending.discard(req.req_id)
                count, rows = table
                if not count:
                    raise no_data_error(contract, window.what_to_show)
                self.send(codec.historical_data_joined(req.req_id, format_range_time(window.reported_start, contract),
                                                       format_range_time(window.end, contract), count, rows))
                return
        bars = await self.server.in_hmds(self.server.hmds_market.bars, contract, window.bar_size, window.start,
                                         window.end, window.what_to_show, window.use_rth)
        if req.req_id not in self._pending:  # cancelled while the query ran
            return
        self._pending.discard(req.req_id)
        if not bars:
            raise no_data_error(contract, window.what_to_show)
        date_of = bar_time_formatter(window.bar_size, a["format_date"], contract)
        rows = [(date_of(b), b.open, b.high, b.low, b.close, b.volume, b.wap, b.count) for b in bars]
        self.send(codec.historical_data(req.req_id, format_range_time(window.reported_start, contract),
                                        format_range_time(window.end, contract), rows))
        if a["keep_up_to_date"]:
            self._start_stream(streams.KeepUpToDate(self, req.req_id, contract, window, a["format_date"], bars[-1]))

    def _spawn(self, req: codec.Request, coro: Any) -> None:
        """Run a slow reply as a task; its errors become IB error replies like those of synchronous handlers."""
        async def guarded() -> None:
            req_id = -1 if req.req_id is None else req.req_id
            try:
                await coro
            except SimRequestError as exc:
                log.warning("client %s %s id=%s refused: %d %s", self.client_id, req.name, req_id, exc.code,
                            exc.text)
                self.send_error(req_id, exc.code, exc.text)
            except Exception as exc:
                log.exception("client %s %s id=%s failed", self.client_id, req.name, req_id)
                self.send_error(req_id, 322, f"Error processing request:-'{req.name}' : cause - "
                                             f"{type(exc).__name__}")
            finally:
                self._pending.discard(req.req_id)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_cancelHistoricalData(self, req: codec.Request) -> None:
        if req.req_id in self._pending:
            self._pending.discard(req.req_id)
            self.send_error(req.req_id, 162, f"{HMDS}API historical data query cancelled: {req.req_id}")
        stream = self.streams.pop(req.req_id, None)
        if stream is not None:
            stream.cancel()

    def _on_reqHeadTimeStamp(self, req: codec.Request) -> None:
        a = req.args
        contract = self.resolve(a["contract"])
        key = HistoricalRequestKey(contract.conid, contract.exchange, a["what_to_show"].upper(), "", "",
                                   "head-timestamp", a["use_rth"])
        self.server.pacing.admit(key, "head_timestamp")
        self._no_data_check(contract, a["what_to_show"])
        self._spawn(req, self._head_timestamp_reply(req, contract))

    async def _head_timestamp_reply(self, req: codec.Request, contract: SimContract) -> None:
        a = req.args
        stamp = await self.server.in_hmds(self.server.hmds_market.head_timestamp, contract,
                                          a["what_to_show"].upper(), bool(a["use_rth"]))
        text = str(int(stamp.timestamp())) if a["format_date"] == 2 else stamp.astimezone(timezone.utc).strftime(
            "%Y%m%d-%H:%M:%S")
        self.send(codec.head_timestamp(req.req_id, text))

    def _on_cancelHeadTimeStamp(self, req: codec.Request) -> None:
        """Accepted silently, as TWS does: the answer was sent at once, so there is nothing to stop."""

    # --- streams ------------------------------------------------------------------------------------------------
    def _start_stream(self, stream: streams.Stream) -> None:
        old = self.streams.pop(stream.req_id, None)
        if old is not None:
            old.cancel()
        self.streams[stream.req_id] = stream
        stream.start()

    def _on_reqRealTimeBars(self, req: codec.Request) -> None:
        a = req.args
        contract = self.resolve(a["contract"])
        what = a["what_to_show"].upper()
        if a["bar_size"] != 5:
            raise SimRequestError(420, f"Invalid Real-time Query:Invalid bar size {a['bar_size']}: only 5 second "
                                       "real-time bars are available")
        if what not in streams.REALTIME_WHAT or (what == "TRADES" and contract.sec_type == "CASH"):
            raise SimRequestError(420, f"Invalid Real-time Query:No data of type {what} is available for the "
                                       f"exchange '{contract.exchange}' and the security type '{contract.sec_type}'")
        key = HistoricalRequestKey(contract.conid, contract.exchange, what, "5 secs", "", f"realtime:{req.req_id}",
                                   int(a["use_rth"]))
        try:
            self.server.pacing.admit(key, "realtime")
        except SimRequestError:
            raise SimRequestError(420, "Invalid Real-time Query:Historical data request pacing violation") from None
        self._start_stream(streams.RealTimeBars(self, req.req_id, contract, what, a["use_rth"]))

    def _on_cancelRealTimeBars(self, req: codec.Request) -> None:
        self._on_cancelHistoricalData(req)

    def _on_reqMktData(self, req: codec.Request) -> None:
        a = req.args
        contract = self.resolve(a["contract"])
        if not a["snapshot"] and self.server.market_data_lines_used() >= MARKET_DATA_LINES:
            raise SimRequestError(101, "Max number of tickers has been reached")
        self._start_stream(streams.MarketData(self, req.req_id, contract, a["snapshot"] or a["regulatory"]))

    def _on_cancelMktData(self, req: codec.Request) -> None:
        self._on_cancelHistoricalData(req)

    def _on_reqTickByTickData(self, req: codec.Request) -> None:
        a = req.args
        contract = self.resolve(a["contract"])
        if a["tick_type"] not in streams.TICK_TYPES:
            raise SimRequestError(321, f"Error validating request:-'bS' : cause - Invalid tick type "
                                       f"{a['tick_type']!r}: use Last, AllLast, BidAsk or MidPoint")
        self._start_stream(streams.TickByTick(self, req.req_id, contract, a["tick_type"]))

    def _on_cancelTickByTickData(self, req: codec.Request) -> None:
        self._on_cancelHistoricalData(req)

    def kill_live_updates(self) -> None:
        """On a connectivity loss IB ends keepUpToDate streams with 10182 (the client must re-request)."""
        for req_id, stream in list(self.streams.items()):
            if isinstance(stream, streams.KeepUpToDate):
                stream.cancel()
                del self.streams[req_id]
                self.send_error(req_id, 10182, "Failed to request live updates (disconnected).")


def _history_table(market: Market, contract: SimContract, window: HistoryWindow) -> tuple[int, str] | None:
    """``(bars, NUL-joined fields)`` of an intraday formatDate=2 reply, built from arrays on the HMDS thread; None
    when the bars are replayed or daily and longer (those go through ``Market.bars``)."""
    table = market.bar_table(contract, window.bar_size, window.start, window.end, window.what_to_show,
                             window.use_rth)
    if table is None or not len(table):
        return None if table is None else (0, "")
    volume, wap, count = trade_fields(table)
    dates = table.t.astype(np.int64).astype(str).tolist()
    return len(table), codec.bar_rows_text(dates, table.o, table.h, table.low, table.c, volume, wap, count)
