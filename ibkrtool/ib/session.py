"""Connecting to TWS / IB Gateway: timeout, bounded retries with backoff, client-id clashes, one event loop.

Commands use ``async with ib_session(settings) as ib:`` inside one ``asyncio.run`` so that every IB call runs on
the same event loop (ib_async requests made from another loop wait for their timeout, facts §6).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ibkrtool.errors import GatewayError
from ibkrtool.ib import errors as codes
from ibkrtool.ib.compat import IB
from ibkrtool.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach the gateway. ``readonly`` is True for every data command (no order sync at connect)."""

    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 1
    timeout_s: float = 10.0
    readonly: bool = True
    attempts: int = 3
    backoff_s: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings, readonly: bool = True, **overrides: object) -> ConnectOptions:
        base = cls(settings.ib_host, settings.ib_port, settings.client_id, settings.ib_timeout_s, readonly)
        return base if not overrides else cls(**{**base.__dict__, **overrides})  # type: ignore[arg-type]


def unreachable_message(host: str, port: int) -> str:
    return (
        f"cannot reach TWS/IB Gateway at {host}:{port} — is it running with API access enabled "
        "(Global Configuration → API → Settings)? Try 'ibkrtool sim' for a local gateway."
    )


def _connect_kwargs(ib: IB, opts: ConnectOptions) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "host": opts.host, "port": opts.port, "clientId": opts.client_id, "timeout": opts.timeout_s,
        "readonly": opts.readonly,
    }
    if "fetchFields" in inspect.signature(ib.connectAsync).parameters:
        from ib_async.ib import StartupFetch, StartupFetchNONE  # ib_async only; ib_insync syncs everything

        # Data commands need no order or execution sync; positions are always requested by ib_async anyway.
        kwargs["fetchFields"] = StartupFetchNONE if opts.readonly else StartupFetch.POSITIONS | StartupFetch.ORDERS_OPEN
    return kwargs


async def connect(opts: ConnectOptions) -> IB:
    """Connect and return a ready ``IB``. Retries ``attempts`` times with doubling backoff.

    Raises ``GatewayError`` (exit 4) when nothing answers, or when the client id is already in use (IB 326).
    """
    delay = opts.backoff_s
    for attempt in range(1, opts.attempts + 1):
        ib = IB()
        ib.RaiseRequestErrors = True
        clash: list[str] = []

        def on_error(req_id: int, code: int, message: str, contract: object = None, _clash: list = clash) -> None:
            if code == codes.CLIENT_ID_IN_USE:
                _clash.append(message)

        ib.errorEvent += on_error
        try:
            await ib.connectAsync(**_connect_kwargs(ib, opts))
            log.info("connected to %s:%s as client %s", opts.host, opts.port, opts.client_id)
            return ib
        except (OSError, asyncio.TimeoutError, TimeoutError, ConnectionError) as exc:
            ib.disconnect()
            if clash:
                raise GatewayError(
                    f"client id {opts.client_id} is already in use at {opts.host}:{opts.port} (IB 326) — "
                    "pass another --client-id or close the other session"
                ) from None
            log.info("connect attempt %d/%d failed: %s", attempt, opts.attempts, exc or type(exc).__name__)
        if attempt < opts.attempts:
            await asyncio.sleep(delay)
            delay *= 2
    raise GatewayError(unreachable_message(opts.host, opts.port))


@asynccontextmanager
async def ib_session(opts: ConnectOptions) -> AsyncIterator[IB]:
    """``async with ib_session(opts) as ib``: connected on entry, disconnected on exit (also on errors)."""
    ib = await connect(opts)
    try:
        yield ib
    finally:
        ib.disconnect()
