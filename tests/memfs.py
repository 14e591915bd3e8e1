"""An in-memory FileSystem with a settable clock that counts reads, for engine-level tests."""

from __future__ import annotations

import xxhash

from buildflow.fs import Stat


class MemoryFileSystem:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, int, int]] = {}  # path -> (data, mtime_ns, inode)
        # A clock with a sub-second part, as a filesystem with fine timestamps stamps files
        self.clock_ns = 10**18 + 123_456_789
        self.reads: list[str] = []
        self._next_inode = 1

    def write(self, path: str, data: bytes | str, *, mtime_ns: int | None = None,
              inode: int | None = None) -> None:
        """Write a file stamped with the current clock (or `mtime_ns`), on a fresh inode."""
        raw = data.encode() if isinstance(data, str) else data
        if inode is None:
            self._next_inode += 1
            inode = self._next_inode
        self.files[path] = (raw, self.clock_ns if mtime_ns is None else mtime_ns, inode)

    def tick(self, seconds: float) -> None:
        self.clock_ns += int(seconds * 1e9)

    def _is_dir(self, path: str) -> bool:
        return any(name.startswith(path.rstrip("/") + "/") for name in self.files)

    def stat(self, path: str) -> Stat | None:
        if path in self.files:
            data, mtime, inode = self.files[path]
            return Stat(len(data), mtime, inode, False)
        return Stat(0, 0, 0, True) if self._is_dir(path) else None

    def read_hash(self, path: str) -> tuple[Stat, str]:
        if path not in self.files:
            if self._is_dir(path):
                raise IsADirectoryError(21, "is a directory", path)
            raise FileNotFoundError(2, "no such file", path)
        self.reads.append(path)
        stat = self.stat(path)
        assert stat is not None
        return stat, xxhash.xxh3_128_hexdigest(self.files[path][0])

    def list_tree(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted(name[len(prefix):] for name in self.files if name.startswith(prefix))

    def make_dirs(self, path: str) -> None:
        pass

    def remove(self, path: str) -> None:
        prefix = path.rstrip("/") + "/"
        for name in [n for n in self.files if n == path or n.startswith(prefix)]:
            del self.files[name]

    def now_ns(self) -> int:
        return self.clock_ns
