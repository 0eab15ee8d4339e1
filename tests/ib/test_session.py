"""Connecting through ib_async to the sim: ready, unreachable (exit 4, one line), client-id clash (326)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from ibkrtool.errors import GatewayError
from ibkrtool.ib.session import ConnectOptions, ib_session

pytestmark = pytest.mark.timeout(30)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connects_read_only_and_disconnects(sim_gateway) -> None:
    async def run() -> tuple[bool, list[str]]:
        async with ib_session(ConnectOptions(port=sim_gateway.port, client_id=7)) as ib:
            return ib.isConnected(), ib.managedAccounts()

    connected, accounts = asyncio.run(run())
    assert connected and accounts == ["DU1234567"]


def test_nothing_listening_is_one_actionable_line() -> None:
    port = _closed_port()
    opts = ConnectOptions(port=port, timeout_s=1, attempts=2, backoff_s=0.01)
    with pytest.raises(GatewayError) as err:
        asyncio.run(_connect(opts))
    assert str(err.value) == (
        f"cannot reach TWS/IB Gateway at 127.0.0.1:{port} — is it running with API access enabled "
        "(Global Configuration → API → Settings)? Try 'ibkrtool sim' for a local gateway.")
    assert err.value.exit_code == 4


def test_client_id_clash_is_reported_as_such(sim_gateway) -> None:
    async def run() -> None:
        async with ib_session(ConnectOptions(port=sim_gateway.port, client_id=3)):
            await _connect(ConnectOptions(port=sim_gateway.port, client_id=3, timeout_s=2, attempts=1))

    with pytest.raises(GatewayError, match=r"client id 3 is already in use .*\(IB 326\)"):
        asyncio.run(run())


async def _connect(opts: ConnectOptions) -> None:
    async with ib_session(opts):
        pass
