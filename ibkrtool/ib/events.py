"""Typed connectivity events: what the Gateway tells data/ and execution/ about the link, instead of IB's codes.

``event_for(code, message)`` is the one place where IB's connectivity codes (named in ``ib/errors.py``) become
events; everything outside ``ib/`` matches on these classes. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from ibkrtool.ib import errors as codes


@dataclass(frozen=True)
class Disconnected:
    """The socket to TWS / IB Gateway closed: every request and stream on it is gone; reconnect."""

    reason: str = "connection lost"


@dataclass(frozen=True)
class ConnectivityLost:
    """TWS lost its link to IB (the socket to TWS is fine): streams stall and orders should wait until restored."""

    reason: str


@dataclass(frozen=True)
class Restored:
    """TWS's link to IB is back. ``data_lost``: IB dropped the market data subscriptions. Either way IB ends
    keepUpToDate and real-time streams during an outage, so callers resubscribe."""

    data_lost: bool
    reason: str = ""


@dataclass(frozen=True)
class FarmStatus:
    """A data farm went down (``ok`` False) or came back; informational: requests still work or retry."""

    farm: str
    ok: bool


ConnectivityEvent = Disconnected | ConnectivityLost | Restored | FarmStatus


def event_for(code: int, message: str) -> ConnectivityEvent | None:
    """The event an IB error/notice stands for, or None when it is not about connectivity."""
    if code in codes.CONNECTIVITY_PAUSED:
        return ConnectivityLost(f"IB lost connectivity ({code}): {message}")
    if code == codes.RESTORED_DATA_LOST:
        return Restored(True, f"IB connectivity restored, data lost ({code})")
    if code == codes.RESTORED_DATA_KEPT:
        return Restored(False, f"IB connectivity restored, data maintained ({code})")
    if code in codes.FARM_BROKEN or code in codes.FARM_OK:
        return FarmStatus(_farm_name(message), code in codes.FARM_OK)
    return None


def _farm_name(message: str) -> str:
    """``Market data farm connection is OK:usfarm`` → ``usfarm``."""
    return message.rsplit(":", 1)[-1].strip() if ":" in message else message.strip()
