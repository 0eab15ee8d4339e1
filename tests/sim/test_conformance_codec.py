"""Codec conformance without sockets: the sim's encoders decoded by ib_async's own Decoder at versions 176 and 178,
exact field counts where IB's clients need them, and the client's request layouts decoded by the sim."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from ib_async.decoder import Decoder

from ibkrtool.sim import codec
from ibkrtool.sim.broker import SimExecution, SimOrder
from ibkrtool.sim.contracts import find_contracts
from ibkrtool.sim.wire import frame, parse_hello, split_payload

[SPY] = find_contracts("SPY", "STK", "USD", "SMART")


class _Wrapper:
    """Records every wrapper call the decoder makes."""

    defaultTimezone = timezone.utc

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name: str):
        return lambda *args: self.calls.append((name, args))


def _decode(fields: list, version: int) -> list[tuple[str, tuple]]:
    wrapper = _Wrapper()
    payload = split_payload(frame(fields)[4:])
    Decoder(wrapper, version).interpret(payload)
    return wrapper.calls


def _order(status: str = "Submitted") -> SimOrder:
    return SimOrder(order_id=7, client_id=3, perm_id=1000007, contract=SPY, action="BUY", quantity=10.0,
                    order_type="LMT", lmt_price=600.5, aux_price=None, tif="DAY", account="DU1234567",
                    status=status)


def test_handshake_parsing():
    hello = parse_hello(b"v157..178 +PACEAPI")
    assert (hello.min_version, hello.max_version, hello.options) == (157, 178, "+PACEAPI")
    assert parse_hello(b"v157..176").max_version == 176


@pytest.mark.parametrize("version", [176, 178])
def test_open_order_decodes_fully(version):
    [(name, (order_id, contract, order, state))] = _decode(codec.open_order(version, _order()), version)
    assert name == "openOrder" and order_id == 7
    assert contract.conId == SPY.conid and contract.symbol == "SPY"
    assert order.permId == 1000007 and order.clientId == 3 and order.lmtPrice == 600.5
    assert order.totalQuantity == 10.0 and order.whatIf is False and state.status == "Submitted"


@pytest.mark.parametrize(("version", "count"), [(176, 31), (178, 32)])
def test_exec_details_field_count_and_decoding(version, count):
    o = _order("Filled")
    e = SimExecution("0000e215.000f4247.01.01", o, SPY, datetime(2026, 11, 20, 15, 0, 1, tzinfo=timezone.utc),
                     "ARCA", 10.0, 600.49, 10.0, 600.49, 1.0, None)
    fields = codec.exec_details(version, -1, e)
    assert len(fields) == count
    [(name, (req_id, contract, execution))] = _decode(fields, version)
    assert name == "execDetails" and req_id == -1 and contract.conId == SPY.conid
    assert execution.side == "BOT" and execution.shares == 10.0 and execution.permId == 1000007
    assert execution.time == datetime(2026, 11, 20, 15, 0, 1, tzinfo=timezone.utc)


def test_exact_field_counts():
    assert len(codec.portfolio_value(SPY, 10, 600.0, 6000.0, 599.0, 10.0, 0.0, "DU1234567")) == 20
    assert len(codec.position("DU1234567", SPY, 10, 599.0)) == 16
    assert len(codec.commission_report("x", 1.0, "USD", None)) == 8
    assert codec.error(-1, 2104, "ok")[-1] == ""  # advancedOrderRejectJson present (sv >= 166)


def test_contract_details_decode():
    calls = _decode(codec.contract_details(5, SPY, "20261120:0400-20261120:2000", "20261120:0930-20261120:1600"), 178)
    [(name, (req_id, cd))] = calls
    assert name == "contractDetails" and req_id == 5
    assert cd.contract.conId == SPY.conid and cd.contract.primaryExchange == "ARCA"
    assert cd.minTick == 0.01 and cd.timeZoneId == "US/Eastern" and cd.longName == SPY.long_name


def test_historical_update_field_order():
    [(name, (req_id, bar))] = _decode(codec.historical_data_update(9, "1763650800", 1.0, 3.0, 0.5, 2.0, 100.0,
                                                                   1.5, 4), 178)
    assert (name, req_id) == ("historicalDataUpdate", 9)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.average, bar.barCount) == (
        1.0, 3.0, 0.5, 2.0, 100.0, 1.5, 4)


def test_decode_client_requests():
    hist = ["20", "12", "756733", "SPY", "STK", "", "0.0", "", "", "SMART", "ARCA", "USD", "SPY", "SPY", "0",
            "20261120-15:00:00", "1 min", "1 D", "1", "TRADES", "2", "1", ""]
    req = codec.decode(hist, 178)
    assert req.name == "reqHistoricalData" and req.req_id == 12
    assert req.args["contract"]["conid"] == 756733 and req.args["bar_size"] == "1 min"
    assert req.args["duration"] == "1 D" and req.args["keep_up_to_date"] and req.args["format_date"] == 2
    assert codec.decode(["10", "5", "44"], 178).req_id == 44  # unsupported reqMktDepth keeps its reqId
    assert codec.decode(["10", "5", "44"], 178).name == "unsupported:reqMktDepth"
    assert codec.decode(["250"], 178).name.startswith("unsupported:")


@pytest.mark.parametrize("version", [176, 178])
def test_completed_order_decodes_fully(version):
    o = _order("Filled")
    o.filled, o.done_at = 10.0, datetime(2026, 11, 20, 15, 0, 1, tzinfo=timezone.utc)
    [(name, (contract, order, state))] = _decode(codec.completed_order(version, o), version)
    assert name == "completedOrder" and contract.conId == SPY.conid
    assert order.permId == 1000007 and order.filledQuantity == 10.0 and order.lmtPrice == 600.5
    assert state.status == "Filled" and state.completedStatus == "Filled"
    assert state.completedTime == "20261120 15:00:01 UTC"
