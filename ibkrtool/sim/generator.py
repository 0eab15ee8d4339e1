"""Generation of the sim's raw market data: per-session quote states and trades, deterministic and seeded.

Per instrument and session, seeded by ``(seed, symbol, session date)``, numpy-vectorised:
- Day level: a mean-reverting random walk of the log price over calendar days from 1980 (one draw per symbol,
  cached), so any session's start price ``S(d)`` is known without generating the sessions before it.
- Session level: the mid price is a Brownian bridge from ``S(d)`` to ``S(next session)`` with a U-shaped
  intraday variance profile (stocks: regular hours heavier than pre/post market), sampled ``QUOTES_PER_S`` times
  a second. Bid/ask are the mid quantised to the contract's min tick with a 1-tick spread (2 ticks 10 % of the
  time; 2 more outside regular hours), so the next session opens where the previous one closed. Forex spreads are
  one min tick (0.5 pip on EUR.USD): IB's quotes are finer (sub-pip) but we keep every price on the min-tick grid.
- Trades (stocks only): a Poisson process with a U-shaped rate over regular hours (thin outside), each trade at
  the prevailing bid or ask, sizes geometric in round lots. 1-second TRADES bars (``bars.py``) are exact summaries
  of these trades; ``Market.ticks`` returns the same trades.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np

from ibkrtool.sim import calendar as cal
from ibkrtool.sim.calendar import Session
from ibkrtool.sim.contracts import SimContract

QUOTES_PER_S = 2
_EPOCH_DAY = date(1980, 1, 1)
_LAST_DAY = date(2040, 12, 31)


@dataclass(frozen=True)
class _Profile:
    anchor: float  # typical price level
    vol: float  # annualised volatility
    trades_per_s: float  # regular-hours mean trade rate (0 for forex)
    lot: int  # trade size unit
    quote_lot: int  # quote size unit


_PROFILES = {
    "SPY": _Profile(590.0, 0.16, 3.0, 100, 100),
    "QQQ": _Profile(510.0, 0.20, 2.5, 100, 100),
    "AAPL": _Profile(230.0, 0.25, 2.5, 100, 100),
    "MSFT": _Profile(420.0, 0.22, 2.0, 100, 100),
    "IWM": _Profile(225.0, 0.20, 2.0, 100, 100),
    "EUR.USD": _Profile(1.08, 0.07, 0.0, 0, 1_000_000),
    "GBP.USD": _Profile(1.27, 0.08, 0.0, 0, 1_000_000),
    "USD.JPY": _Profile(150.0, 0.09, 0.0, 0, 1_000_000),
    "AUD.USD": _Profile(0.66, 0.10, 0.0, 0, 1_000_000),
    "USD.CHF": _Profile(0.88, 0.07, 0.0, 0, 1_000_000),
    "USD.CAD": _Profile(1.36, 0.06, 0.0, 0, 1_000_000),
}
# Head timestamps: the first bar IB has (SPY's listing day is 1993-01-29; forex from IB's HMDS start, 2005).
# AAPL (1980) and MSFT (1986) are older than the sim's calendar, which starts in 1990 (see calendar.py).
_HEADS = {
    "SPY": datetime(1993, 1, 29, 14, 30, tzinfo=UTC),
    "QQQ": datetime(1999, 3, 10, 14, 30, tzinfo=UTC),
    "AAPL": datetime(1990, 1, 2, 14, 30, tzinfo=UTC),
    "MSFT": datetime(1990, 1, 2, 14, 30, tzinfo=UTC),
    "IWM": datetime(2000, 5, 26, 13, 30, tzinfo=UTC),
}
_FX_HEAD = datetime(2005, 2, 28, 22, 15, tzinfo=UTC)


def default_head_timestamp(contract: SimContract) -> datetime:
    """The first instant the generated market has data for (UTC); IB's head timestamp for the symbol."""
    if contract.sec_type == "CASH":
        return _FX_HEAD
    return _HEADS.get(contract.symbol, datetime(2000, 1, 3, 14, 30, tzinfo=UTC))


def _profile(contract: SimContract) -> _Profile:
    p = _PROFILES.get(contract.local_symbol)
    if p is not None:
        return p
    h = zlib.crc32(contract.local_symbol.encode()) % 1000
    return _Profile(20.0 + h / 5, 0.25, 0.0 if contract.sec_type == "CASH" else 1.0, 100, 100)


