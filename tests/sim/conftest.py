"""Helpers for the sim conformance tests: connect the unmodified ib_async client and wait for events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def ib_connect() -> Iterator[Callable[..., Any]]:
    """``ib_connect(gateway, client_id=1, **kw)`` -> a connected ``ib_async.IB``; all are disconnected afterwards."""
    from ib_async import IB

    clients: list[Any] = []

    def connect(gateway: Any, client_id: int = 1, **kwargs: Any) -> Any:
        ib = IB()
        clients.append(ib)
        ib.connect("127.0.0.1", gateway.port, clientId=client_id, timeout=kwargs.pop("timeout", 4), **kwargs)
        return ib

    yield connect
    for ib in clients:
        ib.disconnect()


def _wait_until(ib: Any, condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Run ib_async's loop until ``condition()`` holds or ``timeout_s`` passes; returns the final condition."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        ib.sleep(0.05)
    return condition()


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """``wait_until(ib, condition, timeout_s=10)``: pump ib_async's loop until the condition holds (event wait)."""
    return _wait_until


@pytest.fixture
def errors() -> Callable[[Any], list[tuple[int, int, str]]]:
    """``errors(ib)`` -> a live list of (reqId, code, text) from ib.errorEvent."""

    def attach(ib: Any) -> list[tuple[int, int, str]]:
        seen: list[tuple[int, int, str]] = []
        ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
        return seen

    return attach
