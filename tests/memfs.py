"""The disk (`buildflow.fs.FileSystem`) in memory, with a clock the test sets (`tick`) and a
record of which files were hashed: engine-level tests run on it without waiting for real time
to pass the racy-timestamp window. Paths are relative to its root, `ROOT`, unless absolute
under it; it has no links, and directories are the prefixes of its files' paths."""

from __future__ import annotations

import io
import posixpath
from collections.abc import Callable, Iterable

import xxhash

from buildflow.fs import Stat

ROOT = "/memory"  # an absolute root no real path takes: nothing here can reach the real disk


class MemoryFileSystem:
    def __init__(self) -> None:
        self.root = ROOT
        self.files: dict[str, tuple[bytes, int, int]] = {}  # path -> (data, mtime_ns, inode)
        # A clock with a sub-second part, as a filesystem with fine timestamps stamps files
        self.clock_ns = 10**18 + 123_456_789
        self.reads: list[str] = []  # the paths hashed, in order
        self.full = False  # True: every write fails as on a full disk
        self._next_inode = 1

    def key(self, path: str) -> str:
        """`path` as the files are keyed: relative to the root, normalized."""
        if path.startswith("/"):
            assert path == ROOT or path.startswith(ROOT + "/"), f"{path} is not on this disk"
            path = path[len(ROOT) + 1:]
        path = posixpath.normpath(path) if path else ""
        return "" if path == "." else path

    def names(self) -> list[str]:
        """The files' paths as they are now: `list` copies the keys in one step, where a loop
        over the dict itself fails when a build's worker thread writes a file meanwhile."""
        return list(self.files)

    def write(self, path: str, data: bytes | str, *, mtime_ns: int | None = None,
              inode: int | None = None) -> None:
        """Write a file stamped with the current clock (or `mtime_ns`), on a fresh inode."""
        if self.full:
            raise OSError(28, "No space left on device", path)
        raw = data.encode() if isinstance(data, str) else data
        if inode is None:
            self._next_inode += 1
            inode = self._next_inode
        self.files[self.key(path)] = (raw, self.clock_ns if mtime_ns is None else mtime_ns,
                                      inode)

    def text(self, path: str) -> str:
        return self.files[self.key(path)][0].decode()

    def tick(self, seconds: float) -> None:
        self.clock_ns += int(seconds * 1e9)

    def _is_dir(self, key: str) -> bool:
        return key == "" or any(name.startswith(key + "/") for name in self.names())

    def stat(self, path: str) -> Stat | None:
        key = self.key(path)
        if key in self.files:
            data, mtime, inode = self.files[key]
            return Stat(len(data), mtime, inode, False)
        return Stat(0, 0, 0, True) if self._is_dir(key) else None

    def read(self, path: str) -> bytes:
        key = self.key(path)
        if key not in self.files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return self.files[key][0]

    def read_hash(self, path: str) -> tuple[Stat, str]:
        key = self.key(path)
        if key not in self.files:
            if self._is_dir(key):
                raise IsADirectoryError(21, "is a directory", path)
            raise FileNotFoundError(2, "no such file", path)
        self.reads.append(key)
        stat = self.stat(key)
        assert stat is not None
        return stat, xxhash.xxh3_128_hexdigest(self.files[key][0])

    def append(self, path: str, keep: int) -> MemoryAppendFile:
        key = self.key(path)
        data = self.files.get(key, (b"", 0, 0))[0][:keep]
        self.write(key, data, inode=self.files[key][2] if key in self.files else None)
        return MemoryAppendFile(self, key)

    def replace(self, path: str, chunks: Iterable[bytes], *, sync: bool = True) -> None:
        self.write(path, b"".join(chunks))  # a rename: a new inode

    def list_tree(self, path: str) -> list[str]:
        key = self.key(path)
        prefix = key + "/" if key else ""
        return sorted(name[len(prefix):] for name in self.names() if name.startswith(prefix))

    def list_dir(self, path: str) -> list[tuple[str, bool]]:
        key = self.key(path)
        prefix = key + "/" if key else ""
        entries: dict[str, bool] = {}
        for name in self.names():
            if name.startswith(prefix):
                head, slash, _ = name[len(prefix):].partition("/")
                entries[head] = entries.get(head, False) or bool(slash)
        if not entries and not self._is_dir(key):
            raise FileNotFoundError(2, "No such file or directory", path)
        return sorted(entries.items())

    def real_path(self, path: str) -> str:
        key = self.key(path)
        return f"{ROOT}/{key}" if key else ROOT

    def link_target(self, path: str) -> str | None:
        return None

    def make_dirs(self, path: str) -> None:
        pass

    def open_scratch(self, path: str) -> MemoryScratchFile:
        self.write(path, b"")
        return MemoryScratchFile(self, self.key(path))

    def room(self, path: str) -> int:
        return 0 if self.full else 1 << 40

    def read_tail(self, path: str, limit: int) -> tuple[int, bytes]:
        data = self.read(path)
        return len(data), data[-limit:]

    def rename(self, path: str, to: str) -> None:
        self.files[self.key(to)] = self.files.pop(self.key(path))

    def remove(self, path: str) -> bool:
        key = self.key(path)
        gone = [name for name in self.names() if name == key or name.startswith(key + "/")]
        for name in gone:
            del self.files[name]
        return bool(gone)

    def lock(self, path: str) -> MemoryLock:
        return MemoryLock()

    def now_ns(self) -> int:
        return self.clock_ns

    def file_now_ns(self) -> int:
        return self.clock_ns

    def touch(self, path: str, mtime_ns: int) -> None:
        self.rewrite(path, self.read(path), mtime_ns=mtime_ns)

    def rewrite(self, path: str, data: bytes | str, *, mtime_ns: int | None = None) -> None:
        """Write a file in place, keeping its inode, as `>` or an editor saving in place."""
        old = self.files.get(self.key(path))
        self.write(path, data, mtime_ns=mtime_ns, inode=None if old is None else old[2])


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


class MemoryLock:
    """A disk in memory is one process's: there is no other build to wait for."""

    def acquire(self, timeout: float | None, say: Callable[[str], None]) -> None:
        pass

    def release(self) -> None:
        pass


class MemoryScratchFile(io.BytesIO):
    """A file of a MemoryFileSystem open for writing: each write lands on the disk at once, as
    a command's output does."""

    def __init__(self, fs: MemoryFileSystem, path: str) -> None:
        super().__init__()
        self.fs, self.path = fs, path

    def write(self, data: bytes) -> int:  # type: ignore[override]
        old, _, inode = self.fs.files[self.path]
        self.fs.write(self.path, old + bytes(data), inode=inode)
        return len(data)
