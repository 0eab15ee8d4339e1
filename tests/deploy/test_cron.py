"""examples/ibkrtool-cron.sh (lock, log, exit status) and examples/crontab (schedules, real ibkrtool options)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from ibkrtool import calendars
from ibkrtool.model import Instrument

DEADLINE_S = 30.0

# A stand-in for ibkrtool that records its call, says it started, then holds on until told to finish.
FAKE_SLOW = """#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "{calls}"
touch "{started}"
for _ in $(seq 600); do [ -e "{release}" ] && exit 0; sleep 0.05; done
exit 1
"""


def _wrapper(repo_root: Path) -> str:
    return str(repo_root / "examples" / "ibkrtool-cron.sh")


def _env(tmp_path: Path, bin_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBKRTOOL_")}
    env.update(IBKRTOOL_BIN=str(bin_path), IBKRTOOL_LOG_DIR=str(tmp_path / "log"), COLUMNS="200",
               IBKRTOOL_DB_URL=f"sqlite:///{tmp_path / 'cron.db'}")
    env.update(extra)
    return env


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    end = time.monotonic() + DEADLINE_S
    while not path.exists():
        assert proc.poll() is None, f"first run ended early with exit {proc.returncode}"
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.02)


def _fake(tmp_path: Path, body: str) -> Path:
    fake = tmp_path / "fake-ibkrtool"
    fake.write_text(body)
    fake.chmod(0o755)
    return fake


def test_second_concurrent_run_skips_while_first_holds_the_lock(tmp_path: Path, repo_root: Path) -> None:
    calls, started, release = tmp_path / "calls", tmp_path / "started", tmp_path / "release"
    fake = _fake(tmp_path, FAKE_SLOW.format(calls=calls, started=started, release=release))
    env = _env(tmp_path, fake)
    first = subprocess.Popen([_wrapper(repo_root), "backfill", "--symbol", "SPY"], env=env)
    try:
        _wait_for(started, first)
        second = subprocess.run([_wrapper(repo_root), "backfill", "--symbol", "SPY"], env=env, timeout=DEADLINE_S)
        assert second.returncode == 0  # a skip is not a failure for cron to mail
        release.touch()
        assert first.wait(timeout=DEADLINE_S) == 0
    finally:
        release.touch()
        first.wait(timeout=DEADLINE_S)
    assert calls.read_text().splitlines() == ["backfill --symbol SPY"]  # the command ran once
    log = (tmp_path / "log" / "backfill.log").read_text()
    assert "skipped: the previous run still holds" in log
    assert log.count("start: ") == 1 and "end: exit 0" in log
    # The lock dies with its holder: the next run goes ahead.
    subprocess.run([_wrapper(repo_root), "backfill", "--symbol", "SPY"], env=env, timeout=DEADLINE_S, check=True)
    assert len(calls.read_text().splitlines()) == 2


def test_different_jobs_do_not_block_each_other(tmp_path: Path, repo_root: Path) -> None:
    calls, started, release = tmp_path / "calls", tmp_path / "started", tmp_path / "release"
    fake = _fake(tmp_path, FAKE_SLOW.format(calls=calls, started=started, release=release))
    env = _env(tmp_path, fake)
    first = subprocess.Popen([_wrapper(repo_root), "--name", "backfill-1s", "backfill"], env=env)
    try:
        _wait_for(started, first)
        release.touch()  # lets the second one finish as soon as it starts
        other = subprocess.run([_wrapper(repo_root), "--name", "backfill-1m", "backfill"], env=env, timeout=DEADLINE_S)
        assert other.returncode == 0
    finally:
        release.touch()
        first.wait(timeout=DEADLINE_S)
    assert len(calls.read_text().splitlines()) == 2
    assert "skipped" not in (tmp_path / "log" / "backfill-1m.log").read_text()


def test_exit_status_and_output_go_to_cron_and_the_log(tmp_path: Path, repo_root: Path) -> None:
    fake = _fake(tmp_path, "#!/usr/bin/env bash\necho 'gateway 127.0.0.1:4002 unreachable' >&2\nexit 4\n")
    run = subprocess.run([_wrapper(repo_root), "collect", "--duration", "1m"], env=_env(tmp_path, fake),
                         capture_output=True, text=True, timeout=DEADLINE_S)
    assert run.returncode == 4
    assert run.stdout == "" and run.stderr == ""  # all of it in the log, so cron mails only the failure
    log = (tmp_path / "log" / "collect.log").read_text()
    assert "gateway 127.0.0.1:4002 unreachable" in log
    assert "start: " in log and "end: exit 4" in log


def test_usage_errors(tmp_path: Path, repo_root: Path) -> None:
    env = _env(tmp_path, tmp_path / "nothing")
    assert subprocess.run([_wrapper(repo_root)], env=env, capture_output=True).returncode == 2
    assert subprocess.run([_wrapper(repo_root), "--name", "../x", "db"], env=env, capture_output=True).returncode == 2


def test_a_missing_or_relative_sqlite_database_is_refused(tmp_path: Path, repo_root: Path) -> None:
    calls = tmp_path / "calls"
    fake = _fake(tmp_path, f'#!/usr/bin/env bash\necho "$*" >> "{calls}"\n')
    for url in ("", "sqlite:///ibkrtool.db"):
        run = subprocess.run([_wrapper(repo_root), "db", "status"], env=_env(tmp_path, fake, IBKRTOOL_DB_URL=url),
                             capture_output=True, text=True)
        assert run.returncode == 2 and "absolute" in run.stderr
    relative_flag = [_wrapper(repo_root), "--db", "sqlite:///x.db", "db", "status"]
    assert subprocess.run(relative_flag, env=_env(tmp_path, fake), capture_output=True).returncode == 2
    assert not calls.exists()


def test_a_password_on_the_command_line_never_reaches_the_log(tmp_path: Path, repo_root: Path) -> None:
    fake = _fake(tmp_path, "#!/usr/bin/env bash\nexit 0\n")
    url = "postgresql://trader:s3cr3t-pw@db.internal/market"
    subprocess.run([_wrapper(repo_root), "--db", url, "db", "status"], env=_env(tmp_path, fake), check=True)
    log = "".join(p.read_text() for p in (tmp_path / "log").glob("*.log"))
    assert "s3cr3t-pw" not in log and "trader:***@db.internal" in log


def test_real_ibkrtool_through_the_wrapper_with_an_env_file(tmp_path: Path, repo_root: Path, venv_bin: Path,
                                                             sqlite_url: str) -> None:
    env_file = tmp_path / "ibkrtool.env"
    env_file.write_text(f"IBKRTOOL_DB_URL={sqlite_url}\n")
    env = _env(tmp_path, venv_bin / "ibkrtool", IBKRTOOL_ENV_FILE=str(env_file))
    subprocess.run([_wrapper(repo_root), "db", "init"], env=env, check=True, timeout=120)
    subprocess.run([_wrapper(repo_root), "--name", "quality-report", "db", "status", "--json"], env=env, check=True,
                   timeout=120)
    log = (tmp_path / "log" / "quality-report.log").read_text()
    body = log[log.index("{"): log.rindex("}") + 1]
    assert json.loads(body)["schema_version"] >= 1


def test_trading_day_guard_follows_the_nyse_calendar(tmp_path: Path, repo_root: Path, venv_bin: Path) -> None:
    calls = tmp_path / "calls"
    fake = _fake(tmp_path, f'#!/usr/bin/env bash\necho "$*" >> "{calls}"\n')
    # The guard uses the Python next to IBKRTOOL_BIN: put the fake beside this venv's python.
    link = tmp_path / "bin"
    link.mkdir()
    (link / "ibkrtool").symlink_to(fake)
    (link / "python").symlink_to(venv_bin / "python")
    env = _env(tmp_path, link / "ibkrtool")
    subprocess.run([_wrapper(repo_root), "--trading-day", "backfill"], env=env, check=True, timeout=120)
    today = datetime.now(calendars.NEW_YORK).date()
    open_today = bool(calendars.sessions(Instrument.parse("SPY"), today, today))
    assert calls.exists() == open_today
    log = (tmp_path / "log" / "backfill.log").read_text()
    assert ("NYSE has no regular session today" in log) == (not open_today)


# ---------------------------------------------------------------- examples/crontab

_FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _cron_field_ok(field: str, lo: int, hi: int) -> bool:
    for part in field.split(","):
        body, _, step = part.partition("/")
        if step and not step.isdigit():
            return False
        if body == "*":
            continue
        bounds = body.split("-")
        if not all(b.isdigit() and lo <= int(b) <= hi for b in bounds) or len(bounds) > 2:
            return False
    return True


def _crontab_jobs(repo_root: Path) -> list[list[str]]:
    jobs = []
    for line in (repo_root / "examples" / "crontab").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        jobs.append(shlex.split(line))
    return jobs


def test_crontab_schedules_are_valid_and_cover_the_three_jobs(repo_root: Path) -> None:
    jobs = _crontab_jobs(repo_root)
    for job in jobs:
        for field, (lo, hi) in zip(job[:5], _FIELD_RANGES, strict=True):
            assert _cron_field_ok(field, lo, hi), f"bad cron field {field!r} in {job}"
        assert job[5] == "$IBKRTOOL_HOME/examples/ibkrtool-cron.sh"
    commands = [job[job.index("--") + 1:][:2] for job in jobs]
    assert ["collect", "--symbol"] in commands
    assert sum(c[0] == "backfill" for c in commands) >= 1
    assert ["db", "status"] in commands


@pytest.mark.parametrize("index", range(4))
def test_crontab_jobs_use_options_ibkrtool_really_has(repo_root: Path, venv_bin: Path, index: int) -> None:
    job = _crontab_jobs(repo_root)[index]
    args = job[job.index("--") + 1:]
    words = [a for a in args if not a.startswith("-") and "$" not in a and not re.match(r"^[\d.]", a)]
    command = words[:2] if words[:1] == ["db"] else words[:1]
    env = {**os.environ, "COLUMNS": "200"}
    help_text = subprocess.run([str(venv_bin / "ibkrtool"), *command, "--help"], env=env, capture_output=True,
                               text=True, check=True, timeout=120).stdout
    for option in (a for a in args if a.startswith("--")):
        assert re.search(rf"{re.escape(option)}\b", help_text), f"ibkrtool {' '.join(command)} has no {option}"
