"""``strategy``: per-bar target positions of a named strategy, by the Python or the R engine."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ibkrtool.app.outcome import Failures
from ibkrtool.app.workspace import Workspace
from ibkrtool.errors import IbkrToolError, InputError
from ibkrtool.model import BarSize, Instrument
from ibkrtool.model.when import When
from ibkrtool.strategies import parse_param_args
from ibkrtool.strategies.output import write_positions_csv
from ibkrtool.strategies.r_engine import REngineError

__all__ = ["REngineError", "StrategyReport", "StrategyRequest", "StrategyRun", "list_strategies_table",
           "parse_param_args", "run_strategy", "write_positions_csv", "write_trades_csv"]

if TYPE_CHECKING:
    import pandas as pd

def list_strategies_table() -> list[dict[str, str]]:
    """Every registered strategy with its parameters and defaults, as rows for ``strategy --list``."""
    from ibkrtool.strategies import list_strategies, param_fields

    rows = []
    for strat in list_strategies():
        params = ", ".join(f"{n}={str(v).lower() if isinstance(v, bool) else v}" for n, _, v in param_fields(strat))
        rows.append({"strategy": strat.name, "parameters (defaults)": params, "description": strat.description})
    return rows


@dataclass(frozen=True)
class StrategyRequest:
    """Run strategy ``name`` with text ``params`` on each instrument's stored bars, or on ``input`` (CSV or ``-``).

    ``store`` None means: store the runs when the bars come from the database.
    """

    name: str
    params: dict[str, str] = field(default_factory=dict)
    engine: str = "python"
    instruments: tuple[Instrument, ...] = ()
    bar_size: BarSize | None = None
    what_to_show: str | None = None
    start: When | None = None
    end: When | None = None
    tz: ZoneInfo | None = None
    input: str | None = None
    store: bool | None = None

    @property
    def stores(self) -> bool:
        return self.input is None if self.store is None else self.store

    def check(self) -> None:
        if self.input is None and not self.instruments:
            raise InputError("give --symbol SYMBOL (bars from the database) or --input FILE")
        if self.input is not None and len(self.instruments) > 1:
            raise InputError("--input holds one instrument; give at most one --symbol to name it")


@dataclass
class StrategyRun:
    """One symbol's run: its summary figures, and the positions and round trips as frames."""

    symbol: str
    strategy: str
    engine: str
    bar_size: str
    run_id: str | None
    bars: int
    first_bar: str
    last_bar: str
    warmup_bars: int
    round_trips: int
    closed_trips: int
    winning_trips: int
    time_in_market: float
    last_position: float
    positions: pd.DataFrame | None = field(default=None, repr=False)
    trips: pd.DataFrame | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("positions", "trips")}


@dataclass
class StrategyReport:
    runs: list[StrategyRun] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)

    def as_dict(self) -> dict[str, Any]:
        return {"runs": [r.as_dict() for r in self.runs], "failures": [f.as_dict() for f in self.failures.items]}


def run_strategy(ws: Workspace, request: StrategyRequest) -> StrategyReport:
    """Run the strategy per symbol; a symbol that fails is reported while the others are kept and stored."""
    from ibkrtool.strategies import get_strategy, parse_params

    request.check()
    strat = get_strategy(request.name)
    params = parse_params(strat, request.params)
    report = StrategyReport()
    if request.input is not None:
        instrument = request.instruments[0] if request.instruments else None
        report.runs.append(_one(ws, request, strat, params, instrument))
        return report
    for instrument in request.instruments:
        try:
            report.runs.append(_one(ws, request, strat, params, instrument))
        except IbkrToolError as exc:
            report.failures.add(instrument.display, exc)
    return report


def _one(ws: Workspace, request: StrategyRequest, strat: Any, params: Any,
         instrument: Instrument | None) -> StrategyRun:
    from ibkrtool.data.resample import infer_bar_size
    from ibkrtool.data.sources import exchange_bounds, load_from_csv, load_from_store
    from ibkrtool.model import WhatToShow
    from ibkrtool.strategies import round_trips
    from ibkrtool.strategies.output import positions_frame, run_engine

    what = WhatToShow.parse(request.what_to_show).value if request.what_to_show else (
        instrument.default_what_to_show if instrument else "TRADES")
    lo, hi = exchange_bounds(instrument, request.start, request.end)
    conid = None
    if request.input is not None:
        bars = load_from_csv(request.input, request.tz, lo, hi).bars
        size = str(request.bar_size) if request.bar_size else _size_of(bars, infer_bar_size)
    else:
        assert instrument is not None
        size = str(request.bar_size or BarSize.parse("5m"))
        loaded = load_from_store(ws.store(write=request.stores), instrument, size, what, lo, hi)
        bars, conid = loaded.bars, loaded.conid
    result = run_engine(strat, bars, params, request.engine)
    frame = positions_frame(bars, result)
    trips = round_trips(bars, result.positions, result.signals)
    run_id = _save(ws, request, strat, params, frame, conid, instrument, size, what) if request.stores else None
    return _summary(strat.name, request.engine, size, run_id, bars, result, frame, trips,
                    instrument.display if instrument else "-")


def _size_of(bars: pd.DataFrame, infer: Any) -> str:
    """The CSV's bar size as read off its timestamps (recorded with the run), ``?`` when it cannot be told."""
    try:
        return str(infer(bars))
    except InputError:
        return "?"


def _save(ws: Workspace, request: StrategyRequest, strat: Any, params: Any, frame: pd.DataFrame,
          conid: int | None, instrument: Instrument | None, size: str, what: str) -> str:
    from ibkrtool.store.strategy_runs import save_strategy_run

    symbol = instrument.display if instrument else "-"
    run = {"strategy": strat.name, "params": asdict(params), "engine": request.engine, "conid": conid,
           "symbol": symbol, "bar_size": size, "what_to_show": what}
    engine = ws.store(write=True)
    with ws.journal("strategy", {**run, "params": str(run["params"]), "input": request.input}) as record:
        run_id = save_strategy_run(engine, run, frame[["position", "signal"]])
        record.rows_written = len(frame)
    return run_id


def _summary(name: str, engine: str, size: str, run_id: str | None, bars: pd.DataFrame, result: Any,
             frame: pd.DataFrame, trips: pd.DataFrame, symbol: str) -> StrategyRun:
    import numpy as np

    closed = trips.dropna(subset=["exit_price"])
    sign = np.where(closed["side"] == "long", 1.0, -1.0)
    wins = int((sign * (closed["exit_price"] - closed["entry_price"]) > 0).sum())
    return StrategyRun(
        symbol=symbol, strategy=name, engine=engine, bar_size=size, run_id=run_id, bars=len(bars),
        first_bar=bars.index[0].isoformat(), last_bar=bars.index[-1].isoformat(), warmup_bars=int(result.warmup),
        round_trips=len(trips), closed_trips=len(closed), winning_trips=wins,
        time_in_market=round(float((result.positions != 0).mean()), 6),
        last_position=float(result.positions[-1]), positions=frame, trips=trips)


def write_trades_csv(trips: pd.DataFrame, target: Any) -> int:
    """Write round trips as CSV (entry/exit times ISO 8601 UTC with Z) to a path or text stream."""
    import pandas as pd

    out = trips.copy()
    for col in ("entry_time", "exit_time"):
        out[col] = pd.to_datetime(out[col], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(target, index=False, lineterminator="\n")
    return len(out)
