"""Real-time capture: 5-second bars from IB's real-time bars and 1-second bars built here from tick-by-tick data,
for several instruments on one read-only connection, written in small batches (one transaction each).

Bars are labelled by their start, UTC. The first second seen after each (re)subscription is partial and is not
built from ticks; after a disconnect or IB 1100 the streams are resubscribed and the missing window (from the
last bar stored to the first complete live bar) is fetched from historical data, so the stored series has no hole.
A clean stop (duration, deadline, SIGINT/SIGTERM) flushes every complete bar; the second in progress is dropped.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from ibkrtool.data.backfill import pacer_for
from ibkrtool.errors import GatewayError, IbRefused, InputError
from ibkrtool.ib import errors as codes
from ibkrtool.ib.compat import IB
from ibkrtool.ib.contracts import qualify, to_ib
from ibkrtool.ib.history import BarsRequest, NoData, duration_text, end_text, fetch_bars, max_span_s
from ibkrtool.ib.pacer import Pacer
from ibkrtool.ib.pacing import HistRequest
from ibkrtool.ib.session import ConnectOptions, connect
from ibkrtool.ib.streams import LiveBar, Subscription, Tick, subscribe, unsubscribe
from ibkrtool.model import BAR_COLUMNS, BarSize, Instrument
from ibkrtool.model.contract import Contract
from ibkrtool.store.bars import write_bars

log = logging.getLogger(__name__)
UTC = timezone.utc
ONE_S, FIVE_S = timedelta(seconds=1), timedelta(seconds=5)
Row = tuple[datetime, float, float, float, float, float, float, float]


# ---------------------------------------------------------------- pure: ticks → 1-second bars


class SecondBars:
    """Builds 1-second bars from ticks in time order. A bar is complete when a tick of a later second arrives.

    After ``restart()`` the first second seen is partial (ticks before the subscription are missing): it is dropped,
    and ``first_full`` names the second after it, from which bars are complete.
    """

    def __init__(self, trades: bool) -> None:
        self.trades = trades
        self.current: datetime | None = None
        self.ticks: list[Tick] = []
        self.first_full: datetime | None = None
        self._skip: datetime | None = None
        self.restart()

    def restart(self) -> None:
        self.current, self.ticks, self.first_full, self._skip = None, [], None, None
        self._fresh = True

    def add(self, tick: Tick) -> list[Row]:
        """Feed one tick; returns the bars it completed (oldest first)."""
        second = tick.time.replace(microsecond=0)
        if self._fresh:
            self._fresh, self._skip, self.first_full = False, second, second + ONE_S
        if second == self._skip or (self.current is not None and second < self.current):
            return []
        done = []
        if self.current is not None and second > self.current:
            done.append(self._bar())
            self.ticks = []
        self.current = second
        self.ticks.append(tick)
        return done

    def _bar(self) -> Row:
        prices = [t.price for t in self.ticks]
        if not self.trades:
            return (self.current, prices[0], max(prices), min(prices), prices[-1], math.nan, math.nan, math.nan)
        volume = sum(t.size for t in self.ticks)
        wap = sum(t.price * t.size for t in self.ticks) / volume if volume else math.nan
        return (self.current, prices[0], max(prices), min(prices), prices[-1], volume, wap, float(len(self.ticks)))


def rows_frame(rows: list[Row]) -> pd.DataFrame:
    """Rows → the bars DataFrame convention (index ``ts`` UTC, float64 columns, last duplicate wins)."""
    df = pd.DataFrame(rows, columns=["ts", *BAR_COLUMNS]).set_index("ts")
    df.index = pd.DatetimeIndex(df.index, name="ts").tz_convert(UTC) if len(df) else pd.DatetimeIndex([], tz=UTC,
                                                                                                       name="ts")
    df = df.astype("float64")
    return df[~df.index.duplicated(keep="last")].sort_index()


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``2h`` → seconds. Raises ``InputError``."""
    units = {"s": 1, "m": 60, "h": 3600}
    body, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(body) * units[unit]
    except ValueError:
        raise InputError(f"--duration {text!r} is not understood; use e.g. 90s, 5m or 2h") from None
    if value <= 0:
        raise InputError("--duration must be positive")
    return value


# ---------------------------------------------------------------- per-instrument state


