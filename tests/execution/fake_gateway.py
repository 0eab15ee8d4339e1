"""A scripted stand-in for ``ibkrtool.ib.gateway.Gateway``: the methods the live trader uses, no socket.

Each call of ``closed_bars`` plays the next session of ``sessions`` (closed-bar frames and connectivity events);
market orders fill at once at the last close, commission 1.0. Everything sent is kept for assertions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pandas as pd

from ibkrtool.ib.events import ConnectivityEvent, Disconnected
from ibkrtool.ib.live_bars import ClosedBars
from ibkrtool.ib.orders import OrderOutcome, WorkingOrder
from ibkrtool.ib.reconnect import OnRetry, ReconnectPolicy
from ibkrtool.model import BarSize, Instrument
from ibkrtool.model.contract import Contract
from ibkrtool.model.order import Fill, OrderIntent

UTC = timezone.utc
Item = ClosedBars | ConnectivityEvent


def bars(start: datetime, closes: Sequence[float], minutes: int = 5) -> pd.DataFrame:
    """A bars frame of ``closes`` (open = previous close), one bar every ``minutes`` from ``start`` (UTC)."""
    index = pd.DatetimeIndex([start + timedelta(minutes=minutes * i) for i in range(len(closes))], name="ts")
    opens = [closes[0], *closes[:-1]]
    return pd.DataFrame({"open": opens, "high": [max(o, c) for o, c in zip(opens, closes, strict=True)],
                         "low": [min(o, c) for o, c in zip(opens, closes, strict=True)], "close": list(closes),
                         "volume": 100.0, "wap": list(closes), "bar_count": 10.0}, index=index).astype("float64")


@dataclass
class FakeGateway:
    sessions: list[list[Item]]
    account: str = "DU1234567"
    held: float = 0.0
    connected: bool = True
    placed: list[OrderIntent] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    reconnects: int = 0
    subscriptions: int = 0
    last_close: float = 0.0

    def managed_accounts(self) -> list[str]:
        return [self.account]

    async def qualify(self, instrument: Instrument, engine: object = None) -> Contract:
        sec_type = "CASH" if instrument.is_forex else "STK"
        return Contract(conid=1000, symbol=instrument.symbol, sec_type=sec_type, exchange=instrument.exchange,
                        currency=instrument.currency)

    async def position(self, conid: int, account: str = "") -> float:
        return self.held

    async def working_orders(self, conid: int | None = None) -> list[WorkingOrder]:
        return []

    async def executions(self, mode: str, conid: int | None = None) -> list[Fill]:
        return list(self.fills)

    async def place_and_wait(self, contract: Contract, intent: OrderIntent, mode: str, account: str = "",
                             timeout_s: float = 30.0) -> OrderOutcome:
        self.placed.append(intent)
        n = len(self.placed)
        fill = Fill(f"exec-{n}", intent.order_ref, intent.symbol, intent.side, intent.quantity, self.last_close, 1.0,
                    intent.signal_ts + timedelta(minutes=5), mode, "USD", n, n, account)
        self.fills.append(fill)
        self.held += intent.signed_quantity
        return OrderOutcome(intent, n, n, "Filled", [fill])

    async def reconnect(self, stop: Callable[[], bool] = lambda: False, on_retry: OnRetry | None = None,
                        policy: ReconnectPolicy | None = None) -> bool:
        self.reconnects += 1
        self.connected = True
        return True

    async def closed_bars(self, contract: Contract, bar_size: BarSize, what_to_show: str, rth: bool,
                          warmup_days: int, stop: Callable[[], bool], poll_s: float = 1.0) -> AsyncIterator[Item]:
        session = self.sessions[self.subscriptions] if self.subscriptions < len(self.sessions) else []
        self.subscriptions += 1
        for item in session:
            if stop():
                return
            if isinstance(item, ClosedBars):
                self.last_close = float(item.frame["close"].iloc[-1])
            if isinstance(item, Disconnected):
                self.connected = False
            yield item
