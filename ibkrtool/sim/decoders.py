"""Incoming half of the TWS protocol tables: ``decode(fields, server_version) -> Request``, one decoder per
client message id, with named arguments.

Field orders follow ib_async 2.1.0's client.py at server versions 176 and 178 (``faProfile`` exists below 177).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ibkrtool.sim.wire import UNSET_DOUBLE

MAX_SERVER_VERSION = 178
MIN_SERVER_VERSION = 157
CONTRACT_FIELDS = ("conid", "symbol", "sec_type", "last_trade_date", "strike", "right", "multiplier",
                   "exchange", "primary_exchange", "currency", "local_symbol", "trading_class")


@dataclass
class Request:
    """One decoded client message: its id, IB's name for it, the request id (None if it has none) and arguments."""

    msg_id: int
    name: str
    req_id: int | None = None
    args: dict[str, Any] = field(default_factory=dict)


def _int(text: str, default: int = 0) -> int:
    try:
        return int(float(text)) if text not in ("", None) else default
    except ValueError:
        return default


def _float(text: str, default: float | None = None) -> float | None:
    try:
        return float(text) if text not in ("", None) else default
    except ValueError:
        return default


def contract_at(fields: list[str], i: int) -> dict[str, Any]:
    """The 12 contract fields starting at index ``i`` (conId, symbol, secType, ..., tradingClass)."""
    raw = dict(zip(CONTRACT_FIELDS, fields[i:i + 12], strict=False))
    raw["conid"] = _int(raw.get("conid", ""))
    return raw


def _get(fields: list[str], i: int, default: str = "") -> str:
    return fields[i] if i < len(fields) else default


# --- incoming decoders: fields -> (req_id, args) -------------------------------------------------------------

