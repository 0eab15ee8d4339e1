"""Domain types shared by every part of ibkrtool. IB's own types stop at ``ibkrtool/ib``."""

from ibkrtool.model.bar import BAR_COLUMNS, IB_BAR_SIZES, Bar, BarSize, BarUnit, WhatToShow
from ibkrtool.model.contract import Contract
from ibkrtool.model.instrument import Instrument, SecType

__all__ = [
    "BAR_COLUMNS", "IB_BAR_SIZES", "Bar", "BarSize", "BarUnit", "Contract", "Instrument", "SecType", "WhatToShow",
]
