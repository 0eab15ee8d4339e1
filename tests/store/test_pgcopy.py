"""Binary COPY encoding/decoding, without a server: layouts, NULL groups and chunked decoding."""

from __future__ import annotations

import struct

import numpy as np

from ibkrtool.store import pgcopy


def _records(payload: pgcopy.PayloadReader) -> bytes:
    data = payload.read()
    assert data.startswith(pgcopy.HEADER) and data.endswith(pgcopy.TRAILER)
    return data[len(pgcopy.HEADER):-len(pgcopy.TRAILER)]


def test_stage_layout_with_nulls_grouped() -> None:
    ts = np.array([0, 1_000_000], dtype=np.int64) + pgcopy.PG_EPOCH_US  # 2000-01-01 and one second later
    values = {c: np.array([1.5, 2.5]) for c in pgcopy.VALUE_COLUMNS}
    values["wap"] = np.array([np.nan, 3.0])
    body = _records(pgcopy.encode_bars(ts, values))
    # field count; (length, value) for ts, open..volume, wap, bar_count (int8); ts in µs since 2000-01-01
    full = struct.pack(">hiq" + "id" * 6 + "iq", 8, 8, 1_000_000, *[8, 2.5] * 5, 8, 3.0, 8, 2)
    null_wap = struct.pack(">hiq" + "id" * 5 + "i" + "iq", 8, 8, 0, *[8, 1.5] * 5, -1, 8, 1)
    assert sorted([body[:len(full)], body[len(full):]], key=len) == sorted([full, null_wap], key=len)


def test_keyed_layout_starts_with_the_series_key() -> None:
    values = {c: np.array([1.0]) for c in pgcopy.VALUE_COLUMNS}
    body = _records(pgcopy.encode_bars(np.array([pgcopy.PG_EPOCH_US]), values, key=(756733, "1s", "TRADES")))
    assert body.startswith(struct.pack(">hiqi2si6s", 11, 8, 756733, 2, b"1s", 6, b"TRADES"))


def test_payload_reader_streams_in_any_chunk_size() -> None:
    reader = pgcopy.PayloadReader([b"abc", np.arange(5, dtype=np.uint8), b"Z"])
    pieces = []
    while chunk := reader.read(2):
        pieces.append(chunk)
    assert b"".join(pieces) == b"abc\x00\x01\x02\x03\x04Z" and len(reader) == 9


def test_sink_decodes_across_chunks_and_buffer_boundaries() -> None:
    sink = pgcopy.FixedRecordSink(2)
    sink.FIRST_CHUNK_ROWS, sink.MAX_CHUNK_ROWS, sink.BUFFER_BYTES = 3, 4, 50
    stream = pgcopy.HEADER + b"".join(
        struct.pack(">hiqidid", 3, 8, i - pgcopy.PG_EPOCH_US, 8, float(i), 8, -float(i)) for i in range(20))
    stream += pgcopy.TRAILER
    for at in range(0, len(stream), 7):  # arbitrary message boundaries
        sink.write(stream[at:at + 7])
    ts, values = sink.result()
    assert ts.tolist() == list(range(20))
    assert values[0].tolist() == [float(i) for i in range(20)] and values[1, -1] == -19.0


def test_truncated_stream_is_an_error() -> None:
    sink = pgcopy.FixedRecordSink(1)
    sink.write(pgcopy.HEADER + struct.pack(">hiqid", 2, 8, 0, 8, 1.0)[:-3])
    try:
        sink.result()
    except ValueError as exc:
        assert "ended unexpectedly" in str(exc)
    else:
        raise AssertionError("a truncated stream was accepted")
