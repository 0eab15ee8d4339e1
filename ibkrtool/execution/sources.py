"""Where ``execute`` finds its targets and bars: a stored strategy run (by id, or the latest of a strategy on a
symbol) or a positions CSV (one run per instrument in it); bars for simulated fills from the store or a bars CSV.

A positions CSV's run id is ``csv-<12 hex digits>``: a hash of the file's content and the instrument, never of its
name — the same file under another name is the same run, the same file for another instrument another run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import IO
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ibkrtool.errors import InputError
from ibkrtool.execution.targets import Targets, from_frame, read_positions_file
from ibkrtool.model import Instrument
from ibkrtool.store.tables import strategy_runs


@dataclass(frozen=True)
class RunTargets:
    """One run's targets for one instrument; ``legacy_run_id`` is the id earlier versions gave it (a positions
    CSV's was ``csv-<file name>``), kept to recognise their order keys."""

    run_id: str
    symbol: str
    bar_size: str
    what_to_show: str
    conid: int | None
    targets: Targets
    legacy_run_id: str = ""


def csv_run_id(digest: str, symbol: str) -> str:
    """The run id of a positions CSV's targets for ``symbol`` (display name): ``csv-`` + 12 hex digits of SHA-256
    over the file's content digest and the symbol."""
    return "csv-" + hashlib.sha256(f"{digest}\x1f{symbol}".encode()).hexdigest()[:12]


def positions_runs(source: str | IO[str], tz: ZoneInfo | None, instrument: Instrument | None,
                   bar_size: str = "5m") -> list[RunTargets]:
    """One ``RunTargets`` per instrument of a positions CSV (``-`` = stdin): the file's ``symbol`` column, else
    ``instrument`` (``--symbol``). Raises ``InputError`` for a bad file, a file without symbols and no
    ``instrument``, or an ``instrument`` the file's symbols do not match (nothing is executed then)."""
    found = read_positions_file(source, tz)
    name = source if isinstance(source, str) else "stream"
    legacy = "csv-stdin" if name == "-" else f"csv-{name.rsplit('/', 1)[-1]}"
    if None in found.by_symbol:
        if instrument is None:
            raise InputError(f"positions CSV {name} has no symbol column: give --symbol (the instrument the "
                             "positions are for)")
        named = {instrument.display: found.by_symbol[None]}
    else:
        named = {str(k): v for k, v in found.by_symbol.items()}
        if instrument is not None and list(named) != [instrument.display]:
            raise InputError(f"positions CSV {name} is for {', '.join(named)}, not --symbol {instrument.display}: "
                             "drop --symbol to execute the file's symbols, or pass the right file")
    return [RunTargets(csv_run_id(found.digest, symbol), symbol, bar_size,
                       Instrument.parse(symbol).default_what_to_show, None, targets, legacy)
            for symbol, targets in named.items()]


def latest_run_id(engine: Engine, strategy: str, symbol: str) -> str:
    """The newest stored run of ``strategy`` on ``symbol``; raises ``InputError`` when there is none."""
    query = (select(strategy_runs.c.run_id).where(strategy_runs.c.strategy == strategy)
             .where(strategy_runs.c.symbol == symbol).order_by(strategy_runs.c.created_at.desc()).limit(1))
    with engine.connect() as conn:
        found = conn.execute(query).scalar()
    if found is None:
        raise InputError(f"no stored run of {strategy} on {symbol}; run `ibkrtool strategy {strategy} "
                         f"--symbol {symbol}` first or pass --positions FILE")
    return str(found)


def load_run_targets(engine: Engine, run_id: str) -> RunTargets:
    """A stored run's positions as ``Targets``; raises ``InputError`` for an unknown run id."""
    from ibkrtool.store.strategy_runs import load_strategy_run

    loaded = load_strategy_run(engine, run_id)
    if loaded is None:
        raise InputError(f"no strategy run {run_id!r} in the database (see `ibkrtool db runs`)")
    run, frame = loaded
    return RunTargets(run_id, run["symbol"], run["bar_size"], run["what_to_show"], run["conid"], from_frame(frame),
                      run_id)


def bars_for(engine: Engine | None, conid: int | None, bar_size: str, what_to_show: str,
             targets: Targets) -> pd.DataFrame:
    """Stored bars covering the targets' span plus one day (for next-open fills); empty if none are stored."""
    from ibkrtool.store.bars import read_bars

    if engine is None or conid is None or not len(targets):
        from ibkrtool.ib.history import empty_bars

        return empty_bars()
    return read_bars(engine, conid, bar_size, what_to_show, targets.ts[0], targets.ts[-1] + timedelta(days=5))
