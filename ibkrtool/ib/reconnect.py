"""The one reconnect loop: bounded attempts with doubling backoff, ending early when the caller says stop.

Used through ``Gateway.reconnect`` by both ``collect`` and the live trader. The pause comes BEFORE each attempt:
after a lost connection the gateway needs a moment (and the old client id time to be freed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ibkrtool.errors import GatewayError

log = logging.getLogger(__name__)
Stop = Callable[[], bool]
OnRetry = Callable[[int, float, GatewayError], None]
"""Called as ``(attempt, next_pause_s, error)`` after a failed attempt."""
_SLICE_S = 0.05  # how often a pause checks ``stop`` (so a stop request is honoured within 50 ms)


@dataclass(frozen=True)
class ReconnectPolicy:
    """Pause ``backoff_s`` before the first attempt, doubling up to ``max_backoff_s``; give up after
    ``max_attempts`` failed attempts (``GatewayError``)."""

    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_attempts: int = 40

    def pauses(self) -> list[float]:
        """The pause before each attempt, in seconds."""
        out, pause = [], self.backoff_s
        for _ in range(self.max_attempts):
            out.append(pause)
            pause = min(pause * 2, self.max_backoff_s)
        return out


async def pause(seconds: float, stop: Stop) -> None:
    """Sleep ``seconds`` (real time), returning early once ``stop()`` is true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not stop():
        left = end - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(_SLICE_S, left))


async def reconnect_loop(attempt: Callable[[], Awaitable[None]], policy: ReconnectPolicy, stop: Stop,
                         on_retry: OnRetry | None = None) -> bool:
    """Run ``attempt`` until it succeeds (True) or ``stop()`` is true (False). Raises the last ``GatewayError``
    once ``policy.max_attempts`` attempts failed."""
    pauses = policy.pauses()
    for number, wait in enumerate(pauses, start=1):
        await pause(wait, stop)
        if stop():
            return False
        try:
            await attempt()
            return True
        except GatewayError as exc:
            log.info("reconnect attempt %d/%d failed: %s", number, policy.max_attempts, exc)
            if number == len(pauses):
                raise
            if on_retry is not None:
                on_retry(number, pauses[number], exc)
    return False