def _no_args(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return None, {}


def _req_id_at(i: int) -> Callable[[list[str], int], tuple[int | None, dict]]:
    def decode(fields: list[str], sv: int) -> tuple[int | None, dict]:
        return _int(_get(fields, i), -1), {}
    return decode


def _start_api(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return None, {"client_id": _int(_get(fields, 2)), "capabilities": _get(fields, 3)}


def _account_updates(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return None, {"subscribe": _get(fields, 2) == "1", "account": _get(fields, 3)}


def _account_updates_multi(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return _int(fields[2]), {"account": _get(fields, 3), "model_code": _get(fields, 4),
                             "ledger_and_nlv": _get(fields, 5) == "1"}


def _executions(fields: list[str], sv: int) -> tuple[int | None, dict]:
    keys = ("client_id", "account", "time", "symbol", "sec_type", "exchange", "side")
    return _int(fields[2]), dict(zip(keys, fields[3:10], strict=False))


def _contract_details(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return _int(fields[2]), {"contract": contract_at(fields, 3), "include_expired": _get(fields, 15) == "1"}


def _historical_data(fields: list[str], sv: int) -> tuple[int | None, dict]:
    contract = contract_at(fields, 2)
    i = 15  # after includeExpired at 14
    args = {"contract": contract, "end_datetime": _get(fields, i), "bar_size": _get(fields, i + 1),
            "duration": _get(fields, i + 2), "use_rth": _int(_get(fields, i + 3)),
            "what_to_show": _get(fields, i + 4), "format_date": _int(_get(fields, i + 5), 1)}
    j = i + 6
    if contract["sec_type"] == "BAG":
        legs = _int(_get(fields, j))
        j += 1 + 4 * legs
    args["keep_up_to_date"] = _get(fields, j) == "1"
    return _int(fields[1]), args


def _real_time_bars(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return _int(fields[2]), {"contract": contract_at(fields, 3), "bar_size": _int(_get(fields, 15)),
                             "what_to_show": _get(fields, 16), "use_rth": _get(fields, 17) == "1"}


def _account_summary(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return _int(fields[2]), {"group": _get(fields, 3), "tags": _get(fields, 4)}


def _head_timestamp(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return _int(fields[1]), {"contract": contract_at(fields, 2), "use_rth": _int(_get(fields, 15)),
                             "what_to_show": _get(fields, 16), "format_date": _int(_get(fields, 17), 1)}


def _tick_by_tick(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return _int(fields[1]), {"contract": contract_at(fields, 2), "tick_type": _get(fields, 14),
                             "number_of_ticks": _int(_get(fields, 15)), "ignore_size": _get(fields, 16) == "1"}


def _order_tail(fields: list[str], sv: int, sec_type: str) -> dict[str, Any]:
    """Walk placeOrder past ``hidden`` (index 34) to the fields after the variable-length parts: ``whatIf`` and
    ``goodTillDate`` (ib_async client.placeOrder order; faProfile below 177)."""
    i = 35
    if sec_type == "BAG":
        i += 1 + 8 * _int(_get(fields, i))
        i += 1 + _int(_get(fields, i))
        i += 1 + 2 * _int(_get(fields, i))
    good_till = _get(fields, i + 3)
    i += 7 + (1 if sv < 177 else 0)  # "", discretionaryAmt, goodAfterTime, goodTillDate, faGroup/Method/Percentage
    i += 22  # modelCode … deltaNeutralOrderType (22 fields)
    dn_type = _get(fields, i - 1)
    i += 1 + (8 if dn_type else 0)  # deltaNeutralAuxPrice [+ 8 delta-neutral fields]
    increment = _float(_get(fields, i + 6), 0.0) or 0.0
    i += 7 + (7 if 0 < increment < UNSET_DOUBLE else 0)  # continuousUpdate … scalePriceIncrement [+ 7]
    hedge = _get(fields, i + 3)
    i += 4 + (1 if hedge else 0)  # scaleTable, activeStart/StopTime, hedgeType [+ hedgeParam]
    i += 4  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    i += 4 if _get(fields, i) == "1" else 1  # deltaNeutralContract flag [+ 3]
    algo = _get(fields, i)
    i += 1
    if algo:
        i += 1 + 2 * _int(_get(fields, i))
    return {"good_till_date": good_till, "algo_strategy": algo, "what_if": _get(fields, i + 1) == "1"}


def _place_order(fields: list[str], sv: int) -> tuple[int | None, dict]:
    """placeOrder has no version field; the first 35 fields sit at fixed indexes whatever the server version."""
    args = {"contract": contract_at(fields, 2), "action": _get(fields, 16).upper(),
            "quantity": _float(_get(fields, 17), 0.0), "order_type": _get(fields, 18).upper(),
            "lmt_price": _float(_get(fields, 19)), "aux_price": _float(_get(fields, 20)),
            "tif": _get(fields, 21) or "DAY", "account": _get(fields, 23), "order_ref": _get(fields, 26),
            "transmit": _get(fields, 27, "1") != "0", "parent_id": _int(_get(fields, 28)),
            "outside_rth": _get(fields, 33) == "1"}
    args.update(_order_tail(fields, sv, args["contract"]["sec_type"]))
    return _int(fields[1]), args


def _cancel_order(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return _int(fields[2]), {}


def _mkt_data(fields: list[str], sv: int) -> tuple[int | None, dict]:
    contract = contract_at(fields, 3)
    i = 15
    if contract["sec_type"] == "BAG":
        i += 1 + 4 * _int(_get(fields, i))
    i += 4 if _get(fields, i) == "1" else 1  # deltaNeutralContract flag (+ conId, delta, price)
    return _int(fields[2]), {"contract": contract, "generic_ticks": _get(fields, i),
                             "snapshot": _get(fields, i + 1) == "1", "regulatory": _get(fields, i + 2) == "1"}


def _completed_orders(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return None, {"api_only": _get(fields, 1) == "1"}


def _req_ids(fields: list[str], sv: int) -> tuple[int | None, dict]:
    return None, {"num_ids": _int(_get(fields, 2), 1)}


# id -> (IB's request name, decoder). Requests with a version field carry reqId at index 2, newer ones at 1.
SUPPORTED: dict[int, tuple[str, Callable[[list[str], int], tuple[int | None, dict]]]] = {
    1: ("reqMktData", _mkt_data),
    2: ("cancelMktData", _req_id_at(2)),
    3: ("placeOrder", _place_order),
    4: ("cancelOrder", _cancel_order),
    5: ("reqOpenOrders", _no_args),
    6: ("reqAccountUpdates", _account_updates),
    7: ("reqExecutions", _executions),
    8: ("reqIds", _req_ids),
    9: ("reqContractDetails", _contract_details),
    15: ("reqAutoOpenOrders", _no_args),
    16: ("reqAllOpenOrders", _no_args),
    20: ("reqHistoricalData", _historical_data),
    25: ("cancelHistoricalData", _req_id_at(2)),
    49: ("reqCurrentTime", _no_args),
    50: ("reqRealTimeBars", _real_time_bars),
    51: ("cancelRealTimeBars", _req_id_at(2)),
    58: ("reqGlobalCancel", _no_args),
    59: ("reqMarketDataType", _no_args),
    61: ("reqPositions", _no_args),
    62: ("reqAccountSummary", _account_summary),
    63: ("cancelAccountSummary", _req_id_at(2)),
    64: ("cancelPositions", _no_args),
    71: ("startApi", _start_api),
    76: ("reqAccountUpdatesMulti", _account_updates_multi),
    77: ("cancelAccountUpdatesMulti", _req_id_at(2)),
    87: ("reqHeadTimeStamp", _head_timestamp),
    90: ("cancelHeadTimeStamp", _req_id_at(1)),
    97: ("reqTickByTickData", _tick_by_tick),
    98: ("cancelTickByTickData", _req_id_at(1)),
    99: ("reqCompletedOrders", _completed_orders),
}

# Messages the sim does not implement, with where their reqId sits (None: no reqId) so the error can name it.
UNSUPPORTED: dict[int, tuple[str, int | None]] = {
    10: ("reqMktDepth", 2), 11: ("cancelMktDepth", 2),
    12: ("reqNewsBulletins", None), 13: ("cancelNewsBulletins", None), 14: ("setServerLogLevel", None),
    17: ("reqManagedAccts", None), 18: ("requestFA", None), 19: ("replaceFA", None),
    21: ("reqScannerParameters", None), 22: ("reqScannerSubscription", 2), 23: ("cancelScannerSubscription", 2),
    24: ("cancelScannerSubscription", 2), 52: ("reqFundamentalData", 2), 53: ("cancelFundamentalData", 2),
    54: ("calculateImpliedVolatility", 2), 55: ("calculateOptionPrice", 2), 60: ("exerciseOptions", 2),
    74: ("reqPositionsMulti", 2), 75: ("cancelPositionsMulti", 2), 78: ("reqSecDefOptParams", 1),
    79: ("reqSoftDollarTiers", 1), 80: ("reqFamilyCodes", None), 81: ("reqMatchingSymbols", 1),
    82: ("reqMktDepthExchanges", None), 83: ("reqSmartComponents", 1), 84: ("reqNewsArticle", 1),
    85: ("reqNewsProviders", None), 86: ("reqHistoricalNews", 1), 88: ("reqHistogramData", 1),
    89: ("cancelHistogramData", 1), 91: ("reqMarketRule", None), 92: ("reqPnL", 1), 93: ("cancelPnL", 1),
    94: ("reqPnLSingle", 1), 95: ("cancelPnLSingle", 1), 96: ("reqHistoricalTicks", 1),
    100: ("reqWshMetaData", 1), 101: ("cancelWshMetaData", 1), 102: ("reqWshEventData", 1),
    103: ("cancelWshEventData", 1), 104: ("reqUserInfo", 1),
}


def decode(fields: list[str], server_version: int) -> Request:
    """Decode one client message. Unknown or unsupported ids come back with name ``unsupported:<name>``."""
    msg_id = _int(fields[0], -1) if fields else -1
    if msg_id in SUPPORTED:
        name, decoder = SUPPORTED[msg_id]
        try:
            req_id, args = decoder(fields, server_version)
        except IndexError:
            return Request(msg_id, f"malformed:{name}", None, {"fields": len(fields)})
        return Request(msg_id, name, req_id, args)
    name, at = UNSUPPORTED.get(msg_id, (f"message {msg_id}", None))
    req_id = _int(_get(fields, at), -1) if at is not None else None
    return Request(msg_id, f"unsupported:{name}", req_id, {})
