"""Real-time capture: 5-second bars from IB's real-time bars and 1-second bars built here from tick-by-tick data,
for several instruments on one read-only connection, written in small batches (one transaction each).

Bars are labelled by their start, UTC. The first second seen after each (re)subscription is partial and is not
built from ticks; after a disconnect or a loss of IB's connectivity the streams are resubscribed and the missing
window (from the last bar stored to the first complete live bar) is fetched from historical data, so the stored
series has no hole.
A clean stop (duration, deadline, SIGINT/SIGTERM) flushes every complete bar; the second in progress is dropped.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TextIO

import pandas as pd
from sqlalchemy.engine import Engine

from ibkrtool.errors import IbRefused, InputError
from ibkrtool.ib.events import ConnectivityLost, Disconnected, Restored
from ibkrtool.ib.gateway import Gateway
from ibkrtool.ib.reconnect import ReconnectPolicy
from ibkrtool.ib.streams import LiveBar, Subscription, Tick
from ibkrtool.model import BAR_COLUMNS, BarSize, Instrument
from ibkrtool.model.contract import Contract
from ibkrtool.store.bars import write_bars

log = logging.getLogger(__name__)
UTC = timezone.utc
ONE_S, FIVE_S = timedelta(seconds=1), timedelta(seconds=5)
Row = tuple[datetime, float, float, float, float, float, float, float]
Batch = tuple["Stream", str, list[Row]]


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
    flush_s: float = 0.5
    pacing_scale: float = 1.0
    reconnect_backoff_s: float = 0.5
    max_backoff_s: float = 30.0


@dataclass
class CollectReport:
    """Bars written (live and repaired; ``symbols``: per instrument), outages, repairs, and why the run ended:
    ``duration``, ``until``, ``stop`` (the stop event was set: Ctrl-C, SIGTERM or the caller) or ``output closed``
    (the reader of the CSV pipe went away)."""

    bars_5s: int = 0
    bars_1s: int = 0
    outages: list[dict[str, str]] = field(default_factory=list)
    repairs: list[dict[str, str | int]] = field(default_factory=list)
    elapsed_s: float = 0.0
    symbols: list[dict[str, str | int]] = field(default_factory=list)
    stopped_by: str | None = None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class CsvBars:
    """Every bar written, appended to a CSV stream (``symbol,bar_size,ts,…``; the header first when ``header``)
    and flushed after each batch, so a reader of a pipe sees bars as they come. When the reader of a pipe goes
    away (``| head``), ``closed`` becomes true and the collector stops cleanly (``stopped_by`` ``output closed``)."""

    def __init__(self, out: TextIO, header: bool = True) -> None:
        self.out, self.header = out, header
        self.closed = False

    def write(self, batches: Sequence[Batch]) -> None:
        if self.closed:
            return
        writer = csv.writer(self.out, lineterminator="\n")
        try:
            if self.header:
                writer.writerow(["symbol", "bar_size", "ts", *BAR_COLUMNS])
                self.header = False
            for s, size, rows in batches:
                for ts, *values in sorted(rows):
                    writer.writerow([s.instrument.display, size, ts.isoformat(),
                                     *("" if math.isnan(v) else v for v in values)])
            self.out.flush()
        except BrokenPipeError:
            self.closed = True




class Collector:
    """Runs the capture loop on a connected gateway: subscribe, batch-write, and on an outage reconnect (the
    gateway's one loop), resubscribe and repair the gap from history."""

    def __init__(self, gateway: Gateway, engine: Engine, options: CollectOptions, stop: asyncio.Event,
                 clock: Callable[[], float] = time.monotonic, csv_out: CsvBars | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.gateway, self.engine, self.options, self.stop = gateway, engine, options, stop
        self.clock, self.now = clock, now
        self.report = CollectReport()
        self.streams: list[Stream] = []
        gateway.use_ledger(engine, options.pacing_scale)  # gap repairs share the pacing budget with backfills
        self.csv_out = csv_out
        self._started = 0.0
        self._counts: dict[str, dict[str, int]] = {}

    async def run(self, on_ready: Callable[[], None] | None = None) -> CollectReport:
        """Capture until the duration/deadline passes or ``stop`` is set; ``on_ready`` is called once every
        instrument is qualified, just before the streams start. Raises ``IbRefused`` for an unknown symbol,
        ``GatewayError`` when reconnecting failed for good, ``StoreError``."""
        self._started = self.clock()
        for spec in dict.fromkeys(self.options.symbols):
            inst = Instrument.parse(spec)
            contract = await self.gateway.qualify(inst, self.engine)
            what = "MIDPOINT" if inst.is_forex else "TRADES"
            self.streams.append(Stream(inst, contract, what, SecondBars(trades=not inst.is_forex)))
            self._counts[inst.display] = {"5s": 0, "1s": 0}
        if on_ready is not None:
            on_ready()
        policy = ReconnectPolicy(self.options.reconnect_backoff_s, self.options.max_backoff_s)
        try:
            while not self._finished():
                await self._session()
                if self._finished() or not await self.gateway.reconnect(self._finished, policy=policy):
                    break
        finally:
            self.report.elapsed_s = self.clock() - self._started
            self.report.stopped_by = self._stop_reason()
            self.report.symbols = [{"symbol": s.instrument.display, "conid": s.contract.conid,
                                    "what_to_show": s.what_to_show, "bars_5s": self._counts[s.instrument.display]["5s"],
                                    "bars_1s": self._counts[s.instrument.display]["1s"]} for s in self.streams]
        return self.report

    def _stop_reason(self) -> str | None:
        o = self.options
        if self.stop.is_set():
            return "stop"
        if self.csv_out is not None and self.csv_out.closed:
            return "output closed"
        if o.duration_s is not None and self.clock() - self._started >= o.duration_s:
            return "duration"
        if o.until is not None and self.now() >= o.until:
            return "until"
        return None

    def _finished(self) -> bool:
        return self._stop_reason() is not None

    async def _session(self) -> None:
        """Subscribe and write until finished or the connection is lost."""
        self._subscribe()
        while not self._finished():
            event = await self.gateway.next_event(self.options.flush_s)
            if isinstance(event, Disconnected):
                self._outage(event.reason)
                break
            if isinstance(event, ConnectivityLost):
                self._outage(event.reason)
                self._unsubscribe()
            elif isinstance(event, Restored):  # IB ended the streams during the outage: start them again
                self._unsubscribe()
                self._subscribe()
            await self._flush_and_repair()
        self._unsubscribe()
        if self.gateway.connected:
            await self._flush_and_repair()
        else:
            self._flush()

    def _outage(self, why: str) -> None:
        at = datetime.now(UTC)
        log.warning("%s at %s; resubscribing and repairing the gap from history", why, at.isoformat())
        self.report.outages.append({"at": at.isoformat(), "why": why})
        for s in self.streams:
            s.mark_outage()

    def _subscribe(self) -> None:
        for s in self.streams:
            s.seconds.restart()
            s.sub = self.gateway.stream(s.contract, s.what_to_show, self.options.rth, s.on_bar, s.on_tick)

    def _unsubscribe(self) -> None:
        for s in self.streams:
            if s.sub is not None:
                self.gateway.cancel_stream(s.sub)
                s.sub = None

    async def _flush_and_repair(self) -> None:
        self._flush()
        for s in self.streams:
            if not self.gateway.connected:
                return
            try:
                await self._repair(s)
            except (ConnectionError, OSError, asyncio.TimeoutError, IbRefused) as exc:
                # the gap stays recorded and is tried again at the next flush (or after the next reconnect)
                log.warning("gap repair for %s failed (%s); will retry", s.instrument.display, exc)

    def _flush(self) -> None:
        """Write every pending bar of every stream in ONE transaction (and append them to the CSV)."""
        batches: list[Batch] = [(s, size, rows) for s in self.streams
                                for size, rows in (("5s", s.pending5), ("1s", s.pending1)) if rows]
        if not batches:
            return
        with self.engine.begin() as conn:
            for s, size, rows in batches:
                write_bars(conn, s.contract.conid, size, s.what_to_show, rows_frame(rows))
        for s, size, rows in batches:
            self._count(s, size, len(rows))
        if self.csv_out is not None:
            self.csv_out.write(batches)
        for _s, _size, rows in batches:
            rows.clear()

    def _count(self, s: Stream, size: str, bars: int) -> None:
        if size == "5s":
            self.report.bars_5s += bars
        else:
            self.report.bars_1s += bars
        self._counts[s.instrument.display][size] += bars

    async def _repair(self, s: Stream) -> None:
        for size, start_attr, end_attr in (("5s", "gap5_start", "repair5_end"), ("1s", "gap1_start", "repair1_end")):
            lo, hi = getattr(s, start_attr), getattr(s, end_attr)
            if lo is None or hi is None:
                continue
            frame = await self._history(s, BarSize.parse(size), lo, hi) if hi > lo else rows_frame([])
            write_bars(self.engine, s.contract.conid, size, s.what_to_show, frame)
            setattr(s, start_attr, None)
            setattr(s, end_attr, None)
            self._count(s, size, len(frame))
            if self.csv_out is not None and len(frame):
                rows = [(ts.to_pydatetime(), *values) for ts, *values in frame[list(BAR_COLUMNS)].itertuples()]
                self.csv_out.write([(s, size, rows)])
            log.warning("repaired %s %s bars [%s, %s): %d bars from history", s.instrument.display, size,
                        lo.isoformat(), hi.isoformat(), len(frame))
            self.report.repairs.append({"symbol": s.instrument.display, "bar_size": size, "start": lo.isoformat(),
                                        "end": hi.isoformat(), "bars": len(frame)})

    async def _history(self, s: Stream, size: BarSize, lo: datetime, hi: datetime) -> pd.DataFrame:
        return await self.gateway.history(s.contract, size, s.what_to_show, lo, hi, self.options.rth)


async def run_collect(gateway: Gateway, engine: Engine, options: CollectOptions,
                      stop: asyncio.Event | None = None, csv_out: CsvBars | None = None,
                      now: Callable[[], datetime] = lambda: datetime.now(UTC),
                      on_ready: Callable[[], None] | None = None) -> CollectReport:
    """Collect through ``gateway`` until the options say stop (or ``stop`` is set), appending every bar written
    to ``csv_out`` too; ``now`` is the clock ``options.until`` is read on. See ``Collector.run`` for errors and
    ``on_ready``; raises ``InputError`` without symbols or a way to stop."""
    if not options.symbols:
        raise InputError("no symbol given: use --symbol SPY (repeatable)")
    if options.duration_s is None and options.until is None and stop is None:
        raise InputError("give --duration or --until (or stop with Ctrl-C)")
    collector = Collector(gateway, engine, options, stop or asyncio.Event(), csv_out=csv_out, now=now)
    return await collector.run(on_ready)
