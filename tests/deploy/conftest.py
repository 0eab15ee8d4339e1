"""Paths shared by the deployment tests (Makefile, scripts/, examples/, dags/, Docker files)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo_root() -> Path:
    """The checkout's root directory."""
    return ROOT


@pytest.fixture
def venv_bin() -> Path:
    """The bin/ directory of the Python running the tests (where its ibkrtool console script lives)."""
    return Path(sys.executable).parent
