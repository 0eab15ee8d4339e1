"""Parameter sweeps: every combination of a grid, run on all cores (process pool), ranked by a metric.

A sweep is a search, and the best of many backtests is an optimistic estimate of the future: with enough
combinations some will look good by chance. ``split`` keeps the last part of the data out of the ranking so the
chosen parameters can be checked on bars they were not picked on.
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ibkrtool.backtest.engine import BacktestConfig
from ibkrtool.backtest.runner import Market, Report, backtest_strategy, check_market_bars
from ibkrtool.errors import InputError

SORT_KEYS = {
    "sharpe": "sharpe", "sortino": "sortino", "return": "total_return_pct", "cagr": "cagr_pct",
    "drawdown": "max_drawdown_pct", "profit_factor": "profit_factor", "win_rate": "win_rate_pct",
    "trades": "trades", "expectancy": "expectancy",
}


def parse_grid(text: str) -> list[dict[str, str]]:
    """``"pivot=3,5,8 ma_period=20,50"`` → every combination as ``{name: text}``, in grid order.

    Raises ``InputError`` on a malformed item or a repeated name.
    """
    axes: dict[str, list[str]] = {}
    for item in (text or "").split():
        name, sep, values = item.partition("=")
        options = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not options:
            raise InputError(f"--grid item {item!r} must look like name=v1,v2,v3")
        if name in axes:
            raise InputError(f"--grid names {name!r} twice")
        axes[name] = options
    if not axes:
        raise InputError("--grid is empty; use e.g. --grid 'pivot=3,5,8 ma_period=20,50,100'")
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def sort_key(name: str) -> str:
    """The metric column a ``--sort`` name stands for; raises ``InputError`` listing the choices."""
    try:
        return SORT_KEYS[name]
    except KeyError:
        raise InputError(f"--sort {name!r} is not one of {', '.join(SORT_KEYS)}") from None


@dataclass(frozen=True)
class SweepJob:
    """Everything a worker needs besides the bars (which workers inherit once, not per task)."""

    strategy: Any
    config: BacktestConfig
    market: Market
    gaps: str = "warn"
    split: float | None = None
    bar_warnings: tuple[str, ...] | None = None  # from check_market_bars, computed once by run_sweep


COLUMNS = (("total_return_pct", "return%"), ("sharpe", "sharpe"), ("max_drawdown_pct", "max_dd%"),
           ("trades", "trades"), ("win_rate_pct", "win%"), ("profit_factor", "profit_factor"))
_SHARED: dict[str, Any] = {}


def _init(bars: pd.DataFrame, job: SweepJob) -> None:
    _SHARED["bars"], _SHARED["job"] = bars, job


def _one(params: Any) -> Report:
    job: SweepJob = _SHARED["job"]
    report = backtest_strategy(_SHARED["bars"], job.strategy, params, job.config, job.market, job.gaps, job.split,
                               list(job.bar_warnings) if job.bar_warnings is not None else None)
    # The ranking and the store need metrics and trades only: drop the per-bar series (first and last bar kept, for
    # the data range) so each result crossing back from a worker is kilobytes, not megabytes.
    report.indicators = None
    report.result.equity = report.result.equity.iloc[[0, -1]]
    report.result.position = report.result.position.iloc[[0, -1]]
    return report


def run_sweep(
    bars: pd.DataFrame,
    job: SweepJob,
    params_list: list[Any],
    workers: int | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> list[Report]:
    """Backtest every parameter set in ``params_list`` (already parsed); results in the same order.

    ``workers`` defaults to every core; 1 runs in this process. ``on_done(done, total)`` reports progress.
    Raises the first ``InputError`` a combination raises.
    """
    if job.bar_warnings is None:  # check the bars once here, not once per combination
        job = dataclasses.replace(job, bar_warnings=tuple(check_market_bars(bars, job.market, job.gaps)))
    workers = max(1, min(workers or os.cpu_count() or 1, len(params_list)))
    if workers == 1:
        _init(bars, job)
        out = []
        for k, params in enumerate(params_list, 1):
            out.append(_one(params))
            if on_done:
                on_done(k, len(params_list))
        return out
    # fork: workers inherit the bars instead of unpickling a copy each (Linux; elsewhere spawn pickles them once)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    chunk = max(1, len(params_list) // (workers * 4))
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(bars, job)) as pool:
        out = []
        for k, report in enumerate(pool.map(_one, params_list, chunksize=chunk), 1):
            out.append(report)
            if on_done:
                on_done(k, len(params_list))
    return out


def ranking(reports: list[Report], key: str, descending: bool | None = None) -> pd.DataFrame:
    """One row per run: parameters, headline metrics (in-/out-of-sample when split), sorted by ``key``.

    Drawdown sorts with the shallowest first; other metrics highest first. Missing values sort last.
    """
    rows = []
    for report in reports:
        ranked = report.segments.get("in_sample", report.metrics)
        row: dict[str, Any] = dict(report.params)
        for metric, label in COLUMNS:
            row[label] = ranked.get(metric)
        if "out_of_sample" in report.segments:
            oos = report.segments["out_of_sample"]
            row["oos_return%"] = oos.get("total_return_pct")
            row["oos_sharpe"] = oos.get("sharpe")
        row["_sort"] = ranked.get(key)
        rows.append(row)
    frame = pd.DataFrame(rows)
    ascending = False if descending is None else not descending
    frame = frame.sort_values("_sort", ascending=ascending, na_position="last", kind="stable")
    return frame.drop(columns="_sort").reset_index(drop=True)


def params_for(strategy: Any, raw_list: list[Mapping[str, str]], base: Mapping[str, str],
               parse: Callable[[Any, Mapping[str, str]], Any]) -> list[Any]:
    """Parse each grid combination (merged over the fixed ``--param`` values) with the registry's parser."""
    return [parse(strategy, {**base, **raw}) for raw in raw_list]
