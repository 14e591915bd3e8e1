"""The filesystem as the engine sees it: a small interface, and the real implementation.

Hashing and the state log go through this, so a test can count reads or inject a full disk
without touching the engine.
"""

from __future__ import annotations

import os
import threading
import time
from typing import NamedTuple, Protocol
from buildflow.contents import CHUNK, hash_regular_file


class Stat(NamedTuple):
    size: int
    mtime_ns: int
    inode: int
    is_dir: bool


class FileSystem(Protocol):
    def stat(self, path: str) -> Stat | None:
        """Follows symlinks; None when nothing is there (or a link dangles)."""

    def read_hash(self, path: str) -> tuple[Stat, str]:
        """A regular file's content hash, and its stat taken when it was opened, before the
        read. Raises FileNotFoundError when nothing is there, IsADirectoryError for a
        directory, another OSError when it cannot be read."""

    def list_tree(self, path: str) -> list[str]:
        """Every file below a directory, as sorted paths relative to it."""

    def make_dirs(self, path: str) -> None: ...

    def now_ns(self) -> int: ...


def is_inside_root(root: str, path: str) -> bool:
    """True when `path` (relative to `root`) sits in the root once every link in its parent
    directories is resolved; the last component may be a link, which is removed as a link."""
    real_root = os.path.realpath(root)
    absolute = os.path.join(root, path)
    parent = os.path.realpath(os.path.dirname(absolute))
    inside = parent == real_root or parent.startswith(real_root + os.sep)
    return inside and os.path.normpath(absolute) != os.path.normpath(root)


def remove_owned(root: str, path: str) -> bool:
    """Delete a declared output: a file, a link (never followed) or a whole directory, only
    inside the project root. Returns whether anything was removed."""
    absolute = os.path.join(root, path)
    if not os.path.lexists(absolute) or not is_inside_root(root, path):
        return False
    if os.path.isdir(absolute) and not os.path.islink(absolute):
        import shutil  # here: 2 ms that a build removing no directory need not pay

        shutil.rmtree(absolute)
    else:
        os.unlink(absolute)
    return True


class LocalFileSystem:
    """The real disk. Paths are relative to `root` unless absolute."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._prefix = os.path.join(root, "")  # joined by hand: posixpath.join, per path
        self._local = threading.local()  # a read buffer per thread: workers hash too

    def _abs(self, path: str) -> str:
        return path if path.startswith("/") else self._prefix + path

    def stat(self, path: str) -> Stat | None:
        try:
            st = os.stat(self._abs(path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return _stat(st)

    def read_hash(self, path: str) -> tuple[Stat, str]:
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = bytearray(CHUNK)
        digest, st = hash_regular_file(self._abs(path), buffer)
        return _stat(st), digest

    def list_tree(self, path: str) -> list[str]:
        base = self._abs(path)
        found = []
        for directory, _, files in os.walk(base):
            rel = os.path.relpath(directory, base)
            for name in files:
                found.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
        return sorted(found)

    def make_dirs(self, path: str) -> None:
        target = self._abs(path)
        if not os.path.isdir(target):  # one stat, where makedirs would raise and catch
            os.makedirs(target, exist_ok=True)

    def now_ns(self) -> int:
        return time.time_ns()


def _stat(st: os.stat_result) -> Stat:
    return Stat(st.st_size, st.st_mtime_ns, st.st_ino, (st.st_mode & 0o170000) == 0o040000)
