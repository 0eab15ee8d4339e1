"""Backfill historical bars: plan (pure) → pace → fetch → write each chunk with its coverage in one transaction.

Planning (``ib/chunks.py``) works on the exchange's sessions (``ibkrtool.calendars``): closed days cost no
request, ranges already in ``coverage`` are skipped (a rerun of a finished backfill sends nothing), and each request
spans at most IB's maximum for the bar size. Because a chunk's bars and its coverage row commit together, a run
killed at any moment and rerun ends with exactly the bars one uninterrupted run stores.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy.engine import Connection, Engine

from ibkrtool import calendars
from ibkrtool.data.labels import stamp_dated_bars
from ibkrtool.errors import GatewayError, InputError, PacingError
from ibkrtool.ib.chunks import (
    Chunk,
    Interval,
    SeriesPlan,
    clip_to_pieces,
    estimate_seconds,
    plan_series,
    requests_in,
)
from ibkrtool.ib.gateway import Gateway
from ibkrtool.ib.history import SMALL_BAR_HISTORY, SMALL_BAR_MAX_S, BarsAnswer, end_text
from ibkrtool.ib.ledger import pacer_for  # noqa: F401 (re-exported: the ledger used to live here)
from ibkrtool.ib.pacer import Pacer
from ibkrtool.model import IB_BAR_SIZES, BarSize, Instrument, WhatToShow
from ibkrtool.model.contract import Contract
from ibkrtool.store.bars import write_bars
from ibkrtool.store.coverage import CoverageRange, covered_ranges
from ibkrtool.store.engine import transaction

UTC = timezone.utc
log = logging.getLogger(__name__)
IDLE_BATCH = 1
"""Answered chunks written per transaction while requests remain: a request that falls due waits for at most one
chunk's write (~3 ms of 1-second bars into SQLite). Once all are answered the rest go in one transaction."""
PACING_BACKOFF = (0.1, 0.25, 0.5, 1.0)
"""Pauses after successive pacing refusals of one request, as fractions of the (scaled) 10-minute window."""
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ---------------------------------------------------------------- input


def parse_bar_size(text: str) -> BarSize:
    """A bar size IB serves historically, else ``InputError`` listing the allowed ones."""
    size = BarSize.parse(text)
    if not size.is_ib_size:
        allowed = ", ".join(str(BarSize.parse(s)) for s in IB_BAR_SIZES)
        raise InputError(f"bar size {text!r} is not one IB serves; allowed: {allowed}")
    return size


def parse_when(text: str, option: str) -> date | datetime:
    """``2026-11-20`` → a date; ``2026-11-20T14:30:00Z`` / ``…+01:00`` → a tz-aware UTC datetime.

    Raises ``InputError`` for anything else, including datetimes without a zone.
    """
    text = text.strip()
    if _DATE.match(text):
        return date.fromisoformat(text)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(f"{option} {text!r} is not a date (2026-11-20) or a datetime (2026-11-20T14:30:00Z)") from None
    if value.tzinfo is None:
        raise InputError(f"{option} {text!r} has no time zone; add Z for UTC or an offset such as -05:00")
    return value.astimezone(UTC)


def _floor(ts: datetime, seconds: int) -> datetime:
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def _ceil(ts: datetime, seconds: int) -> datetime:
    floor = _floor(ts, seconds)
    return floor if floor == ts else floor + timedelta(seconds=seconds)


def resolve_range(instrument: Instrument, bar_size: BarSize, start: date | datetime | None,
                  end: date | datetime | None, rth: bool, now: datetime) -> Interval:
    """The UTC instant range ``[start, end)`` to backfill. Dates mean whole sessions (``end`` inclusive).

    Default: the last complete session before ``now``. Raises ``InputError`` for an inverted range, a range in the
    future, or small bars (≤30 s) older than IB keeps (about six months).
    """
    _refuse_future(start, end, now)
    if start is None and end is None:
        last = calendars.last_complete_session(instrument, now, rth)
        lo, hi = last.open, last.close
    else:
        lo = _start_instant(instrument, start, rth) if start is not None else None
        hi = _end_instant(instrument, end, rth) if end is not None else now
        lo = lo if lo is not None else calendars.last_complete_session(instrument, hi, rth).open
    if lo >= hi:
        raise InputError(f"--start ({lo.isoformat()}) must be before --end ({hi.isoformat()})")
    hi = min(hi, now)
    if bar_size.is_intraday and bar_size.seconds <= SMALL_BAR_MAX_S and lo < now - SMALL_BAR_HISTORY:
        oldest = (now - SMALL_BAR_HISTORY).date()
        raise InputError(f"IB keeps {bar_size} bars for about 6 months: --start must be on or after {oldest}")
    step = bar_size.seconds if bar_size.is_intraday else 1
    return _floor(lo, step), _ceil(hi, step) if hi < now else _floor(hi, step)


