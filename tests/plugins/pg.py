"""PostgreSQL for tests: ``IBKRTOOL_TEST_PG_URL`` if set, else a throwaway cluster started from the installed
binaries on a free loopback port (as the ``postgres`` user when running as root), once per session.

Without either, PostgreSQL tests skip with the reason, unless ``IBKRTOOL_TEST_REQUIRE_PG=1`` makes that a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)]


class _Cluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="ibkrtool-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        os.chmod(self.root, 0o755)

    def _run(self, *args: str) -> None:
        subprocess.run(_as_pg_user([str(a) for a in args]), check=True, capture_output=True, text=True)

    def start(self) -> str:
        self._run(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-o", opts, "-l", self.root / "log", "-w", "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("IBKRTOOL_TEST_REQUIRE_PG") == "1":
        pytest.fail(f"PostgreSQL is required (IBKRTOOL_TEST_REQUIRE_PG=1) but {reason}")
    pytest.skip(f"no PostgreSQL: {reason}; set IBKRTOOL_TEST_PG_URL or install PostgreSQL server binaries")


def pg_engine(url: str, **kwargs: object):
    """An engine on psycopg2 (SQLAlchemy 2.1 would otherwise pick psycopg 3 for ``postgresql://``)."""
    return create_engine(make_url(url).set(drivername="postgresql+psycopg2"), **kwargs)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """Admin URL of a PostgreSQL server for this test session."""
    given = os.environ.get("IBKRTOOL_TEST_PG_URL")
    if given:
        yield given
        return
    bindir = _pg_bin()
    if bindir is None:
        _unavailable("no initdb found")
    if os.geteuid() == 0 and shutil.which("runuser") is None and shutil.which("su") is None:
        _unavailable("running as root without runuser/su to start the server as 'postgres'")
    cluster = _Cluster(bindir)
    try:
        url = cluster.start()
    except (subprocess.CalledProcessError, OSError, KeyError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        cluster.stop()
        _unavailable(f"starting a throwaway cluster failed: {detail.strip().splitlines()[-1:]}")
    try:
        yield url
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """URL of a fresh, empty database on the test server; dropped afterwards."""
    name = f"ibkrtool_test_{uuid.uuid4().hex[:12]}"
    admin = pg_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'ibkrtool-test.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Every storage test runs on both backends."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
