"""Shared pieces of the live-trader tests: a fast-strategy config and a runner against a sim gateway."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ibkrtool.execution.live import LiveConfig, run_live
from ibkrtool.ib.gateway import open_gateway
from ibkrtool.ib.session import ConnectOptions
from ibkrtool.store.engine import open_engine
from ibkrtool.store.migrate import init_db
from ibkrtool.strategies import get_strategy, parse_params
from tests.plugins.sim import SIM_START

# Short EMAs and Aroon on 5m bars change target every few bars: several trades in a few seconds at speed 300.
FAST = {"ema_fast": "3", "ema_slow": "8", "aroon_n": "5", "allow_short": "true"}
SPEED = 300  # one 5-minute bar per real second


def fast_config(**overrides: Any) -> LiveConfig:
    strat = get_strategy("ema-aroon")
    base = LiveConfig("ema-aroon", parse_params(strat, FAST), "SPY", 10.0, backoff_s=0.2, duration_s=30.0)
    return replace(base, **overrides)


def sim_minutes(minutes: float) -> datetime:
    return SIM_START + timedelta(minutes=minutes)


def trade(gateway: Any, db_url: str, config: LiveConfig, client_id: int = 5, on_status: Any = None):
    engine = open_engine(db_url)
    init_db(engine)
    opts = ConnectOptions(port=gateway.port, client_id=client_id, timeout_s=5.0)

    async def run():
        async with open_gateway(opts, readonly=False) as connected:
            return await run_live(connected, config, engine, on_status=on_status)

    state, log = asyncio.run(run())
    return state, log, engine
