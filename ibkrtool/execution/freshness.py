"""How old a signal is, and the rule that keeps old signals from being sent as market orders now.

A signal is decided at the close of its bar (``signal_ts + bar_s``); its age is the time from then to ``now``, the
gateway's clock. ``execute --replay`` refuses, before anything is sent, every pending signal older than
``--max-signal-age`` (default: one bar of the run's bar size). Pure: no I/O, ``now`` is given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from ibkrtool.errors import InputError
from ibkrtool.model.order import OrderIntent

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")


def parse_age(text: str) -> float:
    """``90s``, ``5m``, ``2h``, ``1d`` (a bare number is seconds) → seconds. Raises ``InputError``."""
    found = _AGE.fullmatch(text)
    if not found or float(found[1]) <= 0:
        raise InputError(f"--max-signal-age {text!r} is not understood; write e.g. 90s, 5m, 2h or 1d (positive)")
    return float(found[1]) * _UNITS[found[2] or "s"]


def age_text(seconds: float) -> str:
    """A duration for people: ``45s``, ``12m``, ``3h 05m``, ``6d 23h``."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def signal_age_s(intent: OrderIntent, bar_s: float, now: datetime) -> float:
    """Seconds from the close of ``intent``'s signal bar to ``now`` (both tz-aware)."""
    return (now - (intent.signal_ts + timedelta(seconds=bar_s))).total_seconds()


def check_fresh(intents: Sequence[OrderIntent], bar_s: float, max_age_s: float | None, now: datetime) -> None:
    """Raise ``InputError`` (exit 3) naming the oldest when any of ``intents`` is older than ``max_age_s`` (None:
    one bar, ``bar_s``)."""
    limit = max_age_s if max_age_s is not None else bar_s
    stale = [(signal_age_s(i, bar_s, now), i) for i in intents if signal_age_s(i, bar_s, now) > limit]
    if not stale:
        return
    age, oldest = max(stale, key=lambda pair: pair[0])
    raise InputError(
        f"{len(stale)} of {len(intents)} signals to replay are older than --max-signal-age {age_text(limit)}: the "
        f"oldest ({oldest.side.value} {oldest.quantity:g} {oldest.symbol}, bar {oldest.signal_ts:%Y-%m-%d %H:%M}Z) is "
        f"{age_text(age)} old by the gateway's clock ({now:%Y-%m-%d %H:%M:%S}Z); nothing was sent. Run without "
        "--replay to bring the position to the latest target in one order, or raise --max-signal-age to send them")
