"""Column types that behave the same on both backends.

Timestamps: TIMESTAMPTZ on PostgreSQL; on SQLite an INTEGER of microseconds since the Unix epoch (UTC). Integers
order and compare exactly like instants, so range queries and ORDER BY are correct without string parsing, and an
8-byte key keeps the bars index small. (ISO text would also sort, but only if every writer formats identically.)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, TypeDecorator
from sqlalchemy.types import TypeEngine

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_epoch_us(value: datetime) -> int:
    """Microseconds since 1970-01-01 UTC of a tz-aware datetime; naive values raise ``ValueError``."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: times must be timezone-aware (UTC)")
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(value: int) -> datetime:
    """The tz-aware UTC datetime of microseconds since the Unix epoch."""
    return EPOCH + timedelta(microseconds=int(value))


class UtcTimestamp(TypeDecorator):
    """A tz-aware UTC instant: TIMESTAMPTZ on PostgreSQL, epoch microseconds (INTEGER) on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_epoch_us(value)
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: times must be timezone-aware (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return from_epoch_us(value)
        return value.astimezone(UTC)
