"""The order lock (``store.locks``) on a real database, both backends: one holder per (account, instrument), others
wait and give up with ``LockBusy``; released on errors; SQLite takes over a row whose process is gone."""

from __future__ import annotations

import asyncio
import socket
from datetime import datetime, timezone

import pytest
from sqlalchemy import insert, select

from ibkrtool.store.engine import open_engine
from ibkrtool.store.locks import LockBusy, advisory_key, order_lock, order_lock_key
from ibkrtool.store.migrate import init_db
from ibkrtool.store.tables import order_locks

GONE_PID = 2**30 - 1  # above any Linux pid_max: no such process


@pytest.fixture
def engine(db_url: str):
    engine = open_engine(db_url)
    init_db(engine)
    yield engine
    engine.dispose()


def test_a_held_lock_makes_others_wait_then_give_up_and_is_released_on_errors(engine) -> None:
    key = order_lock_key("DU1234567", 756733)

    async def scenario() -> list[str]:
        seen = []
        async with order_lock(engine, key):
            with pytest.raises(LockBusy, match="is held by"):
                async with order_lock(engine, key, wait_s=0.1, poll_s=0.02):
                    seen.append("entered twice")
            async with order_lock(engine, order_lock_key("DU1234567", 320227571), wait_s=0.1):
                seen.append("another instrument")
        with pytest.raises(RuntimeError):
            async with order_lock(engine, key):
                raise RuntimeError("boom")
        async with order_lock(engine, key, wait_s=0.1):
            seen.append("free again")
        return seen

    assert asyncio.run(scenario()) == ["another instrument", "free again"]


def test_sqlite_takes_over_a_row_whose_process_is_gone(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    init_db(engine)
    key = order_lock_key("DU1234567", 756733)
    with engine.begin() as conn:
        conn.execute(insert(order_locks).values(lock_key=key, owner_pid=GONE_PID, owner_host=socket.gethostname(),
                                                acquired_at=datetime.now(timezone.utc)))

    async def take() -> None:
        async with order_lock(engine, key, wait_s=0.1):
            pass

    asyncio.run(take())
    with engine.connect() as conn:
        assert conn.execute(select(order_locks)).all() == []  # taken over, then released
    with engine.begin() as conn:  # a row of another host cannot be checked: it is waited for
        conn.execute(insert(order_locks).values(lock_key=key, owner_pid=GONE_PID, owner_host="elsewhere",
                                                acquired_at=datetime.now(timezone.utc)))
    with pytest.raises(LockBusy, match=f"process {GONE_PID} on elsewhere"):
        asyncio.run(take())


def test_advisory_keys_are_stable_signed_64_bit() -> None:
    key = advisory_key(order_lock_key("DU1234567", 756733))
    assert key == advisory_key("orders DU1234567 756733") and -(2**63) <= key < 2**63
    assert key != advisory_key(order_lock_key("DU1234568", 756733))
