"""``ibkrtool sim``: a simulated IB gateway speaking the TWS wire protocol (server versions 157..178).

Library entry point: ``start_sim(...) -> SimGateway`` (background thread) or ``build_server`` + ``SimServer.start``
on your own loop. The sim never imports ``ibkrtool.ib``: it is an independent implementation of IB's behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ibkrtool.sim.server import SimGateway


def start_sim(**kwargs: Any) -> SimGateway:
    """See ``ibkrtool.sim.server.start_sim``; imported lazily so ``import ibkrtool.sim.<module>`` stays cheap."""
    from ibkrtool.sim.server import start_sim as _start

    return _start(**kwargs)


__all__ = ["start_sim"]
