"""Where ``execute`` finds its targets and bars: a stored strategy run (by id, or the latest of a strategy on a
symbol) or a positions CSV; bars for simulated fills from the store or a bars CSV."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ibkrtool.errors import InputError
from ibkrtool.execution.targets import Targets, from_frame
from ibkrtool.store.tables import strategy_runs


@dataclass(frozen=True)
class RunTargets:
    run_id: str
    symbol: str
    bar_size: str
    what_to_show: str
    conid: int | None
    targets: Targets


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
    return RunTargets(run_id, run["symbol"], run["bar_size"], run["what_to_show"], run["conid"], from_frame(frame))


def bars_for(engine: Engine | None, conid: int | None, bar_size: str, what_to_show: str,
             targets: Targets) -> pd.DataFrame:
    """Stored bars covering the targets' span plus one day (for next-open fills); empty if none are stored."""
    from ibkrtool.store.bars import read_bars

    if engine is None or conid is None or not len(targets):
        from ibkrtool.ib.history import empty_bars

        return empty_bars()
    return read_bars(engine, conid, bar_size, what_to_show, targets.ts[0], targets.ts[-1] + timedelta(days=5))
