"""PostgreSQL binary COPY, built and parsed with numpy (no per-row Python work when encoding or decoding).

Format: PostgreSQL docs, "COPY ... Binary Format": a 19-byte header, then per tuple an int16 field count and, per
field, an int32 byte length (-1 = NULL) followed by the value in network byte order; an int16 -1 trailer.
Timestamps are int64 microseconds since 2000-01-01 UTC.
"""

from __future__ import annotations

import struct

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds

VALUE_COLUMNS = ("open", "high", "low", "close", "volume", "wap", "bar_count")
KEY_COLUMNS = ("conid", "bar_size", "what_to_show")
BAR_COPY_COLUMNS = (*KEY_COLUMNS, "ts", *VALUE_COLUMNS)
STAGE_COPY_COLUMNS = ("ts", *VALUE_COLUMNS)
_NULLABLE = ("volume", "wap", "bar_count")


def encode_bars(ts_us: np.ndarray, values: dict[str, np.ndarray], key: tuple[int, str, str] | None = None
                ) -> PayloadReader:
    """A binary COPY payload: ``BAR_COPY_COLUMNS`` with ``key = (conid, bar_size, what_to_show)``, else
    ``STAGE_COPY_COLUMNS``. ``ts_us``: Unix epoch microseconds (UTC); ``values``: float64 arrays of open..bar_count,
    NaN becoming NULL in the nullable columns.

    Rows are grouped by NULL pattern (each group one fixed-size numpy record array); COPY order is irrelevant.
    """
    pattern = np.zeros(len(ts_us), dtype=np.int8)
    for i, col in enumerate(_NULLABLE):
        pattern |= np.isnan(values[col]).astype(np.int8) << i
    codes = np.unique(pattern)
    parts: list[bytes | np.ndarray] = [HEADER]
    for code in codes:
        rows = slice(None) if len(codes) == 1 else np.flatnonzero(pattern == code)
        null_cols = {c for i, c in enumerate(_NULLABLE) if code >> i & 1}
        parts.append(_encode_group(ts_us[rows], {c: v[rows] for c, v in values.items()}, null_cols, key))
    parts.append(TRAILER)
    return PayloadReader(parts)


def _prefix(key: tuple[int, str, str] | None) -> bytes:
    """The constant start of every tuple: field count and, with a key, the conid/bar_size/what_to_show fields."""
    if key is None:
        return struct.pack(">h", len(STAGE_COPY_COLUMNS))
    size, what = key[1].encode(), key[2].encode()
    return struct.pack(f">hiqi{len(size)}si{len(what)}s", len(BAR_COPY_COLUMNS), 8, key[0], len(size), size,
                       len(what), what)


def _encode_group(ts_us: np.ndarray, values: dict[str, np.ndarray], null_cols: set[str],
                  key: tuple[int, str, str] | None) -> np.ndarray:
    prefix = _prefix(key)
    fields: list[tuple[str, str]] = [("prefix", f"V{len(prefix)}"), ("l_ts", ">i4"), ("ts", ">i8")]
    for col in VALUE_COLUMNS:
        fields.append((f"l_{col}", ">i4"))
        if col not in null_cols:
            fields.append((col, ">i8" if col == "bar_count" else ">f8"))
    rec = np.empty(len(ts_us), dtype=np.dtype(fields))
    rec["prefix"] = np.void(prefix)
    rec["l_ts"], rec["ts"] = 8, ts_us - PG_EPOCH_US
    for col in VALUE_COLUMNS:
        if col in null_cols:
            rec[f"l_{col}"] = -1
        else:
            rec[f"l_{col}"] = 8
            rec[col] = values[col].astype(np.int64) if col == "bar_count" else values[col]
    return rec


class PayloadReader:
    """A read-only file over the payload's parts, so COPY streams the numpy records without joining them first."""

    def __init__(self, parts: list[bytes | np.ndarray]) -> None:
        self._parts = [memoryview(p).cast("B") if isinstance(p, bytes) else memoryview(p.view(np.uint8))
                       for p in parts]
        self._index = 0
        self._offset = 0

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)

    def read(self, size: int = -1) -> bytes:
        chunks: list[bytes] = []
        want = size if size >= 0 else len(self)
        while want > 0 and self._index < len(self._parts):
            part = self._parts[self._index]
            piece = part[self._offset:self._offset + want]
            chunks.append(piece.tobytes())
            want -= len(piece)
            self._offset += len(piece)
            if self._offset >= len(part):
                self._index, self._offset = self._index + 1, 0
        return b"".join(chunks)

    def rewind(self) -> PayloadReader:
        self._index = self._offset = 0
        return self


