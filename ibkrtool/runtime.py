"""Process-level settings for the long-running commands (backfill, collect, live, sim)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def steady_gc() -> Iterator[None]:
    """Keep the cyclic garbage collector's full passes short while the block runs.

    By the time a command starts its event loop, the interpreter holds a few hundred thousand long-lived objects
    (modules, pandas, the exchange calendar). A full collection walks all of them: 50-60 ms with the event loop
    stopped, which in a backfill lands between an answer and the next release (bench/pacing.py). Freezing them
    moves them out of the collector's sight; reference counting still frees everything, and objects created
    inside the block are collected as usual.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
