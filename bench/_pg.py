"""A PostgreSQL server for benchmarks: ``IBKRTOOL_BENCH_PG_URL`` if set, else a throwaway cluster (the same one the
tests use, tests/plugins/pg.py) that is removed afterwards."""

from __future__ import annotations

import os
import resource
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from tests.plugins.pg import _Cluster, _pg_bin, pg_engine  # noqa: E402


@contextmanager
def pg_server() -> Iterator[str]:
    """Admin URL of a PostgreSQL server for the benchmark."""
    given = os.environ.get("IBKRTOOL_BENCH_PG_URL")
    if given:
        yield given
        return
    bindir = _pg_bin()
    if bindir is None:
        raise SystemExit("no PostgreSQL binaries found; set IBKRTOOL_BENCH_PG_URL")
    cluster = _Cluster(bindir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """URL of a new empty database on ``server_url``, dropped afterwards."""
    name = f"ibkrtool_bench_{uuid.uuid4().hex[:8]}"
    admin = pg_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB. Linux: VmHWM, which (unlike getrusage's ru_maxrss) starts
    afresh at exec, so a subprocess does not inherit its parent's peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
