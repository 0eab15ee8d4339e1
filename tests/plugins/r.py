"""Rscript with TTR for tests; skips with the reason when missing unless ``IBKRTOOL_TEST_REQUIRE_R=1``."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def rscript() -> str:
    """Path of an Rscript that can load TTR."""
    path = shutil.which("Rscript")
    reason = None
    if path is None:
        reason = "Rscript not found (apt-get install r-base-core r-cran-ttr)"
    else:
        probe = subprocess.run([path, "-e", "library(TTR)"], capture_output=True, text=True)
        if probe.returncode != 0:
            reason = "R package TTR not installed (apt-get install r-cran-ttr)"
    if reason:
        if os.environ.get("IBKRTOOL_TEST_REQUIRE_R") == "1":
            pytest.fail(f"R is required (IBKRTOOL_TEST_REQUIRE_R=1) but {reason}")
        pytest.skip(f"no Rscript: {reason}")
    return path
