"""One frozen ``Settings`` resolved as: command-line flag > ``IBKRTOOL_*`` environment > config file > default.

Config files, first found wins: ``./ibkrtool.toml``, then ``~/.config/ibkrtool/config.toml``. Keys are the
field names below (``db_url = "postgresql://..."``, ``ib_port = 4002``). The repr masks database passwords.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ibkrtool.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

DEFAULT_DB_URL = "sqlite:///ibkrtool.db"
CONFIG_CANDIDATES = (Path("ibkrtool.toml"), Path("~/.config/ibkrtool/config.toml"))
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)")


def mask_url(text: str) -> str:
    """Replace the password of every ``scheme://user:password@host`` URL in ``text`` with ``***``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", text)


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to reach IB and the database."""

    db_url: str = DEFAULT_DB_URL
    ib_host: str = "127.0.0.1"
    ib_port: int = 7497
    client_id: int = 1
    ib_timeout_s: float = 10.0
    config_file: str | None = None

    def __repr__(self) -> str:
        parts = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"Settings({mask_url(parts)})"

    __str__ = __repr__

    @property
    def masked_db_url(self) -> str:
        return mask_url(self.db_url)


_ENV = {
    "db_url": "IBKRTOOL_DB_URL",
    "ib_host": "IBKRTOOL_IB_HOST",
    "ib_port": "IBKRTOOL_IB_PORT",
    "client_id": "IBKRTOOL_CLIENT_ID",
    "ib_timeout_s": "IBKRTOOL_IB_TIMEOUT",
}
_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _TYPES[name]
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{source}: '{name}' must be a number, got {value!r}") from None
    return str(value)


def find_config_file(explicit: str | None, cwd: Path | None = None) -> Path | None:
    """The config file in force: ``explicit`` if given (must exist), else the first candidate that exists."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise InputError(f"config file {explicit} does not exist")
        return path
    base = cwd or Path.cwd()
    for candidate in CONFIG_CANDIDATES:
        path = candidate.expanduser()
        path = path if path.is_absolute() else base / path
        if path.is_file():
            return path
    return None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: not a valid TOML config file ({exc})") from None
    unknown = sorted(set(data) - set(_ENV))
    if unknown:
        raise InputError(f"{path}: unknown keys {', '.join(unknown)}; allowed: {', '.join(sorted(_ENV))}")
    return {k: _coerce(k, v, str(path)) for k, v in data.items()}


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve settings. ``flags`` holds command-line values (``None`` = not given)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = find_config_file(config_file or env.get("IBKRTOOL_CONFIG"), cwd)
    if path is not None:
        values.update(_read_config(path))
        values["config_file"] = str(path)
    for name, var in _ENV.items():
        if env.get(var):
            values[name] = _coerce(name, env[var], var)
    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = _coerce(name, value, f"--{name.replace('_', '-')}")
    return Settings(**values)
