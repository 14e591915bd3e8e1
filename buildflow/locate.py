"""Where the Flowfile is: `-f PATH`, else the first Flowfile in the working directory or a
parent, like git finds `.git`. Plain `os.path`, so the no-op fast path can use it before any
heavier module is imported."""

from __future__ import annotations

import os

FLOWFILE_NAMES = ("Flowfile", "Flowfile.toml")


def flowfile_path(file: str | os.PathLike[str] | None, base: str) -> str | None:
    """The Flowfile's absolute path (`file` taken relative to `base`), or None if not found."""
    if file is not None:
        candidate = os.path.realpath(os.path.join(base, file))
        return candidate if os.path.isfile(candidate) else None
    directory = base
    while True:
        for name in FLOWFILE_NAMES:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
