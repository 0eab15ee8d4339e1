"""``resample``: bars of a larger size from stored or CSV bars, aligned like IB's own bars."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ibkrtool.app.outcome import Failures
from ibkrtool.app.workspace import Workspace
from ibkrtool.errors import IbkrToolError, InputError
from ibkrtool.model import BarSize, Instrument
from ibkrtool.model.when import When

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ResampleRequest:
    """Resample to ``target`` the bars of each instrument (from the store) or of ``input`` (a CSV path or ``-``).

    ``output`` is a CSV path or ``-``; None stores the result beside the backfilled series of the new size.
    """

    target: BarSize
    instruments: tuple[Instrument, ...] = ()
    source_size: BarSize | None = None
    what_to_show: str | None = None
    start: When | None = None
    end: When | None = None
    tz: ZoneInfo | None = None
    input: str | None = None
    output: str | None = None
    drop_partial: bool = False
    rth: bool = True

    def check(self) -> None:
        """Raise ``InputError`` for combinations that cannot work."""
        if self.input is None and not self.instruments:
            raise InputError("give --symbol SYMBOL (bars from the database) or --input FILE")
        if self.input is None and self.source_size is None:
            raise InputError("give --bar-size: the size of the stored bars to resample")
        if self.input is not None and len(self.instruments) > 1:
            raise InputError("--input holds one instrument; give at most one --symbol to name it")
        if self.output is not None and len(self.instruments) > 1:
            raise InputError("--output takes one series; run once per symbol, or leave out --output to store "
                             "every symbol's bars in the database")
        if self.output is None and not self.instruments:
            raise InputError("storing resampled bars needs --symbol; or give --output FILE|-")


@dataclass
class ResampledSeries:
    """One resampled series: counts, where it went, and the bars (with a ``partial`` column)."""

    symbol: str
    source_size: str
    target_size: str
    rows_in: int
    rows_out: int
    partial: int
    destination: str
    inserted: int | None = None
    updated: int | None = None
    bars: pd.DataFrame | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "bars"}


@dataclass
class ResampleReport:
    series: list[ResampledSeries] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)

    def as_dict(self) -> dict[str, object]:
        return {"series": [s.as_dict() for s in self.series],
                "failures": [f.as_dict() for f in self.failures.items]}


def resample(ws: Workspace, request: ResampleRequest) -> ResampleReport:
    """Resample every requested series; a symbol that fails is reported while the others are kept."""
    request.check()
    report = ResampleReport()
    if request.input is not None:
        instrument = request.instruments[0] if request.instruments else None
        report.series.append(_from_csv(ws, request, instrument))
        return report
    for instrument in request.instruments:
        try:
            report.series.append(_from_store(ws, request, instrument))
        except IbkrToolError as exc:
            report.failures.add(instrument.display, exc)
    return report


def _what(request: ResampleRequest, instrument: Instrument | None) -> str:
    from ibkrtool.model import WhatToShow

    if request.what_to_show:
        return WhatToShow.parse(request.what_to_show).value
    return instrument.default_what_to_show if instrument else "TRADES"


def _from_store(ws: Workspace, request: ResampleRequest, instrument: Instrument) -> ResampledSeries:
    from ibkrtool.data.resample import resample_stored
    from ibkrtool.data.sources import exchange_bounds
    from ibkrtool.store.contracts import find_contract

    assert request.source_size is not None
    lo, hi = exchange_bounds(instrument, request.start, request.end)
    engine = ws.store(write=request.output is None)
    contract = find_contract(engine, instrument.display)
    if contract is None:
        raise InputError(f"no contract {instrument.display} in the database; backfill it first or use --input FILE")
    what = _what(request, instrument)
    out, rows_in = resample_stored(engine, int(contract.conid), instrument, request.source_size, request.target,
                                   what, request.rth, lo, hi, request.drop_partial)
    series = _series(instrument.display, request, request.source_size, out, rows_in)
    _deliver(ws, request, series, int(contract.conid), instrument, what)
    return series


def _from_csv(ws: Workspace, request: ResampleRequest, instrument: Instrument | None) -> ResampledSeries:
    from ibkrtool.data.resample import check_target, infer_bar_size, resample_bars, sessions_for
    from ibkrtool.data.sources import exchange_bounds, load_from_csv

    assert request.input is not None
    lo, hi = exchange_bounds(instrument, request.start, request.end)
    bars = load_from_csv(request.input, request.tz, lo, hi).bars
    source = request.source_size or infer_bar_size(bars)
    check_target(source, request.target)
    sessions = sessions_for(instrument, bars, request.rth) if instrument is not None else None
    out = resample_bars(bars, source, request.target, sessions, request.drop_partial)
    series = _series(instrument.display if instrument else "-", request, source, out, len(bars))
    _deliver(ws, request, series, None, instrument, _what(request, instrument))
    return series


def _series(symbol: str, request: ResampleRequest, source: BarSize, out: pd.DataFrame,
            rows_in: int) -> ResampledSeries:
    return ResampledSeries(symbol, str(source), str(request.target), rows_in, len(out), int(out["partial"].sum()),
                           request.output or "database", bars=out)


def _deliver(ws: Workspace, request: ResampleRequest, series: ResampledSeries, conid: int | None,
             instrument: Instrument | None, what: str) -> None:
    if request.output is not None:
        return  # the caller writes the CSV (stdout belongs to the CLI)
    from ibkrtool.model import BAR_COLUMNS
    from ibkrtool.store.bars import write_bars
    from ibkrtool.store.contracts import find_contract, placeholder_contract, upsert_contract

    assert instrument is not None and series.bars is not None
    args = {"symbol": instrument.display, "to": str(request.target), "what_to_show": what, "rows": series.rows_out}
    engine = ws.store(write=True)
    with ws.journal("resample", args) as record, engine.begin() as conn:
        if conid is None:  # CSV in, database out: file the bars under the stored contract, or a placeholder
            contract = find_contract(conn, instrument.display) or placeholder_contract(instrument.display)
            upsert_contract(conn, contract)
            conid = int(contract.conid)
        result = write_bars(conn, conid, request.target, what, series.bars[list(BAR_COLUMNS)])
        record.rows_written = result.written
    series.inserted, series.updated = result.inserted, result.updated


def write_resampled_csv(bars: pd.DataFrame, target: object) -> int:
    """Write resampled bars (with their ``partial`` flag) as CSV to a path or text stream; returns the rows."""
    import numpy as np
    import pandas as pd

    from ibkrtool.model import BAR_COLUMNS

    stamps = bars.index.as_unit("us").tz_localize(None).to_numpy()
    whole = len(stamps) == 0 or not (stamps.astype(np.int64) % 1_000_000).any()
    frame = pd.DataFrame({"ts": np.char.add(np.datetime_as_string(stamps, unit="s" if whole else "us"), "Z")})
    for col in BAR_COLUMNS:
        values = bars[col].to_numpy()
        frame[col] = pd.array(values, dtype="Int64") if col == "bar_count" else values
    frame["partial"] = bars["partial"].to_numpy()
    frame.to_csv(target, index=False, lineterminator="\n")  # type: ignore[call-overload]
    return len(frame)
