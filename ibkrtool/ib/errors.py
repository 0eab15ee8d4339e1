"""IB error codes grouped into named sets (ib_api_facts.md §4–5).

The sets decide what happens to a code: informational ones are logged, connectivity ones pause and reconnect,
pacing ones back off and retry, no-data ones become an empty covered range, rejections are raised to the user.
"""

from __future__ import annotations

from enum import Enum

# Farm status and other notices: log at debug/info, never end a request.
INFORMATIONAL = frozenset({165, 2104, 2106, 2107, 2108, 2119, 2158, 2100, 2109, 2137, 2168, 2169, 10167})
# The link between TWS and IB (or TWS and us) broke or came back.
CONNECTIVITY_LOST = frozenset({1100, 1300, 2103, 2105, 2110, 2157, 504, 502, 10182})
CONNECTIVITY_RESTORED = frozenset({1101, 1102})
# Subsets the Gateway turns into typed events (ib/events.py).
CONNECTIVITY_PAUSED = frozenset({1100, 2110})  # TWS lost IB (or its server): streams stall until restored
RESTORED_DATA_LOST = 1101  # restored, market data subscriptions were lost
RESTORED_DATA_KEPT = 1102  # restored, subscriptions kept (IB still ends keepUpToDate streams with 10182)
FARM_BROKEN = frozenset({2103, 2105, 2157})
FARM_OK = frozenset({2104, 2106, 2107, 2108, 2158})
CLIENT_ID_IN_USE = 326
NO_SECURITY_DEFINITION = 200
HISTORICAL_SERVICE = 162
REALTIME_QUERY = 420
# Pacing-type refusals: retry after a pause.
PACING = frozenset({100, 162, 420})
# Request refused because of the request itself or permissions: do not retry.
REJECTION = frozenset({200, 201, 203, 321, 354, 10089, 10090, 10091, 10168, 10186, 10187, 10189, 10197, 10314, 10339})
# Answers to cancels of finished requests.
IGNORABLE = frozenset({300, 366})
TRANSIENT = frozenset({322})


class HistoricalOutcome(str, Enum):
    """What a 162 (or related) error means for a historical request."""

    PACING = "pacing"
    NO_DATA = "no-data"
    CANCELLED = "cancelled"
    NO_PERMISSION = "no-permission"
    REJECTED = "rejected"


def classify_historical(code: int, message: str) -> HistoricalOutcome:
    """Sort a historical-data error by its code and (for 162, whose text varies) its message."""
    text = message.lower()
    if code == HISTORICAL_SERVICE:
        if "pacing violation" in text:
            return HistoricalOutcome.PACING
        if "returned no data" in text or "no historical market data" in text or "no data of type" in text:
            return HistoricalOutcome.NO_DATA
        if "no head time stamp" in text:
            return HistoricalOutcome.NO_DATA
        if "query cancelled" in text:
            return HistoricalOutcome.CANCELLED
        if "permission" in text:
            return HistoricalOutcome.NO_PERMISSION
        return HistoricalOutcome.REJECTED
    if code in (REALTIME_QUERY, 100):
        return HistoricalOutcome.PACING if "pacing" in text or code == 100 else HistoricalOutcome.NO_PERMISSION
    if code in (10089, 10090, 10091, 10168, 10186, 10187, 10189, 354):
        return HistoricalOutcome.NO_PERMISSION
    return HistoricalOutcome.REJECTED


def is_informational(code: int) -> bool:
    """Farm-status notices (2100–2199) and other codes that only deserve a log line."""
    return code in INFORMATIONAL or 2100 <= code <= 2199


def is_connectivity(code: int) -> bool:
    """Codes after which streams must be resubscribed and gaps repaired."""
    return code in CONNECTIVITY_LOST or code in CONNECTIVITY_RESTORED
