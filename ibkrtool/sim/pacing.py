"""IB's pacing rules for historical-data requests, enforced the way the HMDS server does.

Source: IB, TWS API "Historical Data Limitations" — "Pacing Violations for Small Bars (30 secs or less)"
(interactivebrokers.github.io/tws-api/historical_limitations.html; IBKR Campus TWS API §21; summarised in
/work/shared/reference/ib_api_facts.md §4). A violation of any of these causes error 162:

1. making identical historical data requests within 15 seconds;
2. making six or more historical data requests for the same Contract, Exchange and Tick Type within two seconds;
3. making more than 60 requests within any ten minute period.
A BID_ASK request counts as two requests. Head-timestamp requests follow the same rules (Campus §21:
"reqHeadTimeStamp ... counted like historical data requests for small bars"), whatever the bar size.

Scope: IB lifted the hard limits for bars of 1 minute and larger, so only requests for bars of 30 s or less
(and head timestamps) are checked; larger bars are admitted without being recorded.

Time is REAL elapsed time (IB paces in wall time), read from an injected monotonic clock; every window is
multiplied by ``scale`` so tests can shrink 10 minutes to seconds.

A refused request is NOT recorded. Evidence: IB says the server answers a violation with an error and sends
no data, i.e. it did not run the query; and users who back off for the rest of the window after a 162 recover
(facts §6 item 4; pysystemtrade/ib_insync practice), which would be impossible if refused requests kept
feeding the 60-per-10-minutes budget while the client retries. This is our reading, not an IB statement.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ibkrtool.sim.history import SimRequestError

PACING_CODE = 162
PACING_TEXT = "Historical Market Data Service error message:Historical data request pacing violation"
IDENTICAL_WINDOW_S = 15.0
SAME_CONTRACT_WINDOW_S = 2.0
SAME_CONTRACT_MAX = 5  # "six or more" is a violation
TOTAL_WINDOW_S = 600.0
TOTAL_MAX = 60
SMALL_BAR_MAX_S = 30

_SECONDS = {"sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600}


@dataclass(frozen=True)
class HistoricalRequestKey:
    """What makes two historical requests "identical" for IB (all request parameters)."""

    conid: int
    exchange: str
    what_to_show: str
    bar_size: str
    duration: str
    end_datetime: str
    use_rth: int


def is_small_bar(bar_size: str) -> bool:
    """True for bar sizes of 30 seconds or less, the ones IB's hard pacing limits apply to."""
    parts = bar_size.split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in _SECONDS:
        return False
    return int(parts[0]) * _SECONDS[parts[1]] <= SMALL_BAR_MAX_S


class PacingEnforcer:
    """Admits or refuses historical requests of one gateway session (IB paces per TWS login)."""

    def __init__(self, scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.scale = scale
        self.clock = clock
        self.violations = 0
        self._all: deque[float] = deque()  # one entry per counted request (BID_ASK: two)
        self._by_key: dict[HistoricalRequestKey, float] = {}
        self._by_contract: dict[tuple[int, str, str], deque[float]] = {}

    def admit(self, key: HistoricalRequestKey, kind: str = "history") -> None:
        """Record the request at the clock's now, or raise ``SimRequestError(162, pacing text)``.

        ``kind`` is ``"history"`` or ``"head_timestamp"`` (always checked, whatever ``key.bar_size``).
        """
        if kind == "history" and not is_small_bar(key.bar_size):
            return
        now = self.clock()
        weight = 2 if key.what_to_show.upper() == "BID_ASK" else 1
        self._expire(now)
        group = (key.conid, key.exchange.upper(), key.what_to_show.upper())
        recent = self._by_contract.get(group, deque())
        last = self._by_key.get(key)
        if (
            (last is not None and now - last < IDENTICAL_WINDOW_S * self.scale)
            or len(recent) + weight > SAME_CONTRACT_MAX
            or len(self._all) + weight > TOTAL_MAX
        ):
            self.violations += 1
            raise SimRequestError(PACING_CODE, PACING_TEXT)
        self._by_key[key] = now
        for _ in range(weight):
            self._all.append(now)
            recent.append(now)
        self._by_contract[group] = recent

    def _expire(self, now: float) -> None:
        while self._all and now - self._all[0] >= TOTAL_WINDOW_S * self.scale:
            self._all.popleft()
        for group in list(self._by_contract):
            q = self._by_contract[group]
            while q and now - q[0] >= SAME_CONTRACT_WINDOW_S * self.scale:
                q.popleft()
            if not q:
                del self._by_contract[group]
        stale = [k for k, t in self._by_key.items() if now - t >= IDENTICAL_WINDOW_S * self.scale]
        for k in stale:
            del self._by_key[k]
