"""A file's content hash: xxh3-128 of its bytes, in hex, read only from a regular file. Imports
nothing heavy, so the no-op fast path can hash a touched file without loading the hasher."""

from __future__ import annotations

import errno
import os
import stat

import xxhash

new_hash = xxhash.xxh3_128


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """A read-only fd on `path`, which must be a regular file, and its stat. O_NONBLOCK:
    opening a named pipe must not wait for a writer; it is refused instead (reading one would
    hang)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file (a pipe, socket or device cannot be "
                                    "hashed)", path)
    return fd, st


def hash_regular_file(path: str) -> tuple[str, os.stat_result]:
    """The content hash of a regular file, with its stat taken before the read (a change
    during the read then shows as a changed stat)."""
    fd, before = open_regular(path)
    with open(fd, "rb", buffering=0) as handle:
        hasher = new_hash()
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest(), before
