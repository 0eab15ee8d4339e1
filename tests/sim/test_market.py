"""The sim's market: contracts, sessions, and bars/ticks/quotes that agree with each other at every resolution."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ibkrtool.sim.contracts import SimContract, contract_by_conid, find_contracts, trading_hours
from ibkrtool.sim.history import format_bar_time
from ibkrtool.sim.market import Market, SimBar
from ibkrtool.sim.replay import ReplaySource

NY = "America/New_York"
SPY = find_contracts("SPY", "STK", "USD", "SMART")[0]
EUR = find_contracts("EUR", "CASH", "USD", "IDEALPRO")[0]
JPY = find_contracts("USD", "CASH", "JPY", "IDEALPRO")[0]
FRI = date(2026, 11, 20)  # a regular Friday session


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def ny(d: date, h: int, mi: int = 0) -> datetime:
    return pd.Timestamp(datetime(d.year, d.month, d.day, h, mi)).tz_localize(NY).tz_convert("UTC").to_pydatetime()


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(seed=1)


def frame(bars: list[SimBar]) -> pd.DataFrame:
    df = pd.DataFrame([b._asdict() for b in bars]).set_index("start")
    df.index = pd.DatetimeIndex(df.index)
    return df


def aggregate(one_s: pd.DataFrame, seconds: int, session_start: datetime, bid_ask: bool = False) -> pd.DataFrame:
    """Reference aggregation in pandas: clock-aligned bins in New York time, the first bin stamped at the
    session start; OHLC first/max/min/last, volume and count summed, WAP volume-weighted."""
    local = one_s.index.tz_convert(NY)
    label = local.floor(f"{seconds}s").tz_convert("UTC")
    label = label.where(label >= pd.Timestamp(session_start), pd.Timestamp(session_start))
    g = one_s.groupby(label)
    out = pd.DataFrame({"open": g["open"].mean() if bid_ask else g["open"].first(), "high": g["high"].max(),
                        "low": g["low"].min(), "close": g["close"].mean() if bid_ask else g["close"].last()})
    if (one_s["volume"] >= 0).all():
        out["volume"] = g["volume"].sum()
        out["wap"] = (one_s["wap"] * one_s["volume"]).groupby(label).sum() / out["volume"]
        out["count"] = g["count"].sum()
    return out


# --- contracts -------------------------------------------------------------------------------------------------
def test_contracts_match_like_tws() -> None:
    assert [c.conid for c in find_contracts("SPY", "STK", "USD", "SMART")] == [756733]
    assert find_contracts("SPY", "STK", "USD", "SMART")[0].primary_exchange == "ARCA"
    assert find_contracts("AAPL", "STK", "USD", "NASDAQ")[0].exchange == "NASDAQ"  # AAPL@NASDAQ keeps its exchange
    assert find_contracts("AAPL", "", "", "")[0].conid == 265598
    assert find_contracts("", "", "", "", conid=272093)[0].symbol == "MSFT"
    assert find_contracts("EUR", "CASH", "USD", "IDEALPRO")[0].conid == 12087792  # Forex('EURUSD')
    assert find_contracts("", "CASH", "", "IDEALPRO", local_symbol="USD.JPY")[0].conid == 15016059
    assert find_contracts("ZZZZ", "STK", "USD", "SMART") == []  # -> error 200
    assert find_contracts("SPY", "STK", "EUR", "SMART") == []
    assert find_contracts("", "", "", "", conid=1) == []
    assert contract_by_conid(9579970).symbol == "IWM"
    assert JPY.min_tick == 0.005 and EUR.min_tick == 0.00005 and SPY.min_tick == 0.01
    assert SPY.stock_type == "ETF" and contract_by_conid(265598).stock_type == "COMMON"
    assert {c.time_zone for c in (SPY, EUR)} == {"US/Eastern"}


def test_trading_hours_strings() -> None:
    hours, liquid = trading_hours(SPY, utc(2026, 11, 26, 15), days=3)  # Thanksgiving, early close, Saturday
    assert hours == "20261126:CLOSED;20261127:0400-20261127:1700;20261128:CLOSED"
    assert liquid == "20261126:CLOSED;20261127:0930-20261127:1300;20261128:CLOSED"
    hours, liquid = trading_hours(EUR, utc(2026, 11, 20, 15), days=4)
    assert hours == "20261119:1700-20261120:1700;20261121:CLOSED;20261122:1700-20261123:1700"
    assert hours == liquid


# --- determinism and consistency -------------------------------------------------------------------------------
def test_same_request_same_bars_and_seed_matters(market: Market) -> None:
    a = market.bars(SPY, "5 mins", ny(FRI, 9, 30), ny(FRI, 16), "TRADES", True)
    b = Market(seed=1).bars(SPY, "5 mins", ny(FRI, 9, 30), ny(FRI, 16), "TRADES", True)
    c = Market(seed=2).bars(SPY, "5 mins", ny(FRI, 9, 30), ny(FRI, 16), "TRADES", True)
    assert a == b and len(a) == 78
    assert [x.close for x in a] != [x.close for x in c]


@pytest.mark.parametrize("use_rth", [True, False])
@pytest.mark.parametrize("what", ["TRADES", "MIDPOINT", "BID_ASK"])
def test_one_second_bars_aggregate_exactly(market: Market, use_rth: bool, what: str) -> None:
    start, end = (ny(FRI, 9, 30), ny(FRI, 16)) if use_rth else (ny(FRI, 4), ny(FRI, 20))
    one_s = frame(market.bars(SPY, "1 secs", start, end, what, use_rth))
    if what != "TRADES":
        assert len(one_s) == (end - start).total_seconds()
    for size, seconds in [("5 secs", 5), ("1 min", 60), ("5 mins", 300), ("1 hour", 3600)]:
        got = frame(market.bars(SPY, size, start, end, what, use_rth))
        want = aggregate(one_s, seconds, start, bid_ask=what == "BID_ASK")
        assert list(got.index) == list(want.index), size
        for col in want.columns:
            exact = col in ("high", "low", "volume", "count") or (col in ("open", "close") and what != "BID_ASK")
            if exact:
                assert (got[col].to_numpy() == want[col].to_numpy()).all(), (size, col)
            else:
                np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=1e-12)
    day = market.bars(SPY, "1 day", start - timedelta(hours=6), end, what, use_rth)
    assert len(day) == 1 and day[0].start == start
    whole = aggregate(one_s, 86400, start, bid_ask=what == "BID_ASK")
    assert (day[0].high, day[0].low) == (whole["high"].iloc[0], whole["low"].iloc[0])
    if what == "TRADES":
        assert (day[0].open, day[0].close, day[0].volume, day[0].count) == (
            whole["open"].iloc[0], whole["close"].iloc[0], whole["volume"].iloc[0], whole["count"].iloc[0])
        assert day[0].wap == pytest.approx(whole["wap"].iloc[0], rel=1e-12)
    else:
        assert (day[0].volume, day[0].wap, day[0].count) == (-1, -1, -1)


def test_hourly_rth_bars_start_at_the_open_then_on_the_hour(market: Market) -> None:
    bars = market.bars(SPY, "1 hour", ny(FRI, 9, 30), ny(FRI, 16), "TRADES", True)
    labels = [format_bar_time(b, "1 hour", 1, SPY) for b in bars]
    assert labels[:3] == ["20261120 09:30:00 US/Eastern", "20261120 10:00:00 US/Eastern",
                          "20261120 11:00:00 US/Eastern"]
    assert len(bars) == 7


def test_ticks_aggregate_into_one_second_bars(market: Market) -> None:
    start, end = ny(FRI, 10), ny(FRI, 10, 5)
    ticks = market.ticks(SPY, start, end)
    assert ticks and all(start <= t.time < end for t in ticks)
    assert all(t.price in (t.bid, t.ask) and t.ask > t.bid for t in ticks)
    df = pd.DataFrame([t.__dict__ for t in ticks])
    sec = pd.DatetimeIndex(df["time"]).floor("1s")
    g = df.groupby(sec)
    one_s = frame(market.bars(SPY, "1 secs", start, end, "TRADES", True))
    assert list(g.size().index) == list(one_s.index)
    assert (g["price"].first().to_numpy() == one_s["open"].to_numpy()).all()
    assert (g["price"].max().to_numpy() == one_s["high"].to_numpy()).all()
    assert (g["price"].min().to_numpy() == one_s["low"].to_numpy()).all()
    assert (g["price"].last().to_numpy() == one_s["close"].to_numpy()).all()
    assert (g["size"].sum().to_numpy() == one_s["volume"].to_numpy()).all()
    assert (g.size().to_numpy() == one_s["count"].to_numpy()).all()
    assert market.ticks(EUR, start, end) == []  # IDEALPRO has no trades


def test_quote_agrees_with_bars_and_ticks(market: Market) -> None:
    t = ny(FRI, 10, 1) + timedelta(seconds=7, milliseconds=600)
    q = market.quote(SPY, t)
    sec = t.replace(microsecond=0)
    bid = market.bars(SPY, "1 secs", sec, sec + timedelta(seconds=1), "BID", True)[0]
    ask = market.bars(SPY, "1 secs", sec, sec + timedelta(seconds=1), "ASK", True)[0]
    assert bid.low <= q.bid <= bid.high and ask.low <= q.ask <= ask.high and q.ask > q.bid
    last = [x for x in market.ticks(SPY, t - timedelta(seconds=30), t + timedelta(microseconds=1)) if x.time <= t][-1]
    assert (q.last, q.last_size) == (last.price, last.size)
    # Saturday: the Friday close (extended session's last quote) holds.
    sat = market.quote(SPY, utc(2026, 11, 21, 15))
    fri_close = market.bars(SPY, "1 secs", ny(FRI, 19, 59), ny(FRI, 20), "BID", False)[-1]
    assert sat.bid == fri_close.close
    fx = market.quote(EUR, utc(2026, 11, 20, 15))
    assert np.isnan(fx.last) and fx.ask > fx.bid


# --- sessions --------------------------------------------------------------------------------------------------
def test_weekend_and_holiday_are_closed(market: Market) -> None:
    assert market.bars(SPY, "1 hour", utc(2026, 11, 21, 5), utc(2026, 11, 23, 5), "TRADES", False) == []
    assert not market.is_open(SPY, utc(2026, 11, 21, 15), False)
    days = market.bars(SPY, "1 day", utc(2026, 11, 23), utc(2026, 11, 29), "TRADES", True)
    assert [format_bar_time(b, "1 day", 1, SPY) for b in days] == ["20261123", "20261124", "20261125", "20261127"]
    assert not market.is_open(SPY, ny(date(2026, 11, 26), 11), False)


def test_early_close(market: Market) -> None:
    d = date(2026, 11, 27)
    rth = market.bars(SPY, "1 secs", ny(d, 0), ny(d, 23), "MIDPOINT", True)
    assert rth[0].start == ny(d, 9, 30) and rth[-1].start == ny(d, 13) - timedelta(seconds=1)
    ext = market.bars(SPY, "1 secs", ny(d, 0), ny(d, 23), "MIDPOINT", False)
    assert ext[0].start == ny(d, 4) and ext[-1].start == ny(d, 17) - timedelta(seconds=1)
    assert market.is_open(SPY, ny(d, 12, 59), True) and not market.is_open(SPY, ny(d, 13, 1), True)
    assert market.is_open(SPY, ny(d, 16), False)


def test_extended_hours_only_without_rth(market: Market) -> None:
    assert market.is_open(SPY, ny(FRI, 8), False) and not market.is_open(SPY, ny(FRI, 8), True)
    assert market.bars(SPY, "1 min", ny(FRI, 8), ny(FRI, 9), "MIDPOINT", True) == []
    assert len(market.bars(SPY, "1 min", ny(FRI, 8), ny(FRI, 9), "MIDPOINT", False)) == 60


def test_forex_week(market: Market) -> None:
    bars = market.bars(EUR, "1 hour", ny(FRI, 12), ny(date(2026, 11, 23), 12), "MIDPOINT", True)
    starts = [b.start for b in bars]
    gap = max(pairwise(starts), key=lambda p: p[1] - p[0])
    assert gap == (ny(FRI, 16), ny(date(2026, 11, 22), 17))  # Friday 17:00 close, Sunday 17:00 open (New York)
    days = market.bars(EUR, "1 day", utc(2026, 11, 15), utc(2026, 11, 24, 21), "MIDPOINT", True)
    assert [format_bar_time(b, "1 day", 1, EUR) for b in days] == [
        "20261116", "20261117", "20261118", "20261119", "20261120", "20261123", "20261124"]
    assert days[-2].start == ny(date(2026, 11, 22), 17)  # the Monday session opens Sunday 17:00
    assert market.is_open(EUR, utc(2026, 11, 22, 23), True) and not market.is_open(EUR, utc(2026, 11, 21, 12), True)


# --- prices ----------------------------------------------------------------------------------------------------
def on_grid(values: np.ndarray, tick: float) -> bool:
    steps = values / tick
    return bool(np.all(np.abs(steps - np.round(steps)) < 1e-6))


@pytest.mark.parametrize("contract", [SPY, EUR, JPY], ids=["SPY", "EUR.USD", "USD.JPY"])
def test_prices_on_the_tick_grid_and_spreads(market: Market, contract: SimContract) -> None:
    start, end = ny(FRI, 10), ny(FRI, 11)
    for what in (["TRADES"] if contract is SPY else []) + ["BID", "ASK"]:
        df = frame(market.bars(contract, "1 secs", start, end, what, True))
        for col in ("open", "high", "low", "close"):
            assert on_grid(df[col].to_numpy(), contract.min_tick), (what, col)
    mid = frame(market.bars(contract, "1 secs", start, end, "MIDPOINT", True))
    assert on_grid(mid["close"].to_numpy(), contract.min_tick / 2)
    spreads = np.array([(q.ask - q.bid) / contract.min_tick for q in
                        (market.quote(contract, start + timedelta(seconds=7 * i)) for i in range(400))])
    assert set(np.round(spreads).astype(int)) <= {1, 2}
    assert (np.round(spreads) == 1).mean() > 0.8


def test_bid_ask_bars_follow_ibs_definition(market: Market) -> None:
    start, end = ny(FRI, 10), ny(FRI, 10, 30)
    ba = frame(market.bars(SPY, "5 mins", start, end, "BID_ASK", True))
    bid = frame(market.bars(SPY, "5 mins", start, end, "BID", True))
    ask = frame(market.bars(SPY, "5 mins", start, end, "ASK", True))
    assert (ba["high"] == ask["high"]).all() and (ba["low"] == bid["low"]).all()
    assert ((ba["open"] >= bid["low"]) & (ba["open"] <= bid["high"])).all()  # time-average bid
    assert ((ba["close"] >= ask["low"]) & (ba["close"] <= ask["high"])).all()  # time-average ask
    assert (ba["volume"] == -1).all() and (ba["count"] == -1).all()


def test_level_volatility_and_continuity(market: Market) -> None:
    spy = frame(market.bars(SPY, "1 day", utc(2026, 7, 20), utc(2026, 11, 21), "TRADES", False))
    assert 85 <= len(spy) <= 90  # trading days 2026-07-20 .. 2026-11-20
    assert spy["low"].min() > 450 and spy["high"].max() < 750
    vol = np.log(spy["close"]).diff().std() * np.sqrt(252)
    assert 0.08 < vol < 0.30
    # all-hours sessions: each opens where the previous one closed (a bridge to the next session's start)
    gaps = (spy["open"].iloc[1:].to_numpy() / spy["close"].iloc[:-1].to_numpy()) - 1
    assert np.abs(gaps).max() < 0.002
    eur = frame(market.bars(EUR, "1 day", utc(2026, 9, 20), utc(2026, 11, 21), "MIDPOINT", True))
    assert eur["low"].min() > 0.95 and eur["high"].max() < 1.25
    gaps = (eur["open"].iloc[1:].to_numpy() / eur["close"].iloc[:-1].to_numpy()) - 1
    assert np.abs(gaps).max() < 0.0005


def test_u_shaped_volume(market: Market) -> None:
    half_hours = frame(market.bars(SPY, "30 mins", ny(FRI, 9, 30), ny(FRI, 16), "TRADES", True))
    assert len(half_hours) == 13
    middle = half_hours["volume"].iloc[4:9].max()
    assert half_hours["volume"].iloc[0] > middle and half_hours["volume"].iloc[-1] > middle


def test_weekly_and_monthly_bars_group_sessions(market: Market) -> None:
    start, end = utc(2026, 9, 1), utc(2026, 11, 21)
    daily = frame(market.bars(SPY, "1 day", start, end, "TRADES", True))
    weekly = market.bars(SPY, "1W", start, end, "TRADES", True)
    monthly = market.bars(SPY, "1M", start, end, "TRADES", True)
    week = daily.index.tz_convert(NY).tz_localize(None).to_period("W")
    for bar in weekly:
        rows = daily[week == pd.Timestamp(bar.start).tz_convert(NY).tz_localize(None).to_period("W")]
        assert bar.start == rows.index[0]
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
            rows["open"].iloc[0], rows["high"].max(), rows["low"].min(), rows["close"].iloc[-1], rows["volume"].sum())
    assert [b.start for b in monthly] == [ny(date(2026, 9, 1), 9, 30), ny(date(2026, 10, 1), 9, 30),
                                          ny(date(2026, 11, 2), 9, 30)]
    assert [format_bar_time(b, "1M", 1, SPY) for b in monthly] == ["20260930", "20261030", "20261130"]
    assert monthly[-1].close == daily["close"].iloc[-1]


def test_head_timestamp(market: Market) -> None:
    assert market.head_timestamp(SPY, "TRADES", True) == utc(1993, 1, 29, 14, 30)
    assert market.head_timestamp(EUR, "MIDPOINT", True) < utc(2010, 1, 1)
    first = market.bars(SPY, "1 day", utc(1993, 1, 20), utc(1993, 2, 3), "TRADES", True)
    assert [b.start for b in first] == [utc(1993, 1, 29, 14, 30), utc(1993, 2, 1, 14, 30), utc(1993, 2, 2, 14, 30)]


# --- replay ----------------------------------------------------------------------------------------------------
def recorded(market: Market) -> pd.DataFrame:
    bars = market.bars(SPY, "1 min", ny(FRI, 4), ny(FRI, 20), "TRADES", False)
    return pd.DataFrame([b._asdict() for b in bars]).rename(columns={"start": "ts", "count": "bar_count"})


def check_replay(market: Market, replayed: Market) -> None:
    for size in ("1 min", "5 mins", "1 hour", "1 day"):
        for rth in (True, False):
            a = market.bars(SPY, size, ny(FRI, 0), ny(FRI, 23), "TRADES", rth)
            b = replayed.bars(SPY, size, ny(FRI, 0), ny(FRI, 23), "TRADES", rth)
            assert [(x.start, x.open, x.high, x.low, x.close, x.volume, x.count) for x in a] == [
                (x.start, x.open, x.high, x.low, x.close, x.volume, x.count) for x in b], (size, rth)
    mids = replayed.bars(SPY, "5 mins", ny(FRI, 10), ny(FRI, 11), "MIDPOINT", True)
    assert len(mids) == 12 and all(m.volume == -1 for m in mids)
    assert replayed.head_timestamp(SPY, "TRADES", True) == ny(FRI, 4)
    assert replayed.bars(EUR, "1 hour", ny(FRI, 10), ny(FRI, 11), "MIDPOINT", True)  # others still generated


def test_replay_from_csv(market: Market, tmp_path: Path) -> None:
    path = tmp_path / "spy_1m.csv"
    recorded(market).to_csv(path, index=False)
    check_replay(market, Market(seed=1, replay=ReplaySource.from_csv(path, "SPY", "1m")))


def test_replay_from_database(market: Market, db_url: str) -> None:
    """Both backends, laid out as ibkrtool's store writes them (SQLite: epoch microseconds; PostgreSQL: schema
    ibkr_data, TIMESTAMPTZ)."""
    from sqlalchemy import create_engine, text

    from tests.plugins.pg import pg_engine

    pg = db_url.startswith("postgresql")
    df = recorded(market)
    engine = pg_engine(db_url) if pg else create_engine(db_url)
    with engine.begin() as conn:
        if pg:
            conn.execute(text("CREATE SCHEMA ibkr_data"))
        table = "ibkr_data.bars" if pg else "bars"
        conn.execute(text(f"CREATE TABLE {table} (conid BIGINT, bar_size TEXT, what_to_show TEXT, "
                          f"ts {'TIMESTAMPTZ' if pg else 'BIGINT'}, open FLOAT, high FLOAT, low FLOAT, close FLOAT, "
                          "volume FLOAT, wap FLOAT, bar_count BIGINT)"))
        rows = [{"ts": r.ts if pg else int(r.ts.timestamp()) * 1_000_000, "open": r.open, "high": r.high,
                 "low": r.low, "close": r.close, "volume": r.volume, "wap": r.wap, "bar_count": r.bar_count}
                for r in df.itertuples()]
        conn.execute(text(f"INSERT INTO {table} VALUES (756733, '1m', 'TRADES', :ts, :open, :high, :low, :close, "
                          ":volume, :wap, :bar_count)"), rows)
        conn.execute(text(f"INSERT INTO {table} VALUES (756733, '1m', 'MIDPOINT', :ts, 1, 1, 1, 1, -1, -1, -1)"),
                     [{"ts": rows[0]["ts"]}])  # another series in the same table is not read
    engine.dispose()
    check_replay(market, Market(seed=1, replay=ReplaySource.from_database(db_url, "SPY", 756733, "1m")))


def test_bar_in_progress_covers_only_seconds_before_end(market: Market) -> None:
    end = ny(FRI, 10, 2) + timedelta(seconds=30)
    five = market.bars(SPY, "5 mins", ny(FRI, 9, 30), end, "TRADES", True)
    one_s = frame(market.bars(SPY, "1 secs", ny(FRI, 10), end, "TRADES", True))
    assert five[-1].start == ny(FRI, 10)
    assert (five[-1].volume, five[-1].high, five[-1].close) == (
        one_s["volume"].sum(), one_s["high"].max(), one_s["close"].iloc[-1])
    day = market.bars(SPY, "1 day", ny(FRI, 0), end, "TRADES", True)[0]
    whole = market.bars(SPY, "1 day", ny(FRI, 0), ny(FRI, 23), "TRADES", True)[0]
    assert day.volume < whole.volume and day.open == whole.open


def test_cache_eviction_does_not_change_data() -> None:
    m = Market(seed=7)
    first = m.bars(SPY, "1 min", ny(FRI, 10), ny(FRI, 11), "TRADES", True)
    m.bars(SPY, "1 hour", utc(2026, 9, 1), utc(2026, 9, 20), "TRADES", True)  # more sessions than the cache holds
    assert ("SPY", FRI) not in m._days  # the session was evicted and is regenerated below
    assert m.bars(SPY, "2 mins", ny(FRI, 10), ny(FRI, 11), "TRADES", True) == Market(seed=7).bars(
        SPY, "2 mins", ny(FRI, 10), ny(FRI, 11), "TRADES", True)
    assert Market(seed=7).bars(SPY, "1 min", ny(FRI, 10), ny(FRI, 11), "TRADES", True) == first


def test_long_spans_generate_each_session_at_most_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import ibkrtool.sim.market as market_module
    from ibkrtool.sim.summaries import SUMMARIES

    SUMMARIES.clear()
    generated: list[date] = []
    real = market_module._generate_day

    def counting(seed: int, contract: SimContract, s: object) -> object:
        generated.append(s.label)
        return real(seed, contract, s)

    monkeypatch.setattr(market_module, "_generate_day", counting)
    span = (utc(2026, 1, 1), utc(2026, 4, 1))
    m = Market(seed=4242)
    daily = m.bars(SPY, "1 day", *span, "TRADES", True)
    assert len(generated) >= len(daily) > 55
    weekly = m.bars(SPY, "1W", *span, "TRADES", True)
    m.bars(SPY, "1M", *span, "MIDPOINT", False)  # other whatToShow / all hours: the same sessions' summaries
    m.bars(SPY, "1 day", *span, "BID_ASK", True)
    Market(seed=4242).bars(SPY, "1 day", *span, "ASK", False)  # another sim in the process
    assert sorted(generated) == sorted(set(generated))  # no session generated twice
    SUMMARIES.clear()
    assert Market(seed=4242).bars(SPY, "1W", *span, "TRADES", True) == weekly  # cached == recomputed
