"""Instants typed on the command line: ISO 8601 with a zone (``2026-11-20T14:30:00Z``), returned in UTC."""

from __future__ import annotations

from datetime import datetime, timezone

from ibkrtool.errors import InputError


def parse_instant(text: str, option: str) -> datetime:
    """Parse ``text`` given for ``option`` (e.g. ``--until``) as a tz-aware UTC datetime.

    A zone is required (naive times are refused, ARCHITECTURE rule 4). Raises ``InputError`` naming the option.
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{option} {text!r}: not an ISO 8601 time; write e.g. 2026-11-20T14:30:00Z") from None
    if moment.tzinfo is None:
        raise InputError(f"{option} {text!r}: add a zone, e.g. 2026-11-20T14:30:00Z")
    return moment.astimezone(timezone.utc)
