"""Fixtures for the simulated IB gateway.

- ``sim_gateway``: a fresh sim on a free loopback port, started inside a regular NYSE session
  (2026-11-20T15:00:00Z = 10:00 New York, a Friday), speed 1x, pacing windows scaled by 0.01. Stopped after the test.
- ``sim_factory(**kwargs)``: start sims with other settings (same keywords as ``ibkrtool.sim.server.start_sim``);
  every sim it started is stopped after the test.

Connect with ib_async: ``IB().connect("127.0.0.1", sim_gateway.port, clientId=1)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

SIM_START = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
SIM_DEFAULTS: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "seed": 1, "start": SIM_START, "speed": 1.0,
                                "pacing_scale": 0.01, "account": "DU1234567"}


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., Any]]:
    """Factory: ``sim_factory(speed=60, faults="reject-orders")`` -> a running SimGateway (``.port``)."""
    from ibkrtool.sim.server import start_sim

    started: list[Any] = []

    def make(**kwargs: Any) -> Any:
        gateway = start_sim(**{**SIM_DEFAULTS, **kwargs})
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture
def sim_gateway(sim_factory: Callable[..., Any]) -> Any:
    """A running sim gateway with the defaults above (``.port``, ``.stats``, ``.violations``, ``.stop()``)."""
    return sim_factory()
