"""Technical indicators: numpy arrays in, float64 arrays out, NaN during warm-up, never any look-ahead.

Definitions follow R's TTR 0.24.3 (``SMA``, ``EMA``, ``aroon``) so the Python and R engines agree to 1e-9.
"""

from ibkrtool.indicators.aroon import Aroon, aroon
from ibkrtool.indicators.moving import ema, sma
from ibkrtool.indicators.pivots import SwingPivots, swing_pivots

__all__ = ["Aroon", "SwingPivots", "aroon", "ema", "sma", "swing_pivots"]
