"""Fixtures for storage tests: an initialised engine on each backend and synthetic bars."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An initialised database on SQLite and on PostgreSQL."""
    eng = open_engine(db_url)
    init_db(eng)
    yield eng
    eng.dispose()


def make_bars(n: int, start: str = "2024-01-02 14:30", freq: str = "1s", seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic bars (bars frame convention) starting at ``start`` UTC."""
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="ts")
    rng = np.random.default_rng(seed)
    close = 100 + rng.standard_normal(n).cumsum() * 0.01
    return pd.DataFrame({
        "open": close + 0.005, "high": close + 0.02, "low": close - 0.02, "close": close,
        "volume": rng.integers(1, 500, n).astype(float), "wap": close + 0.001,
        "bar_count": rng.integers(1, 50, n).astype(float)}, index=index)


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Engine]:
    """An initialised PostgreSQL database, for behaviour only PostgreSQL has (partitions, COPY)."""
    eng = open_engine(pg_url)
    init_db(eng)
    yield eng
    eng.dispose()
