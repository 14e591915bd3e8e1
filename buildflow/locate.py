"""Where the Flowfile is: `-f PATH`, else the first Flowfile in the working directory or a
parent, like git finds `.git`. Plain `os.path`, so the no-op fast path can use it before any
heavier module is imported."""

from __future__ import annotations

import os

FLOWFILE_NAMES = ("Flowfile", "Flowfile.toml")


def canonical_flowfile(path: str | os.PathLike[str]) -> str:
    """A Flowfile's path as bflow names it: absolute, with the links on the way to its
    directory resolved but not a link that is the file itself, since the directory holding
    the Flowfile is the project root (a linked Flowfile is a project where the link is)."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(directory), name)


def flowfile_path(file: str | os.PathLike[str] | None, base: str) -> str | None:
    """The Flowfile's absolute path (`file` taken relative to `base`), or None if not found."""
    if file is not None:
        candidate = canonical_flowfile(os.path.join(base, file))
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
