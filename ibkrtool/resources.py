"""Where the shipped ``sql/`` and ``r/`` folders are.

In a wheel they are packaged as ``ibkrtool/_resources/{sql,r}`` (see pyproject's force-include) and found with
importlib.resources; in a source checkout or editable install they sit at the project root beside the package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _resource_dir(name: str) -> Path:
    packaged = Path(str(files("ibkrtool") / "_resources" / name))
    if packaged.is_dir():
        return packaged
    source_tree = Path(__file__).resolve().parent.parent / name
    if source_tree.is_dir():
        return source_tree
    raise FileNotFoundError(f"ibkrtool's '{name}' folder is missing from this installation; reinstall ibkrtool")


def sql_dir() -> Path:
    """The folder of numbered PostgreSQL migrations (``001_schema.sql`` ...)."""
    return _resource_dir("sql")


def r_dir() -> Path:
    """The folder of R strategy scripts run through Rscript."""
    return _resource_dir("r")
