from datetime import datetime

import pytest

from ibkrtool.errors import InputError
from ibkrtool.model import Bar, BarSize, BarUnit, Instrument, SecType, WhatToShow


@pytest.mark.parametrize(
    ("text", "label", "ib", "seconds"),
    [
        ("1s", "1s", "1 secs", 1),
        ("1 secs", "1s", "1 secs", 1),
        ("5m", "5m", "5 mins", 300),
        ("5 mins", "5m", "5 mins", 300),
        ("1 min", "1m", "1 min", 60),
        ("1h", "1h", "1 hour", 3600),
        ("2 hours", "2h", "2 hours", 7200),
        ("1d", "1d", "1 day", 86400),
        ("1W", "1w", "1 week", 604800),
    ],
)
def test_bar_size_parses_short_and_ib_spellings(text: str, label: str, ib: str, seconds: int) -> None:
    size = BarSize.parse(text)
    assert (str(size), size.ib, size.seconds, size.is_ib_size) == (label, ib, seconds, True)


def test_month_is_capital_m_and_minute_is_small_m() -> None:
    assert BarSize.parse("1M").unit is BarUnit.MONTH
    assert BarSize.parse("1m").unit is BarUnit.MINUTE
    assert BarSize.parse("1M").ib == "1 month"


def test_non_ib_sizes_parse_but_are_flagged() -> None:
    assert not BarSize.parse("7m").is_ib_size
    assert not BarSize.parse("2s").is_ib_size


@pytest.mark.parametrize("text", ["", "5", "m5", "5 parsecs", "0m", "-1m"])
def test_bad_bar_sizes_are_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="bar size"):
        BarSize.parse(text)


@pytest.mark.parametrize(
    ("spec", "symbol", "sec_type", "exchange", "currency", "primary", "display"),
    [
        ("SPY", "SPY", SecType.STOCK, "SMART", "USD", "", "SPY"),
        ("aapl@nasdaq", "AAPL", SecType.STOCK, "SMART", "USD", "NASDAQ", "AAPL"),
        ("EURUSD", "EUR", SecType.FOREX, "IDEALPRO", "USD", "", "EUR.USD"),
        ("EUR.USD", "EUR", SecType.FOREX, "IDEALPRO", "USD", "", "EUR.USD"),
        ("usd/jpy", "USD", SecType.FOREX, "IDEALPRO", "JPY", "", "USD.JPY"),
        ("BRK B", "BRK B", SecType.STOCK, "SMART", "USD", "", "BRK B"),
    ],
)
def test_instrument_specs(spec, symbol, sec_type, exchange, currency, primary, display) -> None:
    inst = Instrument.parse(spec)
    assert (inst.symbol, inst.sec_type, inst.exchange, inst.currency, inst.primary_exchange) == (
        symbol, sec_type, exchange, currency, primary,
    )
    assert inst.display == display
    assert inst.default_what_to_show == ("MIDPOINT" if inst.is_forex else "TRADES")


@pytest.mark.parametrize("spec", ["", "12AB", "SPY@", "$$$"])
def test_bad_instruments(spec: str) -> None:
    with pytest.raises(InputError, match="not understood"):
        Instrument.parse(spec)


def test_what_to_show_and_bar_validation() -> None:
    assert WhatToShow.parse("bid_ask") is WhatToShow.BID_ASK
    with pytest.raises(InputError, match="not one of"):
        WhatToShow.parse("LAST")
    with pytest.raises(ValueError, match="timezone-aware"):
        Bar(datetime(2026, 1, 2, 9, 30), 1, 1, 1, 1, 0)


def test_parse_instant_needs_a_zone_and_returns_utc() -> None:
    from datetime import timezone

    from ibkrtool.model.instant import parse_instant

    assert parse_instant("2026-11-20T09:30:00-05:00", "--until") == datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc)
    assert parse_instant(" 2026-11-20T14:30:00Z ", "--start").tzinfo is timezone.utc
    with pytest.raises(InputError, match="--until '2026-11-20T14:30:00': add a zone"):
        parse_instant("2026-11-20T14:30:00", "--until")
    with pytest.raises(InputError, match="--faults drop-at 'soon': not an ISO 8601 time"):
        parse_instant("soon", "--faults drop-at")