def _refuse_future(start: date | datetime | None, end: date | datetime | None, now: datetime) -> None:
    for when in (start, end):
        late = when > now if isinstance(when, datetime) else when is not None and when > now.date()
        if late:
            raise InputError(f"{when.isoformat()} lies in the future (now is {now.isoformat(timespec='seconds')}); "
                             "pick dates up to today")


def _start_instant(instrument: Instrument, when: date | datetime, rth: bool) -> datetime:
    if isinstance(when, datetime):
        return when
    found = calendars.sessions(instrument, when, when + timedelta(days=10), rth)
    return found[0].open if found else datetime.combine(when, datetime.min.time(), UTC)


def _end_instant(instrument: Instrument, when: date | datetime, rth: bool) -> datetime:
    if isinstance(when, datetime):
        return when
    found = calendars.sessions(instrument, when - timedelta(days=10), when, rth)
    return found[-1].close if found else datetime.combine(when, datetime.min.time(), UTC)


def default_what_to_show(instrument: Instrument, given: str | None) -> str:
    """TRADES for stocks, MIDPOINT for forex (IB has no TRADES history for pairs), unless given."""
    return WhatToShow.parse(given).value if given else instrument.default_what_to_show


Sleep = Callable[[float], Awaitable[None]]
ProgressCallback = Callable[[int, int, int, float], None]
"""Called as ``(requests_done, requests_planned, bars_stored, eta_s)`` after each request."""


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class BackfillOptions:
    """What the user asked for, still as text where the CLI received text."""

    symbols: tuple[str, ...]
    bar_size: str = "1m"
    what_to_show: str | None = None
    start: str | None = None
    end: str | None = None
    rth: bool = True
    dry_run: bool = False
    pacing_scale: float = 1.0
    timeout_s: float = 60.0
    attempts: int = 5
    in_flight: int = 5  # overlaps the gateway's answer time with our decoding and writing; IB allows 50 open


@dataclass
class SeriesReport:
    symbol: str
    conid: int
    bar_size: str
    what_to_show: str
    start: datetime
    end: datetime
    requests: int = 0
    bars: int = 0
    empty: int = 0


@dataclass
class BackfillReport:
    """What a backfill did (or, with ``dry_run``, would do). Seconds are wall time."""

    series: list[SeriesReport] = field(default_factory=list)
    requests_planned: int = 0
    requests_sent: int = 0
    retries: int = 0
    bars_stored: int = 0
    empty_chunks: int = 0
    estimated_s: float = 0.0
    elapsed_s: float = 0.0
    waited_s: float = 0.0
    dry_run: bool = False

    def as_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "series"}
        data["series"] = [s.__dict__ for s in self.series]
        return data


def validate(options: BackfillOptions, now: datetime) -> tuple[BarSize, list[tuple[Instrument, str, Interval]]]:
    """Check every input before any request: symbols, bar size, what-to-show, range. Raises ``InputError``."""
    if not options.symbols:
        raise InputError("no symbol given: use --symbol SPY (repeatable) or --symbols-file FILE")
    bar_size = parse_bar_size(options.bar_size)
    start = parse_when(options.start, "--start") if options.start else None
    end = parse_when(options.end, "--end") if options.end else None
    jobs = []
    for spec in dict.fromkeys(options.symbols):
        instrument = Instrument.parse(spec)
        what = default_what_to_show(instrument, options.what_to_show)
        if instrument.is_forex and what == "TRADES":
            raise InputError(f"IB has no TRADES history for {instrument.display}; use MIDPOINT, BID, ASK or BID_ASK")
        jobs.append((instrument, what, resolve_range(instrument, bar_size, start, end, options.rth, now)))
    return bar_size, jobs