def read_dtype(n_float: int) -> np.dtype:
    """Record layout of ``COPY (SELECT ts, <n_float float8 NOT NULL>) TO STDOUT (FORMAT binary)``."""
    fields: list[tuple[str, str]] = [("n", ">i2"), ("l_ts", ">i4"), ("ts", ">i8")]
    for i in range(n_float):
        fields += [(f"l{i}", ">i4"), (f"f{i}", ">f8")]
    return np.dtype(fields)


def decode_fixed(payload: memoryview | bytes, n_float: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ts_us, values)`` from a whole binary COPY payload of ``read_dtype(n_float)`` records (the stream
    ``FixedRecordSink`` decodes piecewise). Raises ``ValueError`` if it is not one."""
    dtype = read_dtype(n_float)
    body = len(payload) - len(HEADER) - len(TRAILER)
    if body < 0 or bytes(payload[:11]) != HEADER[:11] or bytes(payload[-2:]) != TRAILER or body % dtype.itemsize:
        raise ValueError(f"not a complete binary COPY stream of {n_float + 1}-column records ({len(payload)} bytes)")
    rec = np.frombuffer(payload, dtype=dtype, count=body // dtype.itemsize, offset=len(HEADER))
    values = np.empty((n_float, len(rec)), dtype=np.float64)
    for i in range(n_float):
        values[i] = rec[f"f{i}"]
    return rec["ts"] + PG_EPOCH_US, values


class FixedRecordSink:
    """A file-like target for ``cursor.copy_expert`` that decodes fixed-size binary COPY records into numpy chunks
    as they arrive (no row count needed up front). ``result()`` joins the chunks into the final arrays, freeing each
    chunk as it is copied, so peak memory stays near the size of the result.
    """

    BUFFER_BYTES = 4 << 20
    FIRST_CHUNK_ROWS = 1 << 16
    MAX_CHUNK_ROWS = 1 << 20

    def __init__(self, n_float: int) -> None:
        self.dtype = read_dtype(n_float)
        self.n_float = n_float
        self.rows = 0
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self._room = 0  # free rows in the last chunk
        self._buf = bytearray()
        self._header_seen = False

    def write(self, data: bytes) -> int:
        self._buf += data
        if len(self._buf) >= self.BUFFER_BYTES:
            self._drain()
        return len(data)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ts_us, values)``: Unix epoch microseconds and a ``(n_float, rows)`` float64 block.

        Raises ``ValueError`` if the stream is incomplete or malformed.
        """
        self._drain()
        if not self._header_seen or bytes(self._buf) != TRAILER:
            raise ValueError(f"binary COPY stream ended unexpectedly ({len(self._buf)} undecoded bytes)")
        if len(self._chunks) == 1:
            ts, values = self._chunks.pop()
            return ts[: self.rows], values[:, : self.rows]
        ts_us = np.empty(self.rows, dtype=np.int64)
        block = np.empty((self.n_float, self.rows), dtype=np.float64)
        at = 0
        while self._chunks:
            ts, values = self._chunks.pop(0)
            used = min(len(ts), self.rows - at)
            ts_us[at:at + used], block[:, at:at + used] = ts[:used], values[:, :used]
            at += used
            del ts, values  # give the chunk back before copying the next one
        return ts_us, block

    def _drain(self) -> None:
        if not self._header_seen:
            if len(self._buf) < len(HEADER):
                return
            if bytes(self._buf[:11]) != HEADER[:11]:
                raise ValueError("not a PostgreSQL binary COPY stream")
            del self._buf[: len(HEADER)]
            self._header_seen = True
        count = len(self._buf) // self.dtype.itemsize
        if count == 0:
            return
        rec = np.frombuffer(self._buf, dtype=self.dtype, count=count)
        done = 0
        while done < count:
            if self._room == 0:
                self._new_chunk()
            ts, values = self._chunks[-1]
            start = len(ts) - self._room
            take = min(self._room, count - done)
            part = rec[done:done + take]
            ts[start:start + take] = part["ts"] + PG_EPOCH_US
            for i in range(self.n_float):
                values[i, start:start + take] = part[f"f{i}"]
            done += take
            self._room -= take
        self.rows += count
        del rec, part
        del self._buf[: count * self.dtype.itemsize]

    def _new_chunk(self) -> None:
        size = min(self.FIRST_CHUNK_ROWS << len(self._chunks), self.MAX_CHUNK_ROWS)
        self._chunks.append((np.empty(size, dtype=np.int64), np.empty((self.n_float, size), dtype=np.float64)))
        self._room = size
