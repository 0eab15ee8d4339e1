"""``backfill``: historical bars from the gateway into the store, paced by IB's rules, resumable.

Ranges are resolved on the gateway's clock, not the machine's: with a gateway (or the sim) whose clock differs
from ours, "the last session" and "today" mean the gateway's. A date range without a trading day is nothing to
do (exit 0), and a symbol IB does not know fails alone: the others are still fetched and stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ibkrtool.app.gateway import gateway_of
from ibkrtool.app.outcome import Failures
from ibkrtool.app.workspace import Workspace
from ibkrtool.errors import IbkrToolError, InputError
from ibkrtool.model import BarSize, Instrument
from ibkrtool.model.when import When

if TYPE_CHECKING:
    from ibkrtool.data.backfill import BackfillReport as SeriesRun
    from ibkrtool.ib.gateway import Gateway

Progress = Callable[[int, int, int, float], None]
"""Called as ``(requests_done, requests_planned, bars_stored, seconds_left_at_least)``."""


@dataclass(frozen=True)
class BackfillRequest:
    """What to fetch: instruments, one bar size, a range (default: the gateway's last complete session)."""

    instruments: tuple[Instrument, ...]
    bar_size: BarSize = field(default_factory=lambda: BarSize.parse("1m"))
    what_to_show: str | None = None
    start: When | None = None
    end: When | None = None
    rth: bool = True
    dry_run: bool = False
    pacing_scale: float = 1.0
    timeout_s: float = 60.0

    def check(self) -> None:
        """Refuse what cannot work before the gateway is touched (``InputError``, exit 3)."""
        from ibkrtool.data.backfill import default_what_to_show, parse_bar_size

        if not self.instruments:
            raise InputError("no symbol given: use --symbol SPY (repeatable) or --symbols-file FILE")
        parse_bar_size(str(self.bar_size))
        for instrument in self.instruments:
            if instrument.is_forex and default_what_to_show(instrument, self.what_to_show) == "TRADES":
                raise InputError(f"IB has no TRADES history for {instrument.display}; use MIDPOINT, BID, ASK or "
                                 "BID_ASK")
        if self.pacing_scale <= 0 or self.timeout_s <= 0:
            raise InputError("--pacing-scale and --timeout must be > 0")
        if self.start is not None and self.end is not None:
            from ibkrtool.calendars import exchange_zone

            zone = exchange_zone(self.instruments[0])
            if self.start.start_in(zone) >= self.end.end_in(zone):
                raise InputError(f"--start ({self.start}) must be before --end ({self.end})")


@dataclass
class BackfillOutcome:
    """The fetch (``run``: requests, bars, timings per series) plus what was skipped or failed, per symbol."""

    gateway_now: datetime | None = None
    run: SeriesRun | None = None
    nothing_to_do: list[tuple[str, str]] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)

    @property
    def bars_stored(self) -> int:
        return self.run.bars_stored if self.run is not None else 0

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = self.run.as_dict() if self.run is not None else {"series": []}
        data["gateway_now"] = self.gateway_now.isoformat() if self.gateway_now else None
        data["nothing_to_do"] = [{"symbol": s, "reason": r} for s, r in self.nothing_to_do]
        data["failures"] = [f.as_dict() for f in self.failures.items]
        return data


def backfill(ws: Workspace, request: BackfillRequest, on_progress: Progress | None = None) -> BackfillOutcome:
    """Fetch and store the bars of every instrument; raises only when the whole run cannot go on."""
    request.check()
    engine = ws.store(write=True)
    args = {"symbols": [i.display for i in request.instruments], "bar_size": str(request.bar_size),
            "what_to_show": request.what_to_show, "start": str(request.start or ""), "end": str(request.end or ""),
            "rth": request.rth, "dry_run": request.dry_run, "pacing_scale": request.pacing_scale}
    with ws.journal("backfill", args) as record:
        outcome = ws.run_async(_backfill(ws, engine, request, on_progress))
        record.rows_written = outcome.bars_stored
    return outcome


async def _backfill(ws: Workspace, engine: Any, request: BackfillRequest,
                    on_progress: Progress | None) -> BackfillOutcome:
    from ibkrtool.data.backfill import BackfillOptions, run_backfill

    outcome = BackfillOutcome()
    async with gateway_of(ws, readonly=True) as gateway:
        outcome.gateway_now = now = await gateway.now()
        _refuse_future(request, now)
        ready = await _ready(gateway, engine, request, outcome)
        if not ready:
            return outcome
        options = BackfillOptions(
            tuple(i.display for i in ready), str(request.bar_size), request.what_to_show, _text(request.start),
            _text(request.end), request.rth, request.dry_run, request.pacing_scale, request.timeout_s)
        outcome.run = await run_backfill(gateway, engine, options, now, on_progress=on_progress)
    return outcome


async def _ready(gateway: Gateway, engine: Any, request: BackfillRequest,
                 outcome: BackfillOutcome) -> list[Instrument]:
    """The instruments with something to fetch that IB knows; the rest are noted in ``outcome``."""
    ready = []
    for instrument in dict.fromkeys(request.instruments):
        idle = _no_trading_day(instrument, request)
        if idle is not None:
            outcome.nothing_to_do.append((instrument.display, idle))
            continue
        try:
            await gateway.qualify(instrument, engine)
        except IbkrToolError as exc:
            outcome.failures.add(instrument.display, exc)
            continue
        ready.append(instrument)
    return ready


def _refuse_future(request: BackfillRequest, now: datetime) -> None:
    """Bars after the gateway's own clock do not exist yet: say so in its terms (exit 3)."""
    for when in (request.start, request.end):
        late = when is not None and (when.instant > now if when.instant is not None
                                     else when.day is not None and when.day > now.date())
        if late:
            raise InputError(f"{when} lies in the future: the gateway's clock says "
                             f"{now.isoformat(timespec='seconds')}; pick dates up to {now.date()}")


def _text(when: When | None) -> str | None:
    """A bound as the data layer reads it: the day, or the instant with its zone (UTC)."""
    if when is None:
        return None
    return when.day.isoformat() if when.day is not None else when.instant.isoformat()  # type: ignore[union-attr]


def _no_trading_day(instrument: Instrument, request: BackfillRequest) -> str | None:
    """Why a range given in days holds no session of ``instrument`` (a holiday, a weekend), else None."""
    first = request.start.day if request.start is not None else None
    last = request.end.day if request.end is not None else None
    if first is None or last is None:
        return None
    from ibkrtool.calendars import sessions

    if last < first or sessions(instrument, first, last, request.rth):
        return None
    return f"{_days(first, last)} for {instrument.display} ({_calendar(instrument)})"


def _days(first: date, last: date) -> str:
    if first == last:
        return f"{first} is not a trading day"
    return f"{first} to {last} holds no trading day"


def _calendar(instrument: Instrument) -> str:
    return "forex week" if instrument.is_forex else "NYSE"
