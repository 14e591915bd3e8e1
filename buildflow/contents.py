"""A file's content hash: xxh3-128 of its bytes, in hex, read only from a regular file. Imports
nothing heavy, so the no-op fast path can hash a touched file without loading the hasher."""

from __future__ import annotations

import errno
import os
import stat

import xxhash

new_hash = xxhash.xxh3_128


CHUNK = 1 << 20


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """A read-only fd on `path`, which must be a regular file, and its stat. O_NONBLOCK:
    opening a named pipe must not wait for a writer; it is refused instead (reading one would
    hang). A directory raises IsADirectoryError, which a caller may take as a tree to hash."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        raise OSError(errno.EINVAL, "not a regular file (a pipe, socket or device cannot be "
                                    "hashed)", path)
    return fd, st


def hash_regular_file(path: str, buffer: bytearray | None = None) -> tuple[str, os.stat_result]:
    """The content hash of a regular file, with its stat taken when it was opened, before the
    read (a change during the read then shows as a changed stat). Chunks are read into
    `buffer`, which a caller hashing many files reuses: a fresh 1 MiB bytes object per read
    cost page faults that made hashing 2.5x slower. Without one, a buffer just past the
    file's size is made (a zeroed 1 MiB one for each of many small files cost 4 to 20 times
    their read). Reading stops once the size the file had when opened is read and a read came
    back short, so a small file takes one read, not a second one to find the end."""
    fd, before = open_regular(path)
    if buffer is None:
        buffer = bytearray(min(CHUNK, before.st_size + 1))
    view = memoryview(buffer)
    hasher = new_hash()
    try:
        done = 0
        while size := os.readv(fd, [buffer]):
            hasher.update(view[:size])
            done += size
            if size < len(buffer) and done >= before.st_size:
                break
    finally:
        os.close(fd)
    return hasher.hexdigest(), before