@dataclass
class Stream:
    """One instrument's live state: pending rows, last bar ends, and the repair owed after an outage."""

    instrument: Instrument
    contract: Contract
    what_to_show: str
    tick_type: str
    seconds: SecondBars
    pending5: list[Row] = field(default_factory=list)
    pending1: list[Row] = field(default_factory=list)
    last5_end: datetime | None = None
    last1_end: datetime | None = None
    gap5_start: datetime | None = None
    gap1_start: datetime | None = None
    repair5_end: datetime | None = None
    repair1_end: datetime | None = None
    sub: Subscription | None = None

    def on_bar(self, bar: LiveBar) -> None:
        if self.gap5_start is not None and self.repair5_end is None:
            self.repair5_end = bar.start
        self.pending5.append((bar.start, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.wap, bar.count))
        self.last5_end = bar.start + FIVE_S

    def on_tick(self, tick: Tick) -> None:
        for row in self.seconds.add(tick):
            if self.gap1_start is not None and self.repair1_end is None:
                self.repair1_end = self.seconds.first_full
            self.pending1.append(row)
            self.last1_end = row[0] + ONE_S

    def mark_outage(self) -> None:
        """Remember where the stored series stops; the live streams restart from a partial second."""
        if self.gap5_start is None and self.last5_end is not None:
            self.gap5_start, self.repair5_end = self.last5_end, None
        if self.gap1_start is None and self.last1_end is not None:
            self.gap1_start, self.repair1_end = self.last1_end, None
        self.seconds.restart()


@dataclass(frozen=True)
class CollectOptions:
    symbols: tuple[str, ...]
    duration_s: float | None = None
    until: datetime | None = None
    rth: bool = False
    csv_path: str | None = None
    flush_s: float = 0.5
    pacing_scale: float = 1.0
    reconnect_backoff_s: float = 0.5


@dataclass
class CollectReport:
    bars_5s: int = 0
    bars_1s: int = 0
    outages: list[dict] = field(default_factory=list)
    repairs: list[dict] = field(default_factory=list)
    elapsed_s: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# ---------------------------------------------------------------- running


