"""Benchmark start-up: ``ibkrtool --help``, ``--version`` and every ``ibkrtool <cmd> --help``, figures and ratios
from one run against ``python -c 'import <module>'`` baselines.

Each figure is the best of ``--repeat`` runs of a fresh process (wall time), after one warm-up run.
Goals: ``ibkrtool --help`` < 0.3 s; ``<cmd> --help`` < 0.3 s once command modules import heavy libraries
(pandas, numpy, SQLAlchemy, ib_async, exchange_calendars, matplotlib) only inside function bodies; a command's
start-up <= 1.2x ``python -c 'import <the modules it really imported, ours included>'`` (its "needs" baseline).
For each command the heavy packages its ``--help`` imported are listed (from ``python -X importtime``), so a
module still importing them at top level is easy to spot.

Usage: .venv/bin/python bench/startup.py [--repeat N]  (~30 s)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
IBKRTOOL = str(Path(PYTHON).with_name("ibkrtool"))
HEAVY = ("pandas", "numpy", "sqlalchemy", "ib_async", "ib_insync", "exchange_calendars", "matplotlib", "eventkit",
         "psycopg2", "scipy", "pyarrow", "polars")
ENV = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
GOAL_HELP_S = 0.3
GOAL_RATIO = 1.2


def best_of(args: list[str], repeat: int) -> float:
    warm = subprocess.run(args, capture_output=True, text=True, env=ENV, cwd=ROOT)  # file cache and .pyc files
    if warm.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {warm.returncode}: {warm.stderr.strip()[-500:]}")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, capture_output=True, env=ENV, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return min(times)


def imported_modules(args: list[str]) -> list[str]:
    """Every non-stdlib module (dotted) the ``ibkrtool`` invocation imported (python -X importtime)."""
    code = f"import sys; sys.argv = {['ibkrtool', *args]!r}; from ibkrtool.cli.main import run; run()"
    err = subprocess.run([PYTHON, "-X", "importtime", "-c", code], capture_output=True, text=True, env=ENV,
                         cwd=ROOT).stderr
    names = [m.group(1).strip() for m in re.finditer(r"^import time:.*\|.*\| (.+)$", err, re.M)]
    third = set(imported_packages(args))
    return [n for n in names if n.split(".")[0] in third]


def needs_code(modules: list[str]) -> str:
    """``python -c`` code importing ``modules`` in the order the invocation did (each may fail alone)."""
    return ("import importlib\nfor m in " + repr(modules) + ":\n    try:\n        importlib.import_module(m)\n"
            "    except Exception:\n        pass\n")


def imported_packages(args: list[str]) -> list[str]:
    """Top-level non-stdlib packages the ``ibkrtool`` invocation imported, ibkrtool's own modules included: the
    modules a command really uses are ours as well as its libraries' (python -X importtime)."""
    code = f"import sys; sys.argv = {['ibkrtool', *args]!r}; from ibkrtool.cli.main import run; run()"
    err = subprocess.run([PYTHON, "-X", "importtime", "-c", code], capture_output=True, text=True, env=ENV,
                         cwd=ROOT).stderr
    names = {m.group(1).strip().split(".")[0] for m in re.finditer(r"^import time:.*\|.*\| (.+)$", err, re.M)}
    stdlib = set(sys.stdlib_module_names) | {"sitecustomize", "usercustomize"}
    return sorted(n for n in names if n.isidentifier() and n not in stdlib and not n.startswith("_")
                  and _importable(n))


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def command_paths() -> list[list[str]]:
    sys.path.insert(0, str(ROOT))
    from ibkrtool.cli.main import COMMANDS

    paths = [[name] for name in COMMANDS]
    return [*paths, ["db", "import", "bars"], ["db", "export", "bars"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat

    python_s = best_of([PYTHON, "-c", "pass"], repeat)
    pandas_s = best_of([PYTHON, "-c", "import pandas"], repeat)
    typer_s = best_of([PYTHON, "-c", "import typer"], repeat)
    print(f"baselines (best of {repeat}): python -c pass {python_s:.3f} s, import typer {typer_s:.3f} s, "
          f"import pandas {pandas_s:.3f} s")
    failures = []
    for label, args in (("--help", ["--help"]), ("--version", ["--version"])):
        took = best_of([IBKRTOOL, *args], repeat)
        ok = took < GOAL_HELP_S
        failures += [] if ok else [f"ibkrtool {label}"]
        print(f"ibkrtool {label:10s} {took:.3f} s = {took / pandas_s:.2f}x import pandas, "
              f"{took / typer_s:.2f}x import typer  goal < {GOAL_HELP_S} s: {'ok' if ok else 'MISSED'}")
    print(f"\n{'command --help':24s} {'time':>7s} {'needs':>7s} {'ratio':>6s}  goals  heavy packages imported")
    for path in command_paths():
        took = best_of([IBKRTOOL, *path, "--help"], repeat)
        packages = imported_packages([*path, "--help"])
        needs = best_of([PYTHON, "-c", needs_code(imported_modules([*path, "--help"]))], repeat)
        heavy = [p for p in packages if p in HEAVY]
        fast, lean = took < GOAL_HELP_S, took <= GOAL_RATIO * needs
        if not (fast and lean):
            failures.append(f"ibkrtool {' '.join(path)} --help")
        goals = ("<0.3s " if fast else "SLOW  ") + ("1.2x" if lean else "OVER")
        print(f"{' '.join(path):24s} {took:6.3f}s {needs:6.3f}s {took / needs:5.2f}x  {goals}  "
              f"{', '.join(heavy) or '-'}")
    print(f"\n'needs' = python -c 'import <every non-stdlib module the invocation imported>'; ratio = time / needs "
          f"(goal <= {GOAL_RATIO}x)")
    print("goals missed: " + (", ".join(failures) if failures else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
