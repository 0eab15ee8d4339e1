"""``sim``: the simulated IB gateway as a command — build it from the request, serve until stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ibkrtool.errors import InputError


@dataclass(frozen=True)
class SimRequest:
    """Where to listen and which market to simulate (``start`` None: now; ``replay``: a bars CSV or db URL)."""

    host: str = "127.0.0.1"
    port: int = 7497
    seed: int = 1
    start: datetime | None = None
    speed: float = 1.0
    pacing_scale: float = 1.0
    account: str = "DU1234567"
    faults: str | None = None
    replay: str | None = None
    replay_symbol: str | None = None
    replay_bar_size: str = "1m"

    def check(self) -> None:
        if self.speed <= 0:
            raise InputError(f"--speed {self.speed:g}: must be > 0")
        if self.pacing_scale <= 0:
            raise InputError(f"--pacing-scale {self.pacing_scale:g}: must be > 0")


StopWiring = Callable[[asyncio.AbstractEventLoop, asyncio.Event], None]


def serve_sim(request: SimRequest, wire_stop: StopWiring) -> dict[str, Any]:
    """Serve until the stop event is set; ``wire_stop(loop, stop)`` connects it (the CLI: to SIGINT and SIGTERM).
    Returns the summary of what was served. Raises ``InputError``, or ``GatewayError`` if the port is taken."""
    from ibkrtool.runtime import steady_gc
    from ibkrtool.sim.server import build_server, serve

    request.check()
    source = load_replay(request.replay, request.replay_symbol, request.replay_bar_size)
    server = build_server(request.seed, request.start, request.speed, request.pacing_scale, request.account,
                          request.faults, source)

    async def run() -> dict[str, Any]:
        stop = asyncio.Event()
        wire_stop(asyncio.get_running_loop(), stop)
        return await serve(server, request.host, request.port, stop)

    with steady_gc():
        return asyncio.run(run())


def load_replay(source: str | None, symbol: str | None, bar_size: str) -> Any:
    """A replay source from a bars CSV (``SPY_1m.csv``) or an ibkrtool database URL, None without one.

    Raises ``InputError`` when the file cannot be read or the sim does not know the instrument.
    """
    if not source:
        return None
    from ibkrtool.sim.contracts import find_contracts
    from ibkrtool.sim.replay import ReplaySource

    is_url = "://" in source
    stem = Path(source).stem if not is_url else ""
    symbol = (symbol or stem.split("_")[0]).upper()
    if not symbol:
        raise InputError("--replay: name the instrument with --replay-symbol SPY")
    try:
        if not is_url:
            return ReplaySource.from_csv(source, symbol, bar_size)
        contracts = find_contracts(symbol, "", "", "") or find_contracts("", "", "", "", local_symbol=symbol)
        if not contracts:
            raise InputError(f"--replay-symbol {symbol}: the sim does not know this instrument")
        return ReplaySource.from_database(source, symbol, contracts[0].conid, bar_size)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"--replay {source}: cannot read bars ({exc}); expected columns ts,open,high,low,close,"
                         "volume") from None
