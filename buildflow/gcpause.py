"""Cyclic garbage collection paused while a build allocates in bulk.

Loading a large project and its state makes hundreds of thousands of small containers, all
live: each allocation threshold crossed starts a collection that scans them, for nothing, and
that took a tenth of a 10,000-task no-op build. Plain reference counting still frees what is
dropped; cycles made meanwhile are collected when the pause ends.
"""

from __future__ import annotations

import gc


class paused:  # noqa: N801 - used as `with paused():`, like a function
    """A plain context manager: contextlib would be one import more for the no-op fast path
    (docs/speed.md)."""

    def __enter__(self) -> None:
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc_info: object) -> None:
        if self.enabled:
            gc.enable()
