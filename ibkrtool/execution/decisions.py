"""Every decision of the live trader — bar, indicators, signal, order, fill, skip — as one record, sent to the
log (stderr via the CLI's logging) and appended to a decisions CSV (``--decisions FILE``; ``-`` writes stdout)
flushed per row, so a ``kill -9`` loses nothing already decided.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

log = logging.getLogger("ibkrtool.live")
DecisionValues = dict[str, float | str]
"""Indicator values, close, fill price, exec id …: JSON-able numbers and text."""
DECISION_COLUMNS = ("time", "bar", "kind", "detail", "position", "target", "order_ref", "values")


@dataclass(frozen=True)
class Decision:
    """``kind``: bar | signal | order | fill | skip | reject | risk | reconcile | connect | stop."""

    time: datetime  # when decided (UTC wall clock)
    bar: datetime | None  # start (UTC) of the closed bar it concerns
    kind: str
    detail: str
    position: float | None = None
    target: float | None = None
    order_ref: str = ""
    values: DecisionValues = field(default_factory=dict)  # indicator values, close, fill price ...

    def row(self) -> dict[str, str]:
        return {"time": self.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "bar": self.bar.strftime("%Y-%m-%dT%H:%M:%SZ") if self.bar else "", "kind": self.kind,
                "detail": self.detail, "position": "" if self.position is None else f"{self.position:g}",
                "target": "" if self.target is None else f"{self.target:g}", "order_ref": self.order_ref,
                "values": json.dumps(self.values, default=float, allow_nan=True)}


class DecisionLog:
    """Collects decisions in memory (``records``), logs each one, and appends it to ``path`` when given (``-``:
    stdout, header first)."""

    def __init__(self, path: str | None = None, sink: Callable[[Decision], None] | None = None) -> None:
        self.records: list[Decision] = []
        self.sink = sink  # e.g. the database writer, set by the trader once it knows its run id
        self._handle: IO[str] | None = None
        self._writer: csv.DictWriter[str] | None = None
        self._owned = path != "-"
        if path:
            new = path == "-" or not _has_content(path)
            # kept open for the trader's lifetime
            self._handle = sys.stdout if path == "-" else open(path, "a", newline="")  # noqa: SIM115
            self._writer = csv.DictWriter(self._handle, fieldnames=DECISION_COLUMNS, lineterminator="\n")
            if new:
                self._writer.writeheader()

    def add(self, decision: Decision) -> Decision:
        self.records.append(decision)
        bar = f"{decision.bar:%H:%M}Z " if decision.bar else ""
        log.info("%s%s: %s", bar, decision.kind, decision.detail)
        if self._writer is not None:
            self._writer.writerow(decision.row())
            self._handle.flush()  # type: ignore[union-attr]
        if self.sink is not None:
            self.sink(decision)
        return decision

    def of_kind(self, kind: str) -> list[Decision]:
        return [d for d in self.records if d.kind == kind]

    def close(self) -> None:
        if self._handle is not None:
            if self._owned:
                self._handle.close()
            else:
                self._handle.flush()
            self._handle = None


def _has_content(path: str) -> bool:
    try:
        with open(path) as handle:
            return bool(handle.read(1))
    except OSError:
        return False
