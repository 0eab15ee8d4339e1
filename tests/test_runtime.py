"""steady_gc: long-lived objects leave the collector's full passes for the duration, new cycles are still freed."""

from __future__ import annotations

import gc
import weakref

from ibkrtool.runtime import steady_gc


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_long_lived_objects_are_frozen_only_inside_the_block() -> None:
    assert gc.get_freeze_count() == 0
    with steady_gc():
        assert gc.get_freeze_count() > 1000  # modules, pytest, pandas...
        node = Node()
        ref = weakref.ref(node)
        del node
        gc.collect()
        assert ref() is None  # objects created inside are collected as usual
    assert gc.get_freeze_count() == 0
