"""Concurrent-pacing benchmark: two ``ibkrtool backfill`` processes on one gateway, one per symbol, against one
process fetching both symbols (the Airflow DAG maps one backfill per symbol; cron jobs overlap).

1-second bars of SPY and AAPL over 4 sessions with ``--all-hours`` (128 requests per symbol, 256 in all: more
than four 10-minute windows), through ``ibkrtool sim --pacing-scale 0.01`` running as its own process. Each case
gets a fresh sim (its own pacing budget) and a fresh database. Reports, per case: wall time from the first
process started to the last one ended, the violations the sim counted, and the retries the ``--json`` reports
show; then the ratio of the two processes' wall time to the single process's. Goal: 0 violations, 0 retries,
ratio ≤ 1.15. Last, the cost of one locked check-and-book round in the shared ledger (lock, read the ~60
bookings of a full window, insert, commit), which every request now pays before it leaves.

Run: ``.venv/bin/python bench/pacing_concurrent.py`` (about a minute; ``--pg`` for PostgreSQL, which starts a
throwaway cluster unless ``IBKRTOOL_BENCH_PG_URL`` is set).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass

from pacing import SCALE, sim_process

SYMBOLS = ("SPY", "AAPL")


@dataclass
class Case:
    wall_s: float
    violations: int
    retries: int
    requests_sent: int
    bars_stored: int
    exit_codes: list[int]


def command(url: str, port: int, client_id: int, symbols: tuple[str, ...], start: str, end: str) -> list[str]:
    args = [sys.executable, "-m", "ibkrtool", "--db", url, "--ib-port", str(port), "--client-id", str(client_id),
            "-q", "backfill", "--json", "--bar-size", "1s", "--start", start, "--end", end, "--all-hours",
            "--pacing-scale", str(SCALE)]
    for symbol in symbols:
        args += ["--symbol", symbol]
    return args


def run_case(url: str, groups: list[tuple[str, ...]], start: str, end: str) -> Case:
    """Start one ``ibkrtool backfill`` per group of symbols at once on a fresh sim; wait for all."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    subprocess.run([sys.executable, "-m", "ibkrtool", "--db", url, "db", "init"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    with sim_process() as sim:
        t0 = time.perf_counter()
        procs = [subprocess.Popen(command(url, sim.port, 11 + i, group, start, end), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i, group in enumerate(groups)]
        outputs = [p.communicate(timeout=600) for p in procs]
        wall = time.perf_counter() - t0
    reports = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            print(f"exit {proc.returncode}: {err.strip()[-500:]}", file=sys.stderr)
        try:
            reports.append(json.loads(out))
        except json.JSONDecodeError:
            reports.append({})
    return Case(wall, sim.violations, sum(r.get("retries", 0) for r in reports),
                sum(r.get("requests_sent", 0) for r in reports), sum(r.get("bars_stored", 0) for r in reports),
                [p.returncode for p in procs])


def booking_cost_ms(url: str, rounds: int = 300) -> float:
    """Mean wall time of one ``StoreLedger.book`` round that books, while two processes each book every 0.2 s
    at scale 0.01: ~60 bookings in the (6 s) window to read, as in a full 10-minute window of IB's."""
    from ibkrtool.ib.ledger import StoreLedger
    from ibkrtool.ib.pacing import HistRequest, PacingPlanner
    from ibkrtool.store.engine import open_engine
    from ibkrtool.store.migrate import init_db

    engine = open_engine(url)
    init_db(engine)
    now = [time.time()]
    other = StoreLedger(engine, "bench:1", PacingPlanner(SCALE), clock=lambda: now[0])
    mine = StoreLedger(open_engine(url), "bench:1", PacingPlanner(SCALE), clock=lambda: now[0])
    spent = 0.0
    for i in range(rounds + 30):
        now[0] += 0.2
        other.book(HistRequest("2", "TRADES", "1 secs", f"o{i}", "1800 S"), lambda _: (now[0], now[0]))
        t0 = time.perf_counter()
        mine.book(HistRequest("1", "TRADES", "1 secs", f"m{i}", "1800 S"), lambda _: (now[0], now[0]))
        spent += time.perf_counter() - t0 if i >= 30 else 0.0  # after the window filled
    return 1000 * spent / rounds


def show(name: str, case: Case) -> None:
    print(f"{name:34s} {case.wall_s:6.2f} s wall, exit {case.exit_codes}, {case.violations} violations, "
          f"{case.retries} retries, {case.requests_sent} requests, {case.bars_stored} bars")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2026-11-16")
    parser.add_argument("--end", default="2026-11-19")
    parser.add_argument("--pg", action="store_true", help="use PostgreSQL instead of SQLite")
    args = parser.parse_args()
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        if args.pg:
            from _pg import fresh_database, pg_server

            server = stack.enter_context(pg_server())
            urls = [stack.enter_context(fresh_database(server)) for _ in range(2)]
        else:
            urls = [f"sqlite:///{tmp}/one.db", f"sqlite:///{tmp}/two.db"]
        single = run_case(urls[0], [SYMBOLS], args.start, args.end)
        show("one process, both symbols:", single)
        together = run_case(urls[1], [(s,) for s in SYMBOLS], args.start, args.end)
        show("two processes, one symbol each:", together)
        print(f"two processes / one process: ratio {together.wall_s / single.wall_s:.3f} (goal ≤ 1.15, "
              "0 violations, 0 retries)")
        cost = booking_cost_ms(urls[0])
        print(f"one locked check-and-book round in the ledger ({'PostgreSQL' if args.pg else 'SQLite'}, "
              f"a full window to read): {cost:.2f} ms")


if __name__ == "__main__":
    main()
