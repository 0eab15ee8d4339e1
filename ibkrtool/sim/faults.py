"""Faults injected on demand, from a small spec string.

Syntax: comma-separated items, each ``key=value`` (or a bare ``key`` for flags):

    drop-after-messages=N          close the client socket that sends the N-th request (counted over the server, once)
    drop-at=T                      close every client socket when sim time reaches T (ISO 8601, 2026-11-20T15:00:00Z)
    connectivity-lost-at=T[:restored-after=S]
                                   at sim time T send error 1100 to every client; S sim seconds later (default 30)
                                   send 1102 (restored, data maintained)
    reject-orders[=SYM+SYM]        reject every order (or only those symbols) with error 201
    delay-ms=N                     delay every reply by N milliseconds of real time
    no-data=SYM+SYM                answer historical requests for these symbols with 162 "HMDS query returned no data"

Example: ``drop-after-messages=200,connectivity-lost-at=2026-11-20T15:00:00Z:restored-after=30,no-data=SPY``.
Reconnects are always accepted after a drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ibkrtool.errors import InputError
from ibkrtool.model.instant import parse_instant

KEYS = ("drop-after-messages", "drop-at", "connectivity-lost-at", "reject-orders", "delay-ms", "no-data")


@dataclass(frozen=True)
class Faults:
    """Parsed fault plan; every field None/empty means that fault is off."""

    drop_after_messages: int | None = None
    drop_at: datetime | None = None
    connectivity_lost_at: datetime | None = None
    restored_after: timedelta = timedelta(seconds=30)
    reject_orders: frozenset[str] | None = None  # empty set = every order
    delay_ms: int = 0
    no_data: frozenset[str] = frozenset()


def _time(key: str, text: str) -> datetime:
    return parse_instant(text, f"--faults {key}")

def _count(key: str, text: str) -> int:
    if not text.strip().isdigit():
        raise InputError(f"--faults {key}={text!r}: expected a whole number >= 0")
    return int(text)


def _symbols(text: str) -> frozenset[str]:
    return frozenset(s.strip().upper() for s in text.split("+") if s.strip())


def _connectivity(value: str, fields: dict) -> None:
    at, _, restored = value.partition(":restored-after=")
    fields["connectivity_lost_at"] = _time("connectivity-lost-at", at)
    if restored:
        fields["restored_after"] = timedelta(seconds=_count("restored-after", restored))


def parse_faults(spec: str | None) -> Faults:
    """Parse a ``--faults`` spec (see module doc). Raises InputError with one line naming the bad item."""
    fields: dict = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if key not in KEYS:
            raise InputError(f"--faults: unknown fault {key!r}; known: {', '.join(KEYS)}")
        if key == "drop-after-messages":
            fields["drop_after_messages"] = _count(key, value)
        elif key == "drop-at":
            fields["drop_at"] = _time(key, value)
        elif key == "connectivity-lost-at":
            _connectivity(value, fields)
        elif key == "reject-orders":
            fields["reject_orders"] = _symbols(value) if sep and value.upper() not in ("ALL", "*") else frozenset()
        elif key == "delay-ms":
            fields["delay_ms"] = _count(key, value)
        elif key == "no-data":
            if not value.strip():
                raise InputError("--faults no-data=: name at least one symbol, e.g. no-data=SPY+EUR")
            fields["no_data"] = _symbols(value)
    return Faults(**fields)
