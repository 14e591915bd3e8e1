"""Content hashes (xxh3-128) with a stat fast path.

A file whose (size, mtime_ns, inode) match what was seen when it was last hashed is not read
again, unless its mtime was too close to that moment: a later write within the same timestamp
tick would leave the stat unchanged (the "racy" case git handles), so such files are re-hashed
until their mtime is safely in the past.
"""

from __future__ import annotations

from typing import NamedTuple

import xxhash

from buildflow.errors import BuildError
from buildflow.fs import FileSystem

# A stat is trusted only when the file's mtime is this much older than the hash was taken;
# it covers coarse filesystem timestamps (ext4 ticks, NFS) with room to spare.
RACY_WINDOW_NS = 1_000_000_000
MISSING = ""
# Recorded for a depfile input that changed while its task ran: never matches, so it reruns.
UNKNOWN = "?"


class StatEntry(NamedTuple):
    size: int
    mtime_ns: int
    inode: int
    digest: str
    hashed_at_ns: int


class Hasher:
    def __init__(self, fs: FileSystem, cache: dict[str, StatEntry]) -> None:
        self.fs = fs
        self.cache = cache
        self.changed: dict[str, StatEntry] = {}
        self.files_read = 0

    def file_hash(self, path: str) -> str:
        """The content hash of a file, or of a directory's whole tree; MISSING if absent."""
        st = self.fs.stat(path)
        if st is None:
            return MISSING
        if st.is_dir:
            return self._tree_hash(path)
        entry = self.cache.get(path)
        if (entry is not None and entry.size == st.size and entry.mtime_ns == st.mtime_ns
                and entry.inode == st.inode and st.mtime_ns < entry.hashed_at_ns - RACY_WINDOW_NS):
            return entry.digest
        hashed_at = self.fs.now_ns()
        try:
            digest = self._read_hash(path)
        except FileNotFoundError:  # deleted between the stat and the read
            return MISSING
        except OSError as exc:
            raise BuildError(f"{path}: cannot read the file to hash it: {exc.strerror}; "
                             f"make it readable (or remove it from the task's inputs)") from None
        entry = StatEntry(st.size, st.mtime_ns, st.inode, digest, hashed_at)
        self.cache[path] = entry
        self.changed[path] = entry
        return digest

    def _read_hash(self, path: str) -> str:
        hasher = xxhash.xxh3_128()
        for chunk in self.fs.read_chunks(path):
            hasher.update(chunk)
        self.files_read += 1
        return hasher.hexdigest()

    def _tree_hash(self, path: str) -> str:
        hasher = xxhash.xxh3_128(b"tree\0")
        for rel in self.fs.list_tree(path):
            hasher.update(f"{rel}\0{self.file_hash(f'{path}/{rel}')}\n".encode("utf-8", "surrogateescape"))
        return hasher.hexdigest()

    def take_changes(self) -> list[tuple[str, StatEntry]]:
        """Entries hashed since the last call, for the state log."""
        changes = list(self.changed.items())
        self.changed.clear()
        return changes


def text_digest(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogateescape"))
