"""The disk (`buildflow.fs.FileSystem`) in memory, with a clock the test sets (`tick`) and a
record of which files were hashed: engine-level tests run on it without waiting for real time
to pass the racy-timestamp window."""

from __future__ import annotations

from collections.abc import Iterable

import xxhash

from buildflow.fs import Stat


class MemoryFileSystem:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, int, int]] = {}  # path -> (data, mtime_ns, inode)
        # A clock with a sub-second part, as a filesystem with fine timestamps stamps files
        self.clock_ns = 10**18 + 123_456_789
        self.reads: list[str] = []  # the paths hashed, in order
        self.full = False  # True: every write fails as on a full disk
        self._next_inode = 1

    def write(self, path: str, data: bytes | str, *, mtime_ns: int | None = None,
              inode: int | None = None) -> None:
        """Write a file stamped with the current clock (or `mtime_ns`), on a fresh inode."""
        if self.full:
            raise OSError(28, "No space left on device", path)
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

    def read(self, path: str) -> bytes:
        if path not in self.files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return self.files[path][0]

    def read_hash(self, path: str) -> tuple[Stat, str]:
        if path not in self.files:
            if self._is_dir(path):
                raise IsADirectoryError(21, "is a directory", path)
            raise FileNotFoundError(2, "no such file", path)
        self.reads.append(path)
        stat = self.stat(path)
        assert stat is not None
        return stat, xxhash.xxh3_128_hexdigest(self.files[path][0])

    def append(self, path: str, keep: int) -> MemoryAppendFile:
        data = self.files.get(path, (b"", 0, 0))[0][:keep]
        self.write(path, data, inode=self.files[path][2] if path in self.files else None)
        return MemoryAppendFile(self, path)

    def replace(self, path: str, chunks: Iterable[bytes]) -> None:
        self.write(path, b"".join(chunks))  # a rename: a new inode

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


class MemoryAppendFile:
    """A file of a MemoryFileSystem open for appending: a write on a full disk adds nothing."""

    def __init__(self, fs: MemoryFileSystem, path: str) -> None:
        self.fs, self.path = fs, path
        self.size = len(fs.files[path][0])

    def write(self, data: bytes) -> None:
        old, _, inode = self.fs.files[self.path]
        self.fs.write(self.path, old + data, inode=inode)
        self.size += len(data)

    def close(self) -> None:
        pass
