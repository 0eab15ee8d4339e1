"""Pacing benchmark: a 1-second SPY backfill needing 150+ requests, through the sim at ``--pacing-scale 0.01``.

Reports wall time against
  (a) the seed collector's schedule: a fixed 12 s pause after every request (scaled the same way), and
  (b) the theoretical minimum under IB's rules for the same request sequence (the planner with no safety margin
      and zero latency),
plus the pacing violations the sim counted. Goal: 0 violations, within 5 % of the minimum.

The sim runs as its own process (``ibkrtool sim --pacing-scale 0.01``), like a real gateway; its exit summary gives
the violations it counted. Run: ``.venv/bin/python bench/pacing.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from ibkrtool.data.backfill import BackfillOptions, run_backfill, validate
from ibkrtool.ib.contracts import qualify, to_ib
from ibkrtool.ib.gateway import open_gateway
from ibkrtool.ib.history import fetch_bars
from ibkrtool.ib.pacing import PacingPlanner, PacingRules
from ibkrtool.ib.session import ConnectOptions, ib_session
from ibkrtool.runtime import steady_gc
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db

UTC = timezone.utc
SIM_START = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
SCALE = 0.01
SEED_PAUSE_S = 12.0


def options(start: str, end: str) -> BackfillOptions:
    return BackfillOptions(("SPY",), "1s", None, start, end, rth=False, pacing_scale=SCALE, timeout_s=30)


async def ours(port: int, url: str, opts: BackfillOptions) -> tuple[float, int, object, tuple[int, float]]:
    engine = open_engine(url)
    init_db(engine)
    async with open_gateway(ConnectOptions(port=port)) as gateway:
        plan_only = await run_backfill(gateway, engine, BackfillOptions(**{**opts.__dict__, "dry_run": True}), NOW)
        with steady_gc():  # as `ibkrtool backfill` runs it
            t0 = time.perf_counter()
            report = await run_backfill(gateway, engine, opts, NOW)
            wall = time.perf_counter() - t0
        ledger = (gateway.pacer.bookings, gateway.pacer.booking_s)
    assert report.requests_planned == plan_only.requests_planned
    return wall, report.requests_sent, report, ledger


async def seed(port: int, opts: BackfillOptions) -> tuple[float, int]:
    """The seed collector: same requests, one after another, a fixed (scaled) 12 s pause after each."""
    from ibkrtool.ib.chunks import plan_series

    bar_size, jobs = validate(opts, NOW)
    async with ib_session(ConnectOptions(port=port)) as ib:
        (instrument, what, window), = jobs
        contract = await qualify(ib, instrument)
        plan = plan_series(instrument, contract.conid, bar_size, what, opts.rth, window, [])
        t0 = time.perf_counter()
        bars = 0
        for chunk in plan.chunks:
            try:
                bars += len(await fetch_bars(ib, to_ib(contract), chunk.request(bar_size, what, opts.rth), bar_size))
            except Exception:
                pass
            await asyncio.sleep(SEED_PAUSE_S * SCALE)
        return time.perf_counter() - t0, len(plan.chunks)


class Sim:
    port: int
    violations: int = -1


@contextmanager
def sim_process() -> Iterator[Sim]:
    """``ibkrtool sim`` in a child process on a free port; ``violations`` is read from its exit summary."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ibkrtool", "sim", "--port", str(port), "--start",
                             SIM_START.isoformat().replace("+00:00", "Z"), "--pacing-scale", str(SCALE)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sim = Sim()
    sim.port = port
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield sim
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        found = re.search(r"(\d+) pacing violations", err)
        sim.violations = int(found.group(1)) if found else -1


def minimum_s(report_plans: list, rules: PacingRules | None = None) -> float:
    """Last release time under IB's rules (pacing + TWS's 50 messages/s), no margin, zero latency."""
    ib_only = PacingRules(margin_fraction=0.0, margin_min_s=0.0, max_per_s=50)
    planner = PacingPlanner(SCALE, rules=rules or ib_only)
    times = planner.plan(report_plans, 0.0)
    return times[-1] - times[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2026-11-13")
    parser.add_argument("--end", default="2026-11-19")
    parser.add_argument("--skip-seed", action="store_true", help="skip the slow baseline run")
    args = parser.parse_args()
    opts = options(args.start, args.end)
    with tempfile.TemporaryDirectory() as tmp:
        with sim_process() as sim:
            wall, sent, report, (bookings, booking_s) = asyncio.run(ours(sim.port, f"sqlite:///{tmp}/bench.db",
                                                                          opts))
        violations = sim.violations
        from ibkrtool.ib.chunks import plan_series

        bar_size, jobs = validate(opts, NOW)
        (instrument, what, window), = jobs
        sequence = [plan_series(instrument, 756733, bar_size, what, opts.rth, window, []).hist_request(c)
                    for c in plan_series(instrument, 756733, bar_size, what, opts.rth, window, []).chunks]
        floor = minimum_s(sequence)
        print(f"requests: {report.requests_planned} planned, {sent} sent, {report.bars_stored} bars stored")
        print(f"ibkrtool backfill: {wall:6.2f} s wall, {violations} pacing violations counted by the sim")
        print(f"shared ledger (SQLite): {bookings} locked check-and-book transactions, "
              f"{1000 * booking_s / max(1, bookings):.2f} ms each, {booking_s:.3f} s in all "
              f"({100 * booking_s / wall:.1f} % of wall)")
        print(f"theoretical minimum under IB's rules for this sequence: {floor:6.2f} s "
              f"→ ratio {wall / floor:.3f} (goal ≤ 1.05)")
        planned = minimum_s(sequence, PacingRules())
        print(f"ibkrtool's own schedule at zero latency (safety margins, 40 requests/s): {planned:6.2f} s "
              f"(+{100 * (planned / floor - 1):.1f} %); the rest is answer time: a request counts as sent until its "
              "answer is decoded, which paces the next ones under IB's 2-second burst rule")
        if not args.skip_seed:
            with sim_process() as sim:
                seed_wall, _ = asyncio.run(seed(sim.port, opts))
            seed_violations = sim.violations
            print(f"seed collector (12 s pause × {SCALE}): {seed_wall:6.2f} s wall, {seed_violations} violations "
                  f"→ ibkrtool is {seed_wall / wall:.2f}× faster")


if __name__ == "__main__":
    main()