class Collector:
    """Runs the capture loop: connect, subscribe, batch-write, and on an outage reconnect, resubscribe, repair."""

    def __init__(self, engine: Engine, connect_opts: ConnectOptions, options: CollectOptions, stop: asyncio.Event,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.connect_opts, self.options, self.stop = engine, connect_opts, options, stop
        self.clock = clock
        self.report = CollectReport()
        self.streams: list[Stream] = []
        self.pacer: Pacer = pacer_for(engine, f"{connect_opts.host}:{connect_opts.port}", options.pacing_scale)
        self._events: asyncio.Queue[str] = asyncio.Queue()
        self._csv_new = options.csv_path is not None and not Path(options.csv_path).exists()

    async def run(self) -> CollectReport:
        """Capture until the duration/deadline passes or ``stop`` is set. Raises ``GatewayError`` if the first
        connection fails, ``IbRefused`` for an unknown symbol, ``StoreError``."""
        started = self.clock()
        first = True
        while not self._finished(started):
            try:
                ib = await connect(self.connect_opts)
            except GatewayError:
                if first:
                    raise
                await self._pause(self.options.reconnect_backoff_s, started)
                continue
            try:
                await self._session(ib, first, started)
            finally:
                first = False
                ib.disconnect()
            # a lost connection: give the gateway a moment (and the old client id time to be freed)
            await self._pause(self.options.reconnect_backoff_s, started)
        self.report.elapsed_s = self.clock() - started
        return self.report

    def _finished(self, started: float) -> bool:
        o = self.options
        if self.stop.is_set():
            return True
        if o.duration_s is not None and self.clock() - started >= o.duration_s:
            return True
        return o.until is not None and datetime.now(UTC) >= o.until

    async def _pause(self, seconds: float, started: float) -> None:
        end = self.clock() + seconds
        while self.clock() < end and not self._finished(started):
            await asyncio.sleep(min(0.05, seconds))

    async def _session(self, ib: IB, first: bool, started: float) -> None:
        # a fresh queue per connection: ib_async may report one disconnect twice (ib_async#207)
        events: asyncio.Queue[str] = asyncio.Queue()
        self._events = events
        ib.disconnectedEvent += lambda: events.put_nowait("lost")
        ib.errorEvent += lambda req_id, code, message, contract=None: self._on_error(events, code)
        if first:
            for spec in dict.fromkeys(self.options.symbols):
                inst = Instrument.parse(spec)
                contract = await qualify(ib, inst, self.engine)
                what, tick = ("MIDPOINT", "MidPoint") if inst.is_forex else ("TRADES", "AllLast")
                self.streams.append(Stream(inst, contract, what, tick, SecondBars(trades=not inst.is_forex)))
        self._subscribe(ib)
        while not self._finished(started):
            event = await self._next_event(started)
            if event == "lost":
                self._outage("connection lost")
                break
            if event == "paused":
                self._outage("IB connectivity lost (1100)")
                self._unsubscribe(ib)
            elif event == "restored":
                self._unsubscribe(ib)
                self._subscribe(ib)
            await self._flush_and_repair(ib)
        if ib.isConnected():
            self._unsubscribe(ib)
            await self._flush_and_repair(ib)
        else:
            self._flush()

    async def _next_event(self, started: float) -> str:
        try:
            return await asyncio.wait_for(self._events.get(), self.options.flush_s)
        except asyncio.TimeoutError:
            return "tick"

    @staticmethod
    def _on_error(events: asyncio.Queue, code: int) -> None:
        if code in (1100, 2110):
            events.put_nowait("paused")
        elif code in codes.CONNECTIVITY_RESTORED:
            events.put_nowait("restored")

    def _outage(self, why: str) -> None:
        at = datetime.now(UTC)
        log.warning("%s at %s; resubscribing and repairing the gap from history", why, at.isoformat())
        self.report.outages.append({"at": at.isoformat(), "why": why})
        for s in self.streams:
            s.mark_outage()

    def _subscribe(self, ib: IB) -> None:
        for s in self.streams:
            s.seconds.restart()
            s.sub = subscribe(ib, to_ib(s.contract), s.what_to_show, s.tick_type, self.options.rth, s.on_bar,
                              s.on_tick)

    def _unsubscribe(self, ib: IB) -> None:
        for s in self.streams:
            if s.sub is not None:
                unsubscribe(ib, s.sub, s.tick_type)
                s.sub = None

    async def _flush_and_repair(self, ib: IB) -> None:
        self._flush()
        for s in self.streams:
            if not ib.isConnected():
                return
            try:
                await self._repair(ib, s)
            except (ConnectionError, OSError, asyncio.TimeoutError, IbRefused) as exc:
                # the gap stays recorded and is tried again at the next flush (or after the next reconnect)
                log.warning("gap repair for %s failed (%s); will retry", s.instrument.display, exc)

    def _flush(self) -> None:
        """Write every pending bar of every stream in ONE transaction (and append them to the CSV)."""
        batches = [(s, size, rows) for s in self.streams for size, rows in (("5s", s.pending5), ("1s", s.pending1))
                   if rows]
        if not batches:
            return
        with self.engine.begin() as conn:
            for s, size, rows in batches:
                write_bars(conn, s.contract.conid, size, s.what_to_show, rows_frame(rows))
        self._append_csv(batches)
        for _s, size, rows in batches:
            if size == "5s":
                self.report.bars_5s += len(rows)
            else:
                self.report.bars_1s += len(rows)
            rows.clear()

    def _append_csv(self, batches: list) -> None:
        if self.options.csv_path is None:
            return
        with open(self.options.csv_path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if self._csv_new:
                writer.writerow(["symbol", "bar_size", "ts", *BAR_COLUMNS])
                self._csv_new = False
            for s, size, rows in batches:
                for ts, *values in sorted(rows):
                    writer.writerow([s.instrument.display, size, ts.isoformat(), *("" if math.isnan(v) else v
                                                                                   for v in values)])

    async def _repair(self, ib: IB, s: Stream) -> None:
        for size, start_attr, end_attr in (("5s", "gap5_start", "repair5_end"), ("1s", "gap1_start", "repair1_end")):
            lo, hi = getattr(s, start_attr), getattr(s, end_attr)
            if lo is None or hi is None:
                continue
            frame = await self._history(ib, s, BarSize.parse(size), lo, hi) if hi > lo else rows_frame([])
            write_bars(self.engine, s.contract.conid, size, s.what_to_show, frame)
            setattr(s, start_attr, None)
            setattr(s, end_attr, None)
            log.warning("repaired %s %s bars [%s, %s): %d bars from history", s.instrument.display, size,
                        lo.isoformat(), hi.isoformat(), len(frame))
            self.report.repairs.append({"symbol": s.instrument.display, "bar_size": size, "start": lo.isoformat(),
                                        "end": hi.isoformat(), "bars": len(frame)})

    async def _history(self, ib: IB, s: Stream, size: BarSize, lo: datetime, hi: datetime) -> pd.DataFrame:
        frames, end = [], hi
        while end > lo:
            start = max(lo, end - timedelta(seconds=max_span_s(size)))
            request = BarsRequest(end_text(end), duration_text((end - start).total_seconds()), size.ib,
                                  s.what_to_show, self.options.rth)
            booking = HistRequest(str(s.contract.conid), s.what_to_show, size.ib, request.end, request.duration)
            at = await self.pacer.acquire(booking)
            try:
                frame = await fetch_bars(ib, to_ib(s.contract), request, size,
                                         on_sent=lambda at=at, b=booking: self.pacer.sent(b, at))
            except NoData:
                frame = rows_frame([])
            finally:
                self.pacer.answered(booking, at)
            frames.append(frame[(frame.index >= start) & (frame.index < end)])
            end = start
        return pd.concat(frames).sort_index() if frames else rows_frame([])


async def run_collect(engine: Engine, connect_opts: ConnectOptions, options: CollectOptions,
                      stop: asyncio.Event | None = None) -> CollectReport:
    """Collect until the options say stop (or ``stop`` is set). See ``Collector.run`` for errors."""
    if not options.symbols:
        raise InputError("no symbol given: use --symbol SPY (repeatable)")
    if options.duration_s is None and options.until is None and stop is None:
        raise InputError("give --duration or --until (or stop with Ctrl-C)")
    return await Collector(engine, connect_opts, options, stop or asyncio.Event()).run()
