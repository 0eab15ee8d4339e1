"""Pick the IB client library: ib_async (maintained) first, ib_insync (archived, same API names) second.

Every other module in ``ibkrtool/ib`` imports IB names from here, never from the libraries directly.
"""

from __future__ import annotations

try:  # pragma: no branch - which one is installed is decided once per environment
    import ib_async as _ib

    LIBRARY = "ib_async"
except ImportError:  # pragma: no cover - only on machines with ib_insync alone
    import ib_insync as _ib  # type: ignore[no-redef]

    LIBRARY = "ib_insync"

IB = _ib.IB
Contract = _ib.Contract
Stock = _ib.Stock
Forex = _ib.Forex
BarData = _ib.BarData
RealTimeBar = _ib.RealTimeBar
AccountValue = _ib.AccountValue
MarketOrder = _ib.MarketOrder
LimitOrder = _ib.LimitOrder
ExecutionFilter = _ib.ExecutionFilter
util = _ib.util
RequestError = getattr(_ib, "RequestError", Exception)

__all__ = [
    "IB", "LIBRARY", "AccountValue", "BarData", "Contract", "ExecutionFilter", "Forex", "LimitOrder", "MarketOrder",
    "RealTimeBar", "RequestError", "Stock", "util",
]
