"""The gateway as the application layer opens it: from the workspace's settings, read-only unless orders go out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from ibkrtool.app.workspace import Workspace

if TYPE_CHECKING:
    from ibkrtool.ib.gateway import Gateway


@asynccontextmanager
async def gateway_of(ws: Workspace, readonly: bool = True) -> AsyncIterator[Gateway]:
    """``async with gateway_of(ws) as gateway``: connected on entry, closed on exit. Data commands stay
    read-only; only order-sending commands pass ``readonly=False``. Raises ``GatewayError`` (exit 4)."""
    from ibkrtool.ib.gateway import open_gateway

    async with open_gateway(ws.settings, readonly=readonly) as gateway:
        yield gateway
