"""Cyclic garbage collection paused while a build allocates in bulk.

Loading a large project and its state makes hundreds of thousands of small containers, all
live: each allocation threshold crossed starts a collection that scans them, for nothing, and
that took a tenth of a 10,000-task no-op build. Plain reference counting still frees what is
dropped; cycles made meanwhile are collected when the pause ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
