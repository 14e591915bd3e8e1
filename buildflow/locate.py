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


def shown(path: str) -> str:
    """A Flowfile's path as messages name it: from the working directory, as the user would
    type it (`Flowfile`, `services/api/Flowfile`, `../Flowfile`), as Make names its
    makefile; its name alone for a document that is no file (`<python>`), or when there is
    no working directory to start from."""
    if os.path.basename(path).startswith("<"):
        return os.path.basename(path)
    try:
        return os.path.relpath(path)
    except (OSError, ValueError):
        return os.path.basename(path)


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
