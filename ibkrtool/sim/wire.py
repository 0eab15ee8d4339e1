"""TWS wire framing: 4-byte big-endian length prefix, payload of NUL-terminated ASCII fields (both directions)."""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

API_PREAMBLE = b"API\0"
MAX_FRAME_BYTES = 16 * 1024 * 1024  # a sane bound: real messages are a few kB at most
UNSET_INTEGER = 2147483647
UNSET_DOUBLE = 1.7976931348623157e308


class WireError(Exception):
    """The peer sent bytes that are not the TWS protocol."""


@dataclass(frozen=True)
class Hello:
    """What the client advertised in its handshake: ``vMIN..MAX[ options]``."""

    min_version: int
    max_version: int
    options: str


def format_field(value: object) -> str:
    """One field as TWS writes it: ints in decimal, bools 1/0, None empty, UNSET values as IB spells them."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is float:
        return _format_float(value)  # type: ignore[arg-type]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return _format_float(float(value))
    return str(value)


def _format_float(value: float) -> str:
    if value == UNSET_DOUBLE:
        return "1.7976931348623157E308"
    if math.isinf(value):
        return "Infinite"
    if value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    return repr(round(value, 10))


def frame(fields: Iterable[object]) -> bytes:
    """Frame a message: length prefix + every field followed by NUL (including the last).

    One join and one encode per message, and each distinct float formatted once per message: a 1,800-bar history
    reply is ~14,000 fields whose prices repeat, and per-field work made the sim, not IB's pacing rules, the
    bottleneck of a fast backfill (bench/pacing.py).
    """
    seen: dict[float, str] = {}
    texts = []
    for value in fields:
        if type(value) is float:
            text = seen.get(value)  # type: ignore[call-overload]
            if text is None:
                text = seen[value] = _format_float(value)  # type: ignore[index, arg-type]
            texts.append(text)
        else:
            texts.append(format_field(value))
    payload = ("\0".join(texts) + "\0").encode("utf-8", "replace") if texts else b""
    return struct.pack(">I", len(payload)) + payload


def split_payload(payload: bytes) -> list[str]:
    """Fields of one payload; the trailing NUL leaves one empty element that is dropped (as the client does)."""
    parts = payload.decode("utf-8", "replace").split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """Read one length-prefixed payload. Raises asyncio.IncompleteReadError at EOF, WireError on absurd lengths."""
    header = await reader.readexactly(4)
    (size,) = struct.unpack(">I", header)
    if size > MAX_FRAME_BYTES:
        raise WireError(f"frame of {size} bytes exceeds the limit")
    return await reader.readexactly(size)


def parse_hello(payload: bytes) -> Hello:
    """Parse the handshake version string ``v157..178`` with optional `` +OPTIONS``. Raises WireError."""
    text = payload.decode("ascii", "replace").strip("\0")
    head, _, options = text.partition(" ")
    if not head.startswith("v"):
        raise WireError(f"bad handshake {text!r}: expected vMIN..MAX")
    low, sep, high = head[1:].partition("..")
    try:
        min_v = int(low)
        max_v = int(high) if sep else min_v
    except ValueError:
        raise WireError(f"bad handshake {text!r}: versions are not integers") from None
    return Hello(min_v, max_v, options.strip())


async def read_hello(reader: asyncio.StreamReader) -> Hello:
    """Read ``API\\0`` + one framed version string. Raises WireError or asyncio.IncompleteReadError."""
    preamble = await reader.readexactly(4)
    if preamble != API_PREAMBLE:
        raise WireError(f"bad preamble {preamble!r}: not a TWS API client")
    return parse_hello(await read_frame(reader))
