"""The local store: `ac/` (entries and manifests by action key) and `cas/` (blobs by the
SHA-256 of their bytes) under the user's cache directory, shared by every project and by
builds running at once.

Every file is written to a temporary name and renamed into place, so a reader sees a whole
file or none; a blob is checked against its SHA-256 whenever it is read, so a damaged one is
a miss. Least recently used goes first: a hit dates its files anew (their mtime), and `trim`
removes the oldest files until the store is under its bound. A file another build removes
meanwhile is a miss for the one reading it, never an error.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Iterable, Iterator

from buildflow.cache.entry import Damaged
from buildflow.contents import open_regular
from buildflow.fs import is_temp_file, replace_file

KINDS = ("ac", "cas")
CHUNK = 1 << 20
# A trim brings the store down to this share of its bound, so that not every build trims.
TRIM_TO = 0.9
COUNTS_FILE = "counts"  # one line per build that used the cache: "<hits> <misses>"
# The store's size: "=<bytes>" as its last walk found it, then "+<bytes>" for each build that
# added to it since (an overestimate: a file put again counts twice). See `LocalStore.settle`.
SIZE_FILE = "size"
# How the counts and the size file are opened to append a line: O_NONBLOCK, so that a named
# pipe there (no regular file) is an error (ENXIO, a warning), not a build held for ever.
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
SIZE_LINES_MAX = 1000  # beyond this many lines, the sum is written back as one


class LocalStore:
    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.added = 0  # bytes this build has put into the store

    def path(self, kind: str, key: str) -> str:
        return os.path.join(self.directory, kind, key[:2], key)

    def get(self, kind: str, key: str) -> bytes | None:
        """The file under `key`; None when there is none. Anything but a regular file there
        (a named pipe would hold the build for ever, a link to /dev/zero fill its memory) is
        removed, and Damaged."""
        path = self.path(kind, key)
        try:
            fd, _ = open_regular(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno not in (errno.EISDIR, errno.EINVAL, errno.ELOOP):
                raise
            _remove(path)
            raise Damaged(f"{path} is no regular file") from None
        with os.fdopen(fd, "rb") as handle:
            return handle.read()

    def put(self, kind: str, key: str, data: bytes) -> None:
        # not synced: a store shared by every build, written under the build's lock; an
        # entry a power cut empties is damaged, which reads as a miss
        path = self.path(kind, key)
        try:
            replace_file(path, data, mode=0o644, sync=False)
        except IsADirectoryError:  # a directory where the file goes: none of the store's
            _remove(path)
            replace_file(path, data, mode=0o644, sync=False)
        self.added += len(data)

    def get_blob(self, sha256: str, size: int) -> bytes | None:
        """A blob's bytes, checked; None when the store does not have it."""
        data = self.get("cas", sha256)
        if data is not None and (len(data) != size or hashlib.sha256(data).hexdigest() != sha256):
            self.discard("cas", sha256)
            raise Damaged(f"blob {self.path('cas', sha256)} does not match its SHA-256")
        return data

    def discard(self, kind: str, key: str) -> None:
        _remove(self.path(kind, key))

    def touch(self, kind: str, keys: Iterable[str]) -> None:
        """Date these files now: used, so the last to be trimmed."""
        for key in keys:
            try:
                os.utime(self.path(kind, key))
            except FileNotFoundError:
                pass

    def files(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every file of the store, with its stat."""
        for kind in KINDS:
            top = os.path.join(self.directory, kind)
            try:
                shards = os.listdir(top)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for shard in shards:
                try:
                    entries = list(os.scandir(os.path.join(top, shard)))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                for entry in entries:
                    try:
                        yield entry.path, entry.stat()
                    except FileNotFoundError:
                        continue

    def settle(self) -> None:
        """Add this build's bytes to the size file, and trim the store if that sum says it
        may be over its bound. Walking the store (a stat of every file) at every build made
        an edit's build cost as much as the user's whole cache: thousands of files after a
        few projects. A sum that cannot be read is unknown, and the store is walked.

        Builds share the store: a line another build appends while this one walks is lost
        when the walk writes the size down, so the store may pass its bound by that much
        until the next walk."""
        path = os.path.join(self.directory, SIZE_FILE)
        fd = os.open(path, _APPEND, 0o644)
        try:
            os.write(fd, f"+{self.added}\n".encode())  # one short append: never interleaved
        finally:
            os.close(fd)
        with open(path, "rb") as handle:
            lines = handle.read().split()
        try:
            if not lines[0].startswith(b"="):
                raise ValueError("never walked")
            size = sum(int(line.lstrip(b"=+")) for line in lines)
        except (IndexError, ValueError):
            size = None
        if size is None or size > self.max_bytes:
            size = self.trim()
        elif len(lines) <= SIZE_LINES_MAX:
            return
        replace_file(path, f"={size}\n".encode(), mode=0o644, sync=False)

    def trim(self) -> int:
        """Remove the least recently used files until the store is under TRIM_TO of its
        bound, when it is over it; the bytes left. Temporary files left by a killed build go
        once they are an hour old."""
        files = list(self.files())
        total = sum(st.st_size for _, st in files)
        stale = time.time() - 3600
        removed = 0
        for path, st in files:
            if is_temp_file(path) and st.st_mtime < stale:
                removed += _unlink(path, st.st_size)
        if total - removed <= self.max_bytes:
            return total - removed
        goal = int(self.max_bytes * TRIM_TO)
        for path, st in sorted(files, key=lambda item: item[1].st_mtime_ns):
            if total - removed <= goal:
                break
            removed += _unlink(path, st.st_size)
        return total - removed

    def count(self, hits: int, misses: int) -> None:
        """Add a build's hits and misses to the counts `bflow cache stats` shows (one short
        append, which concurrent builds cannot interleave)."""
        os.makedirs(self.directory, exist_ok=True)
        fd = os.open(os.path.join(self.directory, COUNTS_FILE), _APPEND, 0o644)
        try:
            os.write(fd, f"{hits} {misses}\n".encode())
        finally:
            os.close(fd)

    def counts(self) -> tuple[int, int]:
        hits = misses = 0
        try:
            fd, _ = open_regular(os.path.join(self.directory, COUNTS_FILE))
        except FileNotFoundError:
            return hits, misses
        with os.fdopen(fd) as handle:
            for line in handle:
                fields = line.split()
                if len(fields) == 2 and all(f.isdigit() for f in fields):
                    hits, misses = hits + int(fields[0]), misses + int(fields[1])
        return hits, misses


def _unlink(path: str, size: int) -> int:
    """Remove a file of the store; its size, or 0 when another build removed it first. A
    directory there (none of the store's) goes whole."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return 0
    except IsADirectoryError:
        _remove(path)
    return size


def _remove(path: str) -> None:
    """Whatever stands at `path` in the store, a directory with all it holds. (shutil is
    imported here, for a directory no store writes: at import it loads the bz2 and lzma
    modules, which every build that stores outputs would pay for.)"""
    try:
        os.unlink(path)
    except IsADirectoryError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    except FileNotFoundError:
        pass
