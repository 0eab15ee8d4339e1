"""``collect``: 5-second and 1-second bars streamed from the gateway into the store, until a duration, a deadline
or a stop.

The connection is read-only. After a disconnect or a loss of IB's connectivity the streams are resubscribed and the
missing window is fetched from history (see ``ibkrtool.data.collect``). A stop (the ``stop`` event, or the duration
or deadline) is clean: every complete bar is written before ``collect`` returns. A run ended by the ``stop`` event
returns its report like any other, and its ``runs`` row is closed as ``interrupted`` (it did not reach its end).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ibkrtool.app.gateway import gateway_of
from ibkrtool.app.outcome import Failures
from ibkrtool.app.workspace import Workspace
from ibkrtool.errors import IbkrToolError, InputError
from ibkrtool.model import Instrument

if TYPE_CHECKING:
    from ibkrtool.data.collect import CollectReport as CaptureReport
    from ibkrtool.data.collect import CsvBars

OnStart = Callable[[asyncio.AbstractEventLoop, asyncio.Event], None]
"""Called once inside the event loop, with the loop and the stop event, when every instrument is qualified and
the streams are about to start. The CLI passes ``signals.stop_on_signals`` (Ctrl-C and SIGTERM set the event); a
caller in another thread may keep both and later call ``loop.call_soon_threadsafe(stop.set)``."""


@dataclass(frozen=True)
class CollectRequest:
    """What to capture and until when.

    ``duration_s`` and ``until`` (a tz-aware instant, read on the workspace's clock) end the run, whichever comes
    first; with neither, only the stop event does. ``output`` is a CSV file that every bar written is appended to
    (the header first when the file is new or empty), ``-`` for this process's stdout, or None.
    """

    instruments: tuple[Instrument, ...]
    duration_s: float | None = None
    until: datetime | None = None
    rth: bool = False
    output: str | None = None
    pacing_scale: float = 1.0
    flush_s: float = 0.5

    def check(self) -> None:
        """Refuse what cannot work before the gateway is touched (``InputError``, exit 3)."""
        if not self.instruments:
            raise InputError("no symbol given: use --symbol SPY (repeatable)")
        if self.duration_s is not None and self.duration_s <= 0:
            raise InputError("--duration must be positive")
        if self.until is not None and self.until.tzinfo is None:
            raise InputError("--until needs a time zone: add one (…T21:00:00Z) or give --tz")
        if self.pacing_scale <= 0 or self.flush_s <= 0:
            raise InputError("--pacing-scale must be > 0")


@dataclass
class CollectReport:
    """Bars written per size (live and repaired from history) in total and per symbol, the outages and gap
    repairs, how long it ran and why it ended: ``duration``, ``until``, ``stop`` (the stop event) or ``output closed``
    (the reader of ``-`` went away, e.g. ``| head``; the run is journaled ``ok``)."""

    bars_5s: int = 0
    bars_1s: int = 0
    symbols: list[dict[str, Any]] = field(default_factory=list)
    outages: list[dict[str, str]] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped_by: str | None = None
    output: str | None = None
    failures: Failures = field(default_factory=Failures)

    @property
    def interrupted(self) -> bool:
        """The stop event ended the run (Ctrl-C, SIGTERM, the caller), not its duration or deadline."""
        return self.stopped_by == "stop"

    def as_dict(self) -> dict[str, Any]:
        return {"bars_5s": self.bars_5s, "bars_1s": self.bars_1s, "symbols": self.symbols, "outages": self.outages,
                "repairs": self.repairs, "elapsed_s": self.elapsed_s, "stopped_by": self.stopped_by,
                "output": self.output, "failures": [f.as_dict() for f in self.failures.items]}

    @classmethod
    def of(cls, capture: CaptureReport, output: str | None) -> CollectReport:
        return cls(bars_5s=capture.bars_5s, bars_1s=capture.bars_1s, symbols=list(capture.symbols),
                   outages=list(capture.outages), repairs=list(capture.repairs), elapsed_s=capture.elapsed_s,
                   stopped_by=capture.stopped_by, output=output)


def collect(ws: Workspace, request: CollectRequest, stop: asyncio.Event | None = None,
            on_start: OnStart | None = None) -> CollectReport:
    """Capture bars of every instrument until the request's duration or deadline, or until ``stop`` is set.

    Raises ``InputError`` (exit 3) for a request that cannot run (no instrument, a deadline already past, no way
    to end: neither duration, deadline, ``stop`` nor ``on_start``, an output file that cannot be opened),
    ``GatewayError`` (4), ``StoreError`` (5), ``IbRefused`` (6, e.g. a symbol IB does not know).
    """
    request.check()
    if request.until is not None and request.until <= ws.clock():
        raise InputError(f"--until {request.until.isoformat()} is already past (now {ws.clock().isoformat()})")
    if request.duration_s is None and request.until is None and stop is None and on_start is None:
        raise InputError("give --duration or --until (or stop with Ctrl-C)")
    args = {"symbols": [i.display for i in request.instruments], "duration_s": request.duration_s,
            "until": request.until.isoformat() if request.until else None, "rth": request.rth,
            "output": request.output, "pacing_scale": request.pacing_scale}
    report: CollectReport | None = None
    with _csv_sink(request.output) as sink:
        engine = ws.store(write=True)
        with ws.journal("collect", args) as record:
            report = ws.run_async(_collect(ws, engine, request, stop, on_start, sink))
            record.rows_written = report.bars_5s + report.bars_1s
            record.status = "interrupted" if report.interrupted else "ok"
    assert report is not None
    return report


async def _collect(ws: Workspace, engine: Any, request: CollectRequest, stop: asyncio.Event | None,
                   on_start: OnStart | None, sink: CsvBars | None) -> CollectReport:
    from ibkrtool.data.collect import CollectOptions, run_collect

    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()

    def ready() -> None:
        if on_start is not None:
            on_start(loop, stop)

    async with gateway_of(ws, readonly=True) as gateway:
        failed, symbols = Failures(), []
        for instrument in dict.fromkeys(request.instruments):  # a symbol IB does not know fails alone
            try:
                await gateway.qualify(instrument, engine)
                symbols.append(instrument.display)
            except IbkrToolError as exc:
                failed.add(instrument.display, exc)
        if not symbols:
            raise failed.items[0].error
        options = CollectOptions(tuple(symbols), request.duration_s, request.until, request.rth,
                                 flush_s=request.flush_s, pacing_scale=request.pacing_scale)
        capture = await run_collect(gateway, engine, options, stop, csv_out=sink, now=ws.clock, on_ready=ready)
    report = CollectReport.of(capture, request.output)
    report.failures = failed
    return report


@contextmanager
def _csv_sink(output: str | None) -> Iterator[CsvBars | None]:
    """Where the bars CSV goes: nowhere, stdout (``-``) or a file opened for appending before anything starts."""
    if output is None:
        yield None
        return
    from ibkrtool.data.collect import CsvBars

    if output == "-":
        yield CsvBars(sys.stdout, header=True)
        return
    path = Path(output)
    try:
        handle = path.open("a", newline="")
    except OSError as exc:
        raise InputError(f"cannot write --output {output}: {exc.strerror}") from None
    with handle:
        yield CsvBars(handle, header=handle.tell() == 0)
