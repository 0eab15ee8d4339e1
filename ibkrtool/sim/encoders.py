"""Outgoing half of the TWS protocol tables: one small encoder per gateway message, returning the field list
(``wire.frame`` adds NULs and length).

Field orders follow ib_async 2.1.0's decoder.py at server versions 176 and 178 (``faProfile`` exists below 177,
``pendingPriceRevision`` from 178).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ibkrtool.sim.wire import UNSET_DOUBLE, format_field


def error(req_id: int, code: int, text: str) -> list:
    """errorMsg (4), version 2, with the advancedOrderRejectJson field clients ≥ 166 require."""
    return [4, 2, req_id, code, text, ""]


def managed_accounts(accounts: list[str]) -> list:
    return [15, 1, ",".join(accounts)]


def next_valid_id(order_id: int) -> list:
    return [9, 1, order_id]


def current_time(epoch_s: int) -> list:
    return [49, 1, epoch_s]


def contract_details(req_id: int, c: Any, trading_hours: str, liquid_hours: str) -> list:
    """contractData (10) at sv ≥ 164: no version field; a stock/forex has no secIds and no expiry."""
    return [10, req_id, c.symbol, c.sec_type, "", 0.0, "", c.exchange, c.currency, c.local_symbol,
            c.market_name, c.trading_class, c.conid, c.min_tick, "", c.order_types, c.valid_exchanges, 1, 0,
            c.long_name, c.primary_exchange, "", "", "", "", c.time_zone, trading_hours, liquid_hours, "", "",
            0, 1, "", "", "26" if c.sec_type == "STK" else "239", "", c.stock_type, "1", "1", "1"]


def contract_details_end(req_id: int) -> list:
    return [52, 1, req_id]


def historical_data(req_id: int, start: str, end: str, bars: list[tuple]) -> list:
    """historicalData (17) at sv ≥ 124: reqId, startDateStr, endDateStr, count, then 8 fields per bar."""
    out: list = [17, req_id, start, end, len(bars)]
    for date, o, h, low, c, vol, wap, count in bars:
        out += [date, o, h, low, c, vol, wap, count]
    return out


def historical_data_joined(req_id: int, start: str, end: str, count: int, rows: str) -> list:
    """historicalData (17) whose bar fields are already NUL-joined (``bar_rows_text``): ``frame`` writes a string
    as it is, so the bytes equal those of ``historical_data`` with the same bars."""
    return [17, req_id, start, end, count, rows] if count else [17, req_id, start, end, 0]


def bar_rows_text(dates: list[str], o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray, volume: np.ndarray,
                  wap: np.ndarray, count: np.ndarray) -> str:
    """The 8 fields per bar of message 17, NUL-joined, formatted column-wise: each distinct price once."""
    columns = [dates, *(_float_texts(col) for col in (o, h, low, c, volume, wap)), [str(n) for n in count.tolist()]]
    return "\0".join(itertools.chain.from_iterable(zip(*columns, strict=True)))


def _float_texts(values: np.ndarray) -> list[str]:
    distinct, where = np.unique(values, return_inverse=True)
    texts = [format_field(v) for v in distinct.tolist()]
    return [texts[i] for i in where.tolist()]


def historical_data_update(req_id: int, date: str, o: float, h: float, low: float, c: float,
                           vol: float, wap: float, count: int) -> list:
    """historicalDataUpdate (90): note IB's order barCount, date, open, close, high, low, WAP, volume."""
    return [90, req_id, count, date, o, c, h, low, wap, vol]


def head_timestamp(req_id: int, stamp: str) -> list:
    return [88, req_id, stamp]


def realtime_bar(req_id: int, epoch_s: int, o: float, h: float, low: float, c: float,
                 vol: float, wap: float, count: int) -> list:
    return [50, 3, req_id, epoch_s, o, h, low, c, vol, wap, count]


def tick_price(req_id: int, tick_type: int, price: float, size: float) -> list:
    """tickPrice (1), version 6: price with its size (ib_async derives the size tick) and attribute mask 0."""
    return [1, 6, req_id, tick_type, price, size, 0]


def tick_size(req_id: int, tick_type: int, size: float) -> list:
    return [2, 6, req_id, tick_type, size]


