"""The front door: one function per command, typed request in, report out, all sharing a ``Workspace``.

Names load lazily, so ``import ibkrtool.app`` costs nothing until a function is used::

    from ibkrtool import app
    ws = app.Workspace()                     # settings from IBKRTOOL_* / config file, like the CLI
    report = app.run_strategy(ws, app.StrategyRequest("pivot-breakout", instruments=(app.Instrument.parse("SPY"),)))
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Workspace": "ibkrtool.app.workspace",
    "Settings": "ibkrtool.settings",
    "Instrument": "ibkrtool.model",
    "BarSize": "ibkrtool.model",
    "When": "ibkrtool.model.when",
    "ResampleRequest": "ibkrtool.app.resample",
    "ResampleReport": "ibkrtool.app.resample",
    "resample": "ibkrtool.app.resample",
    "StrategyRequest": "ibkrtool.app.strategy",
    "StrategyReport": "ibkrtool.app.strategy",
    "run_strategy": "ibkrtool.app.strategy",
    "ImportRequest": "ibkrtool.app.db",
    "ExportRequest": "ibkrtool.app.db",
    "import_bars": "ibkrtool.app.db",
    "export_bars": "ibkrtool.app.db",
    "init_db": ("ibkrtool.app.db", "init"),
    "db_status": ("ibkrtool.app.db", "status"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'ibkrtool.app' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