def _price_scale(tick: float) -> float:
    return float(round(1.0 / tick))  # exact integer, so ticks / scale is correctly rounded


def _rng(*parts: int) -> np.random.Generator:
    return np.random.default_rng([p & 0xFFFFFFFF for p in parts])


@lru_cache(maxsize=64)
def _day_levels(seed: int, symbol: str, vol: float) -> np.ndarray:
    """Log-price deviation per calendar day since 1980 (Ornstein-Uhlenbeck, ~4-month mean reversion)."""
    n = (_LAST_DAY - _EPOCH_DAY).days + 1
    eps = _rng(seed, zlib.crc32(symbol.encode()), 0xDA7).standard_normal(n) * (vol / np.sqrt(365.0))
    phi = np.exp(-1.0 / 120.0)
    x = np.empty(n)
    acc = 0.0
    for i in range(n):  # one pass per symbol, then cached
        acc = phi * acc + eps[i]
        x[i] = acc
    return x


@dataclass
class _Day:
    """Raw per-session data: quote states (``QUOTES_PER_S`` a second) and trades, prices as integer ticks."""

    session: Session
    t0: int  # session open, epoch seconds
    utc_offset: int  # New York offset of this session, seconds
    tick: float
    quote_lot: int
    seed: tuple[int, ...]  # (seed, symbol hash, session ordinal): sub-streams for sizes and trades
    trade_params: tuple[float, int, np.ndarray]  # trades per second, lot, cumulative relative rate
    bid: np.ndarray  # int32 ticks, shape (n_seconds * Q,)
    ask: np.ndarray
    one_s: dict = field(default_factory=dict)  # what_to_show -> 1-second bar arrays
    _sizes: tuple[np.ndarray, np.ndarray] | None = None
    _trades: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    _trade_rel: np.ndarray | None = None

    @property
    def n_seconds(self) -> int:
        return len(self.bid) // QUOTES_PER_S

    def trades(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(second index, offset in the second, price in ticks, size)`` of every trade, drawn lazily from their
        own stream (quote-only requests never pay for them)."""
        if self._trades is None:
            per_s, lot, cum_rate = self.trade_params
            self._trades = _trades(_rng(*self.seed, 0x7EAD), per_s, lot, cum_rate, self.bid, self.ask)
        return self._trades

    def trade_times(self) -> np.ndarray:
        """Seconds since the session open of every trade (float, sorted); cached."""
        if self._trade_rel is None:
            self._trade_rel = self.trade_sec + self.trade_off
        return self._trade_rel

    @property
    def trade_sec(self) -> np.ndarray:
        return self.trades()[0]

    @property
    def trade_off(self) -> np.ndarray:
        return self.trades()[1]

    @property
    def trade_px(self) -> np.ndarray:
        return self.trades()[2]

    @property
    def trade_size(self) -> np.ndarray:
        return self.trades()[3]

    def quote_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask sizes per quote state, drawn lazily from their own stream (only quotes and ticks need them)."""
        if self._sizes is None:
            rng = _rng(*self.seed, 0x512E)
            draws = rng.integers(1, 40, (2, len(self.bid)), dtype=np.int16) * float(self.quote_lot)
            self._sizes = (draws[0], draws[1])
        return self._sizes


def _u_shape(x: np.ndarray) -> np.ndarray:
    return 1.0 + 2.5 * (2.0 * x - 1.0) ** 2


@lru_cache(maxsize=16)
def _session_shape(is_fx: bool, n: int, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For a session of ``n`` seconds with regular hours ``[r0, r1)``: per-quote-step standard deviations
    (unit total variance), their cumulative variance fraction, the base spread in ticks per quote step and the
    cumulative relative trade rate at each whole second (U-shaped in regular hours, mean 1 there)."""
    if is_fx:  # session starts 17:00 New York; activity peaks with London and New York (about 03:00-12:00)
        hours = np.arange(n) / 3600.0
        w = 0.4 + 1.6 * np.exp(-(((hours - 14.5) / 4.0) ** 2))
    else:
        w = np.full(n, 0.12)
        w[r0:r1] = _u_shape(np.arange(r1 - r0) / (r1 - r0))
    rth = np.zeros(n, dtype=bool)
    rth[r0:r1] = True
    steps = np.repeat(w / w.sum(), QUOTES_PER_S) / QUOTES_PER_S
    frac = np.cumsum(steps)
    frac /= frac[-1]
    cum_rate = np.r_[0.0, np.cumsum(np.where(rth, w / 1.8333, 0.05))]
    base_spread = np.where(np.repeat(rth, QUOTES_PER_S) | is_fx, 1, 3).astype(np.int32)  # thinner books outside RTH
    sd = np.sqrt(steps)
    for a in (sd, frac, base_spread, cum_rate):
        a.flags.writeable = False
    return sd, frac, base_spread, cum_rate


def _generate_day(seed: int, contract: SimContract, s: Session) -> _Day:
    is_fx = contract.sec_type == "CASH"
    prof = _profile(contract)
    t0 = int(s.open.timestamp())
    n = int(s.close.timestamp()) - t0
    sym = zlib.crc32(contract.local_symbol.encode())
    rng = _rng(seed, sym, s.label.toordinal())
    levels = _day_levels(seed, contract.local_symbol, prof.vol)
    nxt = cal.next_session_after(is_fx, s)
    log_a = np.log(prof.anchor) + levels[(s.label - _EPOCH_DAY).days]
    log_b = np.log(prof.anchor) + levels[((nxt.label if nxt else s.label + timedelta(days=1)) - _EPOCH_DAY).days]
    r0, r1 = int(s.rth_open.timestamp()) - t0, int(s.rth_close.timestamp()) - t0
    sd, frac, base_spread, cum_rate = _session_shape(is_fx, n, r0, r1)
    z = rng.standard_normal(n * QUOTES_PER_S)
    z *= sd
    z = np.cumsum(z)
    z *= prof.vol / np.sqrt(252.0) * 0.75  # intraday standard deviation
    z += log_a
    z -= frac * (z[-1] - log_b)  # Brownian bridge: the session ends at the next session's start
    mid_ticks = np.exp(z, out=z)
    mid_ticks *= _price_scale(contract.min_tick)
    spread = base_spread + (rng.integers(0, 10, n * QUOTES_PER_S, dtype=np.int8) == 0)  # 10 % one tick wider
    mid_ticks += 0.5 - spread / 2.0
    bid = mid_ticks.astype(np.int32)  # positive, so truncation is floor; < 2**31 ticks for every contract
    offset = int(s.open.astimezone(cal.NEW_YORK).utcoffset().total_seconds())
    return _Day(s, t0, offset, contract.min_tick, prof.quote_lot, (seed, sym, s.label.toordinal()),
                (prof.trades_per_s, prof.lot, cum_rate), bid, bid + spread)


def _trades(rng: np.random.Generator, per_s: float, lot: int, cum_rate: np.ndarray, bid: np.ndarray,
            ask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trades as a Poisson process with intensity ``per_s * rate(t)``: unit exponential gaps in operational
    time mapped back through the cumulative rate (so they come out sorted), each at the prevailing bid or ask,
    sizes geometric in round lots."""
    if per_s <= 0:
        e = np.empty(0)
        return e.astype(np.int64), e, e.astype(np.int64), e
    total = per_s * cum_rate[-1]
    tau = np.cumsum(rng.standard_exponential(int(total + 6 * np.sqrt(total) + 20)))
    tau = tau[tau < total]
    t = np.interp(tau / per_s, cum_rate, np.arange(len(cum_rate), dtype=np.float64))
    sec = t.astype(np.int64)
    off = t - sec
    state = sec * QUOTES_PER_S + np.minimum((off * QUOTES_PER_S).astype(np.int64), QUOTES_PER_S - 1)
    u = rng.integers(0, 1 << 16, len(t), dtype=np.uint16)  # bit 0: buyer or seller; bits 1-15: size quantile
    px = np.where(u & 1, ask[state], bid[state])
    size = _LOTS[u >> 1] * float(lot)
    return sec, off, px, size


# Geometric(p=0.3) number of lots, by inversion of 2**15 equally likely quantiles.
_LOTS = np.floor(np.log1p(-(np.arange(1 << 15) + 0.5) / (1 << 15)) / np.log(0.7)) + 1.0
