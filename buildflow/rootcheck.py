"""The checks the load makes that must hold on every build, cached or not (SPEC §2): outputs
stay inside the project root, also through symlinked directories, an input named on its own
is a file on disk, and no task's `cwd` has become a symlinked directory. The loader makes
them, and the project cache and the proof make them again before they vouch for a load.
Plain `os`, so the fast path can use them first thing."""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator


def escape_of(real_root: str, real: str) -> str | None:
    """`real`, a directory with its symlinks resolved, when it is outside the root; None when
    it stays inside (or does not exist yet, and so will be made inside)."""
    return None if real == real_root or real.startswith(real_root + os.sep) else real


def output_prefixes(directories: Iterable[str]) -> tuple[str, ...]:
    """Every directory on the way from the root to each of `directories` (the parents of the
    outputs): any way out of the root goes through a symlink among them."""
    prefixes: set[str] = set()
    for directory in directories:
        while directory and directory not in prefixes:
            prefixes.add(directory)
            directory = os.path.dirname(directory)
    return tuple(sorted(prefixes))


def first_escape(root: str, prefixes: Iterable[str]) -> str | None:
    """The first of `prefixes` (from `output_prefixes`) that is now a symlink leading out of
    the root, or None: one lstat each, and a realpath only for a symlink."""
    real_root = None
    for prefix in _links(root, prefixes):
        real_root = real_root or os.path.realpath(root)
        if escape_of(real_root, os.path.realpath(os.path.join(root, prefix))) is not None:
            return prefix
    return None


def first_link(root: str, prefixes: Iterable[str]) -> str | None:
    """The first of `prefixes` (from `output_prefixes` over the tasks' `cwd`s) that is now a
    symlink, or None. A project whose `cwd`s lead through none is cached with paths rebased on
    them as they are written; one that does is loaded afresh every time (`Project.volatile`)."""
    return next(_links(root, prefixes), None)


def _links(root: str, prefixes: Iterable[str]) -> Iterator[str]:
    """Those of `prefixes` that are symlinks now, one lstat each. One that is not there is
    made inside the root when a task needs it (an output's directory), or fails the task
    that runs in it (a `cwd`)."""
    for prefix in prefixes:
        try:
            if stat.S_ISLNK(os.lstat(os.path.join(root, prefix)).st_mode):
                yield prefix
        except OSError:
            continue


def is_input_file(path: str) -> bool:
    """Whether `path` is, through links, something other than a directory: what the load asks
    of an input named on its own (a dangling link is not)."""
    try:
        return not stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False
