"""What a strategy is, the registry of strategies by name, and parameter parsing from ``key=value`` text."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ibkrtool.errors import InputError


@dataclass(frozen=True)
class StrategyResult:
    """``positions``: float64 target direction in {-1, 0, 1} decided at each bar's CLOSE (act on it from the next
    bar). ``signals``: object array, the reason the position changed at that bar (``"entry:breakout"``) or None.
    ``indicators``: the overlay series, indexed like the bars. ``warmup``: leading bars without a decision."""

    positions: np.ndarray
    signals: np.ndarray
    indicators: pd.DataFrame
    warmup: int


@dataclass(frozen=True)
class Strategy:
    """A named pure function ``run(bars, params) -> StrategyResult`` with a frozen parameter dataclass."""

    name: str
    params_type: type
    description: str
    compute: Callable[[pd.DataFrame, Any], StrategyResult]
    warmup_of: Callable[[Any], int]

    def defaults(self) -> Any:
        return self.params_type()

    def warmup(self, params: Any) -> int:
        """Bars before the first bar that can carry a decision."""
        return self.warmup_of(params)

    def run(self, bars: pd.DataFrame, params: Any = None) -> StrategyResult:
        """Positions for ``bars`` (the house bars frame: UTC ``ts`` index, float columns).

        Raises ``InputError`` if the bars lack OHLC columns, are unsorted or duplicated, hold NaN prices, or are
        fewer than the warm-up needs.
        """
        params = self.defaults() if params is None else params
        check_bars(bars, self.warmup(params) + 1, self.name)
        return self.compute(bars, params)


_REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    _REGISTRY[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name``; raises ``InputError`` listing the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown strategy {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def list_strategies() -> list[Strategy]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def param_fields(strategy: Strategy) -> list[tuple[str, str, Any]]:
    """``(name, type name, default)`` of each parameter, in declaration order."""
    defaults = strategy.defaults()
    return [(f.name, _type_name(f.type), getattr(defaults, f.name)) for f in dataclasses.fields(strategy.params_type)]


def _type_name(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def parse_params(strategy: Strategy, raw: Mapping[str, str]) -> Any:
    """Build the strategy's parameter dataclass from text values; raises ``InputError`` on an unknown name, a value
    that does not parse as the parameter's type, or a value the strategy refuses (its ``__post_init__``)."""
    known = {name: kind for name, kind, _ in param_fields(strategy)}
    values: dict[str, Any] = {}
    for key, text in raw.items():
        name = key.strip().replace("-", "_")
        if name not in known:
            raise InputError(f"strategy {strategy.name} has no parameter {key!r}; it has: {', '.join(known)}")
        values[name] = _convert(strategy.name, name, known[name], str(text).strip())
    try:
        return strategy.params_type(**values)
    except ValueError as exc:
        raise InputError(f"strategy {strategy.name}: {exc}") from None


_TRUE, _FALSE = {"1", "true", "yes", "on", "y"}, {"0", "false", "no", "off", "n"}


def _convert(strategy: str, name: str, kind: str, text: str) -> Any:
    try:
        if kind == "bool":
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        return text
    except ValueError:
        raise InputError(f"strategy {strategy}: parameter {name}={text!r} is not a valid {kind}") from None


def parse_param_args(items: list[str]) -> dict[str, str]:
    """``["pivot=5", "ma_type=ema"]`` → dict; raises ``InputError`` on an item without ``=``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param {item!r} must look like key=value")
        out[key.strip()] = value
    return out


def check_bars(bars: pd.DataFrame, min_bars: int, strategy: str) -> None:
    """Refuse bars a strategy cannot use; every problem is one ``InputError`` line that says what to fix."""
    missing = [c for c in ("open", "high", "low", "close") if c not in bars.columns]
    if missing:
        raise InputError(f"bars lack the column(s) {', '.join(missing)}; a strategy needs open, high, low, close")
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex):
        raise InputError("bars must be indexed by timestamp (ts)")
    if index.has_duplicates:
        raise InputError(f"bars have duplicated timestamps (first: {index[index.duplicated()][0]}); deduplicate them")
    if not index.is_monotonic_increasing:
        raise InputError("bars are not sorted by timestamp; sort them first")
    prices = bars[["open", "high", "low", "close"]].to_numpy(dtype=np.float64)
    if np.isnan(prices).any():
        row = int(np.flatnonzero(np.isnan(prices).any(axis=1))[0])
        raise InputError(f"bars have NaN prices (first at {index[row]}); fill or drop those bars")
    if len(bars) < min_bars:
        raise InputError(f"{strategy} needs at least {min_bars} bars for its warm-up, got {len(bars)}")


def signals_from_positions(positions: np.ndarray, reasons: Mapping[tuple[float, float], str]) -> np.ndarray:
    """Label each change of position with ``reasons[(before, after)]``; other bars get None."""
    signals = np.full(positions.size, None, dtype=object)
    before = np.concatenate(([0.0], positions[:-1]))
    for i in np.flatnonzero(before != positions):
        signals[i] = reasons[(float(before[i]), float(positions[i]))]
    return signals
