"""``db``: create or upgrade the schema, show what is stored, import and export bars."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ibkrtool.app.workspace import Workspace
from ibkrtool.errors import InputError
from ibkrtool.model import BarSize, Instrument
from ibkrtool.model.when import When

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ibkrtool.model.contract import Contract


def database_label(ws: Workspace) -> str:
    """The database in use as users should read it: an SQLite file's absolute path, else the masked URL."""
    from ibkrtool.store.engine import sqlite_path

    path = sqlite_path(ws.settings.db_url)
    return f"sqlite:///{path.resolve()}" if path is not None else ws.db_label


@dataclass(frozen=True)
class InitReport:
    database: str
    version_before: int
    version: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def init(ws: Workspace) -> InitReport:
    """Create the database (an SQLite file and its folder too) or upgrade its schema; idempotent."""
    from ibkrtool.store.engine import open_engine
    from ibkrtool.store.migrate import schema_version

    created = open_engine(ws.settings.db_url, create_dirs=True)  # the one place a database folder is created
    before = schema_version(created)
    created.dispose()
    engine = ws.store(write=True)
    with ws.journal("db init", {}):
        pass
    return InitReport(database_label(ws), before, schema_version(engine))


@dataclass(frozen=True)
class StatusReport:
    database: str
    schema_version: int
    series: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"database": self.database, "schema_version": self.schema_version, "series": self.series}


def status(ws: Workspace) -> StatusReport:
    """Schema version and, per stored series: symbol, conid, bar size, what-to-show, rows, first and last bar
    (UTC) and the merged coverage ranges. Raises ``StoreError`` (exit 5) for a database without the schema."""
    from ibkrtool.store.bars import list_series
    from ibkrtool.store.contracts import contracts_by_conid
    from ibkrtool.store.coverage import all_covered_ranges
    from ibkrtool.store.migrate import schema_version

    engine = ws.store(write=False)
    contracts, coverage = contracts_by_conid(engine), all_covered_ranges(engine)
    rows = []
    for s in list_series(engine):
        contract = contracts.get(s["conid"])
        ranges = coverage.get((s["conid"], s["bar_size"], s["what_to_show"]), [])
        rows.append({"symbol": contract.display if contract else "?", **s,
                     "coverage": [[a.isoformat(), b.isoformat()] for a, b in ranges]})
    return StatusReport(database_label(ws), schema_version(engine), rows)


@dataclass(frozen=True)
class ImportRequest:
    """Bars from ``source`` (a path, or a text stream such as stdin) into one series."""

    source: str | IO[str]
    instrument: Instrument
    bar_size: BarSize
    what_to_show: str | None = None
    tz: ZoneInfo | None = None
    conid: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class ImportReport:
    symbol: str
    conid: int
    bar_size: str
    what_to_show: str
    read: int
    inserted: int
    updated: int
    unchanged: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def import_bars(ws: Workspace, request: ImportRequest) -> ImportReport:
    """Import all of the file or nothing; a rerun is idempotent, bars stored with other values are replaced."""
    from ibkrtool.model import WhatToShow
    from ibkrtool.store.bars import write_bars
    from ibkrtool.store.csvio import read_bars_csv

    inst, size = request.instrument, request.bar_size
    what = WhatToShow.parse(request.what_to_show or inst.default_what_to_show)
    bars = read_bars_csv(request.source, tz=request.tz.key if request.tz else None, name=request.name)
    engine = ws.store(write=True)
    args = {"file": request.name or str(request.source), "symbol": inst.display, "bar_size": str(size),
            "what_to_show": what.value, "tz": request.tz.key if request.tz else None, "conid": request.conid}
    with ws.journal("db import bars", args) as run, engine.begin() as conn:  # contract and bars: all or none
        contract = _contract_for(conn, inst, request.conid)
        result = write_bars(conn, contract.conid, size, what, bars)
        run.rows_written = result.written
    return ImportReport(contract.display, int(contract.conid), str(size), what.value, len(bars), result.inserted,
                        result.updated, result.unchanged)


def _contract_for(conn: Connection, inst: Instrument, conid: int | None) -> Contract:
    from ibkrtool.model.contract import Contract
    from ibkrtool.store.contracts import find_contract, get_contract, placeholder_contract, upsert_contract

    if conid is not None:
        known = get_contract(conn, conid)
        if known is not None:
            if known.display != inst.display:
                raise InputError(f"conid {conid} is {known.display}, not {inst.display}")
            return known
        contract = Contract(conid=conid, symbol=inst.symbol, sec_type=inst.sec_type.value, exchange=inst.exchange,
                            primary_exchange=inst.primary_exchange, currency=inst.currency, local_symbol=inst.display)
        upsert_contract(conn, contract)
        return contract
    found = find_contract(conn, inst.display)
    if found is None:
        found = placeholder_contract(inst.display)
        upsert_contract(conn, found)
    return found


@dataclass(frozen=True)
class ExportRequest:
    """One series' bars in ``[start, end]``: dates are trading days in the exchange's zone, ``end`` inclusive."""

    instrument: Instrument
    bar_size: BarSize
    what_to_show: str | None = None
    start: When | None = None
    end: When | None = None


@dataclass
class ExportResult:
    symbol: str
    bar_size: str
    what_to_show: str
    bars: Any = field(repr=False)

    @property
    def rows(self) -> int:
        return len(self.bars)


def write_bars_csv(bars: Any, target: Any) -> int:
    """Write bars as the bars CSV (``ts`` ISO 8601 UTC first) to a path or text stream; returns the rows."""
    from ibkrtool.store.csvio import write_bars_csv as write

    return write(bars, target)


def export_bars(ws: Workspace, request: ExportRequest) -> ExportResult:
    """The stored bars of one series (the CLI writes them as CSV). Raises ``InputError`` for an unknown symbol."""
    from ibkrtool.data.sources import exchange_bounds
    from ibkrtool.model import WhatToShow
    from ibkrtool.store.bars import read_bars
    from ibkrtool.store.contracts import find_contract

    inst = request.instrument
    what = WhatToShow.parse(request.what_to_show or inst.default_what_to_show)
    lo, hi = exchange_bounds(inst, request.start, request.end)
    engine = ws.store(write=False)
    contract = find_contract(engine, inst.display)
    if contract is None:
        raise InputError(f"no bars stored for {inst.display}: import or backfill them first (see 'ibkrtool db "
                         "status')")
    bars = read_bars(engine, contract.conid, request.bar_size, what, lo, hi)
    return ExportResult(contract.display, str(request.bar_size), what.value, bars)