async def run_backfill(gateway: Gateway, engine: Engine, options: BackfillOptions, now: datetime,
                       sleep: Sleep | None = None, on_progress: ProgressCallback | None = None) -> BackfillReport:
    """Plan and (unless ``dry_run``) run a backfill through ``gateway``, writing into ``engine``.

    The gateway's ledger (keyed ``host:port``, in ``engine``) holds the pacing budget across runs. ``now`` is the
    UTC instant ranges are checked against (the CLI passes the wall clock; the gateway's own clock also caps every
    range); elapsed and waiting times are on the gateway's injected clock. Raises ``InputError``, ``IbRefused``
    (unknown symbol, refused request), ``PacingError`` after bounded retries, ``GatewayError`` when IB stops
    answering, ``StoreError``.
    """
    clock = gateway.clock
    bar_size, jobs = validate(options, now)
    started = clock()
    gateway_now = await gateway.now()
    cap = _floor(min(now, gateway_now), bar_size.seconds if bar_size.is_intraday else 1)
    plans: list[tuple[SeriesPlan, Contract]] = []
    report = BackfillReport(dry_run=options.dry_run)
    for instrument, what, (lo, hi) in jobs:
        contract = await gateway.qualify(instrument, engine)
        window = (lo, min(hi, cap))  # nothing after the gateway's own clock: those bars do not exist yet
        covered = _covered(engine, contract.conid, bar_size, what)
        plan = plan_series(instrument, contract.conid, bar_size, what, options.rth, window, covered)
        plans.append((plan, contract))
        report.series.append(SeriesReport(instrument.display, contract.conid, str(bar_size), what, *window,
                                          requests=len(plan.chunks)))
    pacer = gateway.use_ledger(engine, options.pacing_scale, sleep)
    report.requests_planned = requests_in([p for p, _ in plans])
    report.estimated_s = estimate_seconds([p for p, _ in plans], pacer.planner, clock())
    if not options.dry_run:
        await _fetch_all(gateway, engine, plans, pacer, options, report, on_progress)
    report.elapsed_s = clock() - started
    report.waited_s = pacer.waited_s
    return report


def _covered(engine: Engine, conid: int, bar_size: BarSize, what: str) -> list[Interval]:
    return covered_ranges(engine, conid, str(bar_size), what)


async def _fetch_all(gateway: Gateway, engine: Engine, plans: list[tuple[SeriesPlan, Contract]], pacer: Pacer,
                     options: BackfillOptions, report: BackfillReport,
                     on_progress: ProgressCallback | None) -> None:
    """Run every chunk with up to ``options.in_flight`` requests outstanding (the pacer still releases each one).

    Overlapping requests hide the gateway's answer time behind the pacing waits. Answers are converted and
    written when no request is outstanding (while the pacer waits for IB's windows) or when nothing is left to
    release, so writing never delays the decoding of an answer that paces the next release (bench/pacing.py);
    each chunk still commits with its coverage row, and whatever was answered is written before this returns or
    raises.
    """
    gate = asyncio.Semaphore(max(1, options.in_flight))
    waiting = [(index, plan, contract, chunk) for index, (plan, contract) in enumerate(plans) for chunk in plan.chunks]
    queued = list(waiting)
    unwritten: list[tuple[int, SeriesPlan, Chunk, BarsAnswer, int]] = []
    eta = [0.0, float("-inf")]  # last estimate (s) and when it was made

    def store(count: int) -> None:
        """Write the first ``count`` answered chunks in one transaction, each with its coverage row."""
        batch, unwritten[:count] = unwritten[:count], []
        with transaction(engine, "writing backfilled bars") as conn:
            stored = [_store_chunk(conn, plan, chunk, bars) for _, plan, chunk, bars, _ in batch]
        for (index, *_, retries), bars in zip(batch, stored, strict=True):
            _count(report, index, retries, bars)
            if on_progress is not None:
                now = pacer.clock()
                if now - eta[1] >= 0.5 or not queued:  # estimating is O(requests left): at most twice a second
                    eta[:] = [estimate_seconds([_single(p, c) for _, p, _, c in queued], pacer.planner, now), now]
                on_progress(report.requests_sent - report.retries, report.requests_planned, report.bars_stored,
                            max(0.0, eta[0] - (now - eta[1])))

    async def write_when_idle() -> None:
        """Write answered chunks one at a time while nothing is outstanding, or once every request is released
        (no answer time matters for pacing any more); ends when every chunk is written."""
        while fetching[0] or unwritten:
            releasing = bool(queued) or pacer.waiting > 0
            if unwritten and (pacer.outstanding == 0 or not releasing):
                store(IDLE_BATCH if fetching[0] else len(unwritten))
                await asyncio.sleep(0)  # a request due now is released before the next batch is written
            else:
                answered.clear()
                await answered.wait()

    async def one(index: int, plan: SeriesPlan, contract: Contract, chunk: Chunk) -> None:
        try:
            async with gate:
                queued.remove((index, plan, contract, chunk))
                bars, retries = await _fetch_chunk(gateway, contract, plan, chunk, pacer, options)
            unwritten.append((index, plan, chunk, bars, retries))
        finally:
            fetching[0] -= 1
            answered.set()

    fetching = [len(waiting)]
    answered = asyncio.Event()
    try:
        await _all_or_first_error([write_when_idle(), *(one(*item) for item in waiting)])
    finally:
        while unwritten:  # a failed or interrupted run keeps every chunk that was answered
            store(len(unwritten))


