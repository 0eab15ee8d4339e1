"""Which time ranges of a series have been fetched (including ranges that held no bars), and their union."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from ibkrtool.store import tables as t


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class CoverageRange:
    """A fetched range, half-open ``[start, end)`` in UTC. ``bars_received`` may be 0 (IB had no bars there)."""

    start: datetime
    end: datetime
    source: str = "ib"
    bars_received: int = 0
    fetched_at: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("coverage bounds must be timezone-aware (UTC)")
        if self.end < self.start:
            raise ValueError(f"coverage range ends ({self.end}) before it starts ({self.start})")


def record_coverage(conn: Connection, conid: int, bar_size: str, what_to_show: str, rng: CoverageRange) -> None:
    """Insert one coverage row in the caller's transaction."""
    conn.execute(insert(t.coverage).values(
        conid=conid, bar_size=bar_size, what_to_show=what_to_show, range_start=rng.start, range_end=rng.end,
        fetched_at=rng.fetched_at, source=rng.source, bars_received=rng.bars_received))


def merge_ranges(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The union of half-open ranges, sorted; touching ranges are joined."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def covered_ranges(bind: Engine | Connection, conid: int, bar_size: str, what_to_show: str
                   ) -> list[tuple[datetime, datetime]]:
    """The merged ``[start, end)`` UTC ranges fetched so far for the series."""
    c = t.coverage.c
    query = select(c.range_start, c.range_end).where(
        c.conid == conid, c.bar_size == bar_size, c.what_to_show == what_to_show)
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            rows = conn.execute(query).all()
    else:
        rows = bind.execute(query).all()
    return merge_ranges([(r[0], r[1]) for r in rows])


def all_covered_ranges(engine: Engine) -> dict[tuple[int, str, str], list[tuple[datetime, datetime]]]:
    """Merged coverage of every series, keyed by ``(conid, bar_size, what_to_show)``."""
    c = t.coverage.c
    found: dict[tuple[int, str, str], list[tuple[datetime, datetime]]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(c.conid, c.bar_size, c.what_to_show, c.range_start, c.range_end)):
            found.setdefault((row[0], row[1], row[2]), []).append((row[3], row[4]))
    return {key: merge_ranges(value) for key, value in found.items()}
