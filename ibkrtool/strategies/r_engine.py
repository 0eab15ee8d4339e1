"""Run a strategy through R (``r/run_strategy_pipeline.R`` on TTR) with Rscript, in a temporary folder.

The bars go to R as the bars CSV; R writes the same per-bar position CSV as the Python engine (ts, close, position,
signal, indicator columns) with 17 significant digits, so results compare exactly.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ibkrtool.errors import IbkrToolError, InputError
from ibkrtool.resources import r_dir
from ibkrtool.strategies.base import Strategy, StrategyResult

INSTALL_HINT = 'install R and TTR: apt-get install r-base-core r-cran-ttr, or in R: install.packages("TTR")'
_INPUT_EXIT = 3  # the R script's status for bad input (one line on stderr)


class REngineError(IbkrToolError):
    """Rscript failed unexpectedly; ``stderr`` holds R's own output for the user to read (exit 1)."""

    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


def find_rscript() -> str:
    """Path of Rscript (``IBKRTOOL_RSCRIPT`` or the PATH); raises ``InputError`` with the install line if missing."""
    path = os.environ.get("IBKRTOOL_RSCRIPT") or shutil.which("Rscript")
    if not path or not Path(path).exists():
        raise InputError(f"Rscript not found; {INSTALL_HINT}")
    return path


def param_args(params: Any) -> list[str]:
    """A parameter dataclass as ``key=value`` arguments for the R script."""
    out = []
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = value if isinstance(value, str) else repr(value)
        out.append(f"{field.name}={text}")
    return out


def child_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for Rscript: ours without ibkrtool's settings, which may hold the database password; R
    needs none of them (it reads bars from a file and writes positions to another)."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if not k.startswith("IBKRTOOL_")}


def run_r(strategy: Strategy, bars: pd.DataFrame, params: Any, timeout_s: float = 600.0) -> StrategyResult:
    """Positions of ``strategy`` on ``bars`` computed by R. Raises ``InputError`` (missing Rscript/TTR, a strategy
    R does not implement, input R refuses) or ``REngineError`` carrying R's stderr when R fails otherwise."""
    rscript = find_rscript()
    script = r_dir() / "run_strategy_pipeline.R"
    with tempfile.TemporaryDirectory(prefix="ibkrtool-r-") as tmp:
        source, target = Path(tmp) / "bars.csv", Path(tmp) / "positions.csv"
        _write_input(bars, source)
        cmd = [rscript, "--vanilla", str(script), strategy.name, str(source), str(target), *param_args(params)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=child_env())
        if proc.returncode != 0:
            _raise(proc)
        out = pd.read_csv(target, dtype={"signal": object, "ts": object})
    return _result(bars, out, strategy.warmup(params))


def _write_input(bars: pd.DataFrame, path: Path) -> None:
    frame = bars[["open", "high", "low", "close"]].copy()
    frame.insert(0, "ts", bars.index.strftime("%Y-%m-%dT%H:%M:%S%z"))
    frame.to_csv(path, index=False, float_format="%.17g")


def _raise(proc: subprocess.CompletedProcess) -> None:
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit status {proc.returncode}"
    if "there is no package called" in proc.stderr and "TTR" in proc.stderr:
        raise InputError(f"R package TTR is not installed; {INSTALL_HINT}")
    if proc.returncode == _INPUT_EXIT:
        raise InputError(f"R engine: {last}")
    raise REngineError(f"the R engine failed (exit {proc.returncode}): {last}", proc.stderr)


def _result(bars: pd.DataFrame, out: pd.DataFrame, warmup: int) -> StrategyResult:
    if len(out) != len(bars):
        raise REngineError(f"the R engine returned {len(out)} rows for {len(bars)} bars", "")
    signals = np.array([s if isinstance(s, str) and s else None for s in out["signal"]], dtype=object)
    indicators = out.drop(columns=["ts", "close", "position", "signal"]).astype(np.float64)
    indicators.index = bars.index
    return StrategyResult(out["position"].to_numpy(np.float64), signals, indicators, warmup)