def _store_chunk(conn: Connection, plan: SeriesPlan, chunk: Chunk, answer: BarsAnswer) -> int:
    frame = answer.frame()
    bars = stamp_dated_bars(clip_to_pieces(frame, chunk.pieces), plan.instrument, plan.bar_size, plan.rth)
    cover = CoverageRange(chunk.start, chunk.end, source="ib", bars_received=len(bars))
    write_bars(conn, plan.conid, plan.bar_size, plan.what_to_show, bars, coverage=cover)
    return len(bars)


async def _all_or_first_error(coroutines: list) -> None:
    """Run ``coroutines`` concurrently; on the first failure cancel the others and raise that error alone."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    if not tasks:
        return
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _single(plan: SeriesPlan, chunk: Chunk) -> SeriesPlan:
    return SeriesPlan(plan.instrument, plan.conid, plan.bar_size, plan.what_to_show, plan.rth, plan.range, [chunk])


def _count(report: BackfillReport, index: int, retries: int, bars: int) -> None:
    series = report.series[index]
    report.requests_sent += 1 + retries
    report.retries += retries
    report.bars_stored += bars
    report.empty_chunks += int(bars == 0)
    series.bars += bars
    series.empty += int(bars == 0)


async def _fetch_chunk(gateway: Gateway, contract: Contract, plan: SeriesPlan, chunk: Chunk, pacer: Pacer,
                       options: BackfillOptions) -> tuple[BarsAnswer, int]:
    """One chunk with bounded retries: pacing refusals wait, timeouts retry, "no data" is an empty answer.

    Returns the answer (converted when written) and the number of retries.
    """
    for attempt in range(options.attempts):
        try:
            answer = await gateway.request_bars(contract, plan.bar_size, plan.what_to_show, chunk.start, chunk.end,
                                                plan.rth, options.timeout_s)
            return answer, attempt
        except PacingError:
            if attempt == options.attempts - 1:
                raise
            # IB's count of our requests disagrees with ours (another client, a restart): wait longer each time;
            # the pauses add up to more than one 10-minute window before the last attempt
            wait = pacer.planner.rules.window_s * PACING_BACKOFF[min(attempt, len(PACING_BACKOFF) - 1)]
            log.warning("IB refused %s for pacing; waiting %.1f s before retry %d", chunk.symbol, wait, attempt + 1)
            await pacer.penalty(wait)
        except asyncio.TimeoutError:
            log.warning("no answer for %s ending %s within %.0f s; retrying", chunk.symbol, chunk.end.isoformat(),
                        options.timeout_s)
    raise GatewayError(f"IB did not answer historical requests for {chunk.symbol} ending {end_text(chunk.end)} "
                       f"after {options.attempts} tries; check the HMDS farm status and try again later")