def tick_req_params(req_id: int, min_tick: float, bbo_exchange: str) -> list:
    return [81, req_id, min_tick, bbo_exchange, 3]


def market_data_type(req_id: int, data_type: int = 1) -> list:
    """marketDataType (58): 1 = real-time."""
    return [58, 1, req_id, data_type]


def tick_snapshot_end(req_id: int) -> list:
    return [57, 1, req_id]


def tick_last(req_id: int, tick_type: int, epoch_s: int, price: float, size: float, exchange: str) -> list:
    return [99, req_id, tick_type, epoch_s, price, size, 0, exchange, ""]


def tick_bid_ask(req_id: int, epoch_s: int, bid: float, ask: float, bid_size: float, ask_size: float) -> list:
    return [99, req_id, 3, epoch_s, bid, ask, bid_size, ask_size, 0]


def tick_midpoint(req_id: int, epoch_s: int, mid: float) -> list:
    return [99, req_id, 4, epoch_s, mid]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> list:
    return [63, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> list:
    return [64, 1, req_id]


def _contract_short(c: Any) -> list:
    """conId … tradingClass without primaryExchange (10 fields, as in position/execDetails)."""
    return [c.conid, c.symbol, c.sec_type, "", 0.0, "", "", c.exchange, c.currency, c.local_symbol,
            c.trading_class]


def position(account: str, c: Any, qty: float, avg_cost: float) -> list:
    """position (61), version 3: exactly 16 fields."""
    return [61, 3, account, *_contract_short(c), qty, avg_cost]


def position_end() -> list:
    return [62, 1]


def account_value(key: str, value: str, currency: str, account: str) -> list:
    return [6, 2, key, value, currency, account]


def portfolio_value(c: Any, qty: float, price: float, value: float, avg_cost: float,
                    unrealized: float, realized: float, account: str) -> list:
    """portfolioValue (7), version 8: exactly 20 fields (primaryExchange in the exchange slot)."""
    return [7, 8, c.conid, c.symbol, c.sec_type, "", 0.0, "", "", c.primary_exchange, c.currency,
            c.local_symbol, c.trading_class, qty, price, value, avg_cost, unrealized, realized, account]


def account_time(hhmm: str) -> list:
    return [8, 1, hhmm]


def account_download_end(account: str) -> list:
    return [54, 1, account]


def account_update_multi(req_id: int, account: str, key: str, value: str, currency: str) -> list:
    return [73, 1, req_id, account, "", key, value, currency]


def account_update_multi_end(req_id: int) -> list:
    return [74, 1, req_id]


def order_status(o: Any) -> list:
    """orderStatus (3): no version field at sv ≥ 131."""
    return [3, o.order_id, o.status, o.filled, o.remaining, o.avg_fill_price, o.perm_id, o.parent_id,
            o.last_fill_price, o.client_id, "", 0.0]


def exec_details(sv: int, req_id: int, e: Any) -> list:
    """execDetails (11): 31 fields below 178, 32 (pendingPriceRevision) from 178."""
    c, o = e.contract, e.order
    out = [11, req_id, o.order_id, *_contract_short(c), e.exec_id, e.time_text, o.account, e.exchange,
           "BOT" if o.action == "BUY" else "SLD", e.shares, e.price, o.perm_id, o.client_id, 0, e.cum_qty,
           e.avg_price, o.order_ref, "", "", "", 1 if e.added_liquidity else 2]
    if sv >= 178:
        out.append(0)
    return out


def exec_details_end(req_id: int) -> list:
    return [55, 1, req_id]


def commission_report(exec_id: str, commission: float, currency: str, realized_pnl: float | None) -> list:
    """commissionReport (59): exactly 8 fields; opening fills carry IB's UNSET realized P&L."""
    return [59, 1, exec_id, commission, currency, UNSET_DOUBLE if realized_pnl is None else realized_pnl,
            UNSET_DOUBLE, ""]


def open_order_end() -> list:
    return [53, 1]


def completed_order(sv: int, o: Any) -> list:
    """completedOrder (101) for a filled or cancelled plain order (no version field; faProfile below 177)."""
    c = o.contract
    done = o.done_at.strftime("%Y%m%d %H:%M:%S") + " UTC" if o.done_at is not None else ""
    out = [101, c.conid, c.symbol, c.sec_type, "", 0.0, "", "", c.exchange, c.currency, c.local_symbol,
           c.trading_class, o.action, o.quantity, o.order_type,
           o.lmt_price if o.lmt_price is not None else 0.0, o.aux_price if o.aux_price is not None else 0.0,
           o.tif, "", o.account, "O", 0, o.order_ref, o.perm_id, int(o.outside_rth), 0, 0.0, "", "", "", ""]
    if sv < 177:
        out.append("")  # faProfile
    out += ["", "", "", "", "", 0, "", "", "", "", "", "", "", "", 0, 0, "", 0, 0, "", 0, "", ""]  # … dnAuxPrice
    out += [0, 0, "", "", ""]  # continuousUpdate, referencePriceType, trailStopPrice, trailingPercent, comboDescrip
    out += [0, 0, 0, "", "", "", ""]  # 3 counts, scale init/subs/increment, hedgeType
    out += ["", "", 0, 0, ""]  # clearingAccount, clearingIntent, notHeld, deltaNeutralContract flag, algoStrategy
    out += [0, o.status, 0, 0, 0]  # solicited, status, randomizeSize, randomizePrice, conditionCount
    out += ["", "", "", 0, 0, "", o.filled, 0, 0, "", 0, 0, 0, done, o.status]  # … completedTime, completedStatus
    if sv >= 170:
        out += ["", "", "", "", ""]
    return out


def completed_orders_end() -> list:
    return [102]


def open_order(sv: int, o: Any, what_if: dict[str, float] | None = None) -> list:
    """openOrder (5) for a plain MKT/LMT/STP order: the full layout, counts as integers.

    ``what_if`` (margin and commission figures, IB's OrderState names) makes it the answer to a what-if order.
    """
    c = o.contract
    out = [5, o.order_id, c.conid, c.symbol, c.sec_type, "", 0.0, "", "", c.exchange, c.currency,
           c.local_symbol, c.trading_class, o.action, o.quantity, o.order_type,
           o.lmt_price if o.lmt_price is not None else 0.0, o.aux_price if o.aux_price is not None else 0.0,
           o.tif, "", o.account, "O", 0, o.order_ref, o.client_id, o.perm_id, int(o.outside_rth), 0, 0.0, "",
           "", "", "", ""]
    if sv < 177:
        out.append("")  # faProfile
    out += ["", "", "", "", "", 0, "", "", 0, "", "", "", "", "", 0, 0, 0, 0, "", 3, 0, 0, "",
            o.parent_id, 0, "", 0, "", ""]  # modelCode … deltaNeutralAuxPrice (deltaNeutralOrderType empty)
    out += [0, 0, "", "", "", "", "", 0, 0, 0]  # continuousUpdate … comboLegsDescrip, 3 counts
    out += ["", "", "", "", 0, "", "", 0, 0, ""]  # scale init/subs/increment, hedgeType, optOut … dnc, algo
    if what_if is None:
        out += [0, 0, o.status, "", "", "", "", "", "", "", "", "", UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, "",
                "", 0, 0]  # solicited, whatIf, state …, randomizeSize, randomizePrice
    else:
        w = {k: f"{v:.2f}" for k, v in what_if.items()}
        out += [0, 1, "PreSubmitted", w["initMarginBefore"], w["maintMarginBefore"], w["equityWithLoanBefore"],
                w["initMarginChange"], w["maintMarginChange"], w["equityWithLoanChange"], w["initMarginAfter"],
                w["maintMarginAfter"], w["equityWithLoanAfter"], what_if["commission"], what_if["commission"],
                what_if["commission"], "USD", "", 0, 0]
    out += [0]  # conditionCount
    out += ["None", UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, 0,
            "", "", "", UNSET_DOUBLE, 0, 0, 0, 0]  # adjusted… usePriceMgmtAlgo
    out += [UNSET_INT_TEXT, 0, 0]  # duration, postToAts, autoCancelParent
    out += [UNSET_INT_TEXT, UNSET_INT_TEXT, 0, UNSET_DOUBLE, UNSET_DOUBLE]  # minTradeQty … midOffsetAtHalf
    return out


UNSET_INT_TEXT = "2147483647"
