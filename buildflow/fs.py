"""The disk as the engine sees it: one small interface (stat, hash, read, append, replace,
list, remove, lock, now), and the real implementation.

The loader (the Flowfile, the listings globs read, what an input is), hashing, the state log,
depfile reading, the tasks' logs and pruning go through it, so a test runs a build on a disk
in memory with a clock it sets (`tests/memfs.py`), counts reads or injects a full disk,
without waiting for real time to pass. `replace_file` is the one way a file is written whole
(a temp file, fsync, a rename; `replace_file_from` takes the chunks as they are made, for a
file too large to hold whole); modules outside the engine (the fast path, the output cache,
the reports) call it directly.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import BinaryIO, NamedTuple, Protocol

from buildflow.racy import file_clock_ns

# Of a file's name, what its temp file's name keeps (a name may be 255 bytes long, and the
# temp's adds a dot, the process and the thread): enough to tell whose it is.
# What `stat` and `open` raise for a path no file can have: a name or a path too long, a loop
# of symbolic links on its way.
NO_SUCH_PATH = (errno.ENAMETOOLONG, errno.ELOOP)
TEMP_NAME_KEPT = 100


class Stat(NamedTuple):
    size: int
    mtime_ns: int
    inode: int
    is_dir: bool
    # When the file last changed in any way: a rename onto its path, or a `touch -d` to an
    # old time, moves it, where the mtime can be set back (0 where the disk keeps none).
    ctime_ns: int = 0


class AppendFile(Protocol):
    """A file that grows by whole records (`FileSystem.append`)."""

    size: int

    def write(self, data: bytes) -> None:
        """Append all of `data` or, when that fails (a full disk), nothing: raises OSError."""

    def close(self) -> None:
        """Flush to disk and close."""


class Lock(Protocol):
    """One build at a time on a project (`lock.ProjectLock`)."""

    def acquire(self, timeout: float | None, say: Callable[[str], None]) -> None:
        """Wait for the lock (forever when `timeout` is None), saying once that it waits."""

    def release(self) -> None: ...


class FileSystem(Protocol):
    def stat(self, path: str) -> Stat | None:
        """Follows symlinks; None when nothing is there (or a link dangles)."""

    def read_hash(self, path: str) -> tuple[Stat, str]:
        """A regular file's content hash, and its stat taken when it was opened, before the
        read. Raises FileNotFoundError when nothing is there, IsADirectoryError for a
        directory, another OSError when it cannot be read."""

    def read(self, path: str) -> bytes:
        """A file's bytes. Raises FileNotFoundError when nothing is there, another OSError
        when what is there is no regular file (IsADirectoryError for a directory)."""

    def append(self, path: str, keep: int) -> AppendFile:
        """`path` (made, with its directory, when missing) cut to its first `keep` bytes, open
        for appending."""

    def replace(self, path: str, chunks: Iterable[bytes], *, sync: bool = True) -> None:
        """Write `path` whole from `chunks`, taken one at a time: a reader, or a crash, finds
        the old file or the new one (`sync`: even after a power cut)."""

    def list_tree(self, path: str) -> list[str]:
        """Every file below a directory, as sorted paths relative to it."""

    def list_dir(self, path: str) -> list[tuple[str, bool]]:
        """A directory's entries, each as its name and whether it is a directory (through a
        link). Raises OSError when `path` cannot be listed."""

    def real_path(self, path: str) -> str:
        """`path` as an absolute path with every symlink on the way resolved."""

    def link_target(self, path: str) -> str | None:
        """What the symlink at `path` points to; None when no symlink is there."""

    def make_dirs(self, path: str) -> None: ...

    def open_scratch(self, path: str) -> BinaryIO:
        """`path` (made, with its directory, when missing) emptied and open for writing,
        unbuffered: a command's output goes there as it comes."""

    def room(self, path: str) -> int:
        """How many bytes a write may still add to the filesystem holding `path` (an
        existing file or directory)."""

    def read_tail(self, path: str, limit: int) -> tuple[int, bytes]:
        """A file's size and its last `limit` bytes, read without reading the rest."""

    def rename(self, path: str, to: str) -> None: ...

    def remove(self, path: str) -> bool:
        """Delete a file, a link (never followed) or a whole directory, only inside the root;
        whether anything was there to remove."""

    def lock(self, path: str) -> Lock:
        """The lock whose file is `path`, not yet taken."""

    def now_ns(self) -> int: ...

    def file_now_ns(self) -> int:
        """Now, as the disk would date a file written now (`racy.file_clock_ns`)."""


def is_inside_root(root: str, path: str) -> bool:
    """True when `path` (relative to `root`) sits in the root once every link in its parent
    directories is resolved; the last component may be a link, which is removed as a link."""
    real_root = os.path.realpath(root)
    absolute = os.path.join(root, path)
    parent = os.path.realpath(os.path.dirname(absolute))
    inside = parent == real_root or parent.startswith(real_root + os.sep)
    return inside and os.path.normpath(absolute) != os.path.normpath(root)


def written_since(fs: FileSystem, path: str, start_ns: int, *, trees: bool = True) -> bool:
    """Whether a run that started at `start_ns` wrote `path`: a file with an mtime from then
    on, or (with `trees`) a directory with such a file below it."""
    st = fs.stat(path)
    if st is None:
        return False
    if not st.is_dir:
        return st.mtime_ns >= start_ns
    return trees and any((inner := fs.stat(f"{path}/{rel}")) is not None
                         and inner.mtime_ns >= start_ns for rel in fs.list_tree(path))


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
        self._local = threading.local()

    def _abs(self, path: str) -> str:
        return path if path.startswith("/") else self._prefix + path

    def stat(self, path: str) -> Stat | None:
        """None for a file that is not there, nor can be: a path too long, a loop of links."""
        try:
            st = os.stat(self._abs(path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno in NO_SUCH_PATH:
                return None
            raise
        return _stat(st)

    def read_hash(self, path: str) -> tuple[Stat, str]:
        local = self._local  # a read buffer per thread: workers hash too
        try:
            buffer, hash_file = local.buffer, local.hash_file
        except AttributeError:  # imported here: the loader uses this class, and hashes nothing
            from buildflow.contents import CHUNK, hash_regular_file

            buffer, hash_file = local.buffer, local.hash_file = bytearray(CHUNK), hash_regular_file
        digest, st = hash_file(self._abs(path), buffer)
        return _stat(st), digest

    def read(self, path: str) -> bytes:
        from buildflow.contents import open_regular

        fd, _ = open_regular(self._abs(path))  # a named pipe there is refused, not waited on
        with open(fd, "rb") as handle:
            return handle.read()

    def append(self, path: str, keep: int) -> AppendFile:
        return LocalAppendFile(self._abs(path), keep)

    def replace(self, path: str, chunks: Iterable[bytes], *, sync: bool = True) -> None:
        replace_file_from(self._abs(path), chunks, sync=sync)

    def list_tree(self, path: str) -> list[str]:
        """As `os.walk` lists it (a symlink to a directory is not entered, nor listed), but
        walked with a stack: `os.walk` recurses, and a tree 1,000 directories deep was an
        internal error at every build."""
        base = self._abs(path)
        found = []
        pending = [""]
        while pending:
            rel = pending.pop()
            try:
                with os.scandir(f"{base}/{rel}" if rel else base) as entries:
                    for entry in entries:
                        name = f"{rel}/{entry.name}" if rel else entry.name
                        if not _is_dir(entry):
                            found.append(name)
                        elif not entry.is_symlink():
                            pending.append(name)
            except OSError:  # gone meanwhile, or not to be listed: as `os.walk` takes it
                continue
        return sorted(found)

    def list_dir(self, path: str) -> list[tuple[str, bool]]:
        with os.scandir(self._abs(path)) as entries:
            return [(entry.name, _is_dir(entry)) for entry in entries]

    def real_path(self, path: str) -> str:
        return os.path.realpath(self._abs(path))

    def link_target(self, path: str) -> str | None:
        try:
            return os.readlink(self._abs(path))
        except OSError:
            return None

    def make_dirs(self, path: str) -> None:
        target = self._abs(path)
        if not os.path.isdir(target):  # one stat, where makedirs would raise and catch
            os.makedirs(target, exist_ok=True)

    def open_scratch(self, path: str) -> BinaryIO:
        target = self._abs(path)
        try:
            return open(target, "wb", buffering=0)
        except FileNotFoundError:  # the directory is made when missing, not probed each time
            os.makedirs(os.path.dirname(target), exist_ok=True)
            return open(target, "wb", buffering=0)

    def room(self, path: str) -> int:
        st = os.statvfs(self._abs(path))
        return st.f_bavail * st.f_frsize

    def read_tail(self, path: str, limit: int) -> tuple[int, bytes]:
        with open(self._abs(path), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                handle.seek(size - limit)
            return size, handle.read(limit)

    def rename(self, path: str, to: str) -> None:
        os.replace(self._abs(path), self._abs(to))

    def remove(self, path: str) -> bool:
        return remove_owned(self.root, path)

    def lock(self, path: str) -> Lock:
        from buildflow.lock import ProjectLock  # here: only a build takes it

        return ProjectLock(self._abs(path))

    def now_ns(self) -> int:
        return time.time_ns()

    def file_now_ns(self) -> int:
        return file_clock_ns()


class LocalAppendFile:
    """A real file open for appending, unbuffered: each record reaches the OS when written,
    so a killed build keeps every record it finished."""

    def __init__(self, path: str, keep: int) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._file = open(path, "r+b" if os.path.exists(path) else "w+b", buffering=0)
        try:
            self._file.truncate(keep)
            self._file.seek(0, os.SEEK_END)
        except OSError:
            self._file.close()
            raise
        self.size = keep

    def write(self, data: bytes) -> None:
        try:
            if self._file.write(data) != len(data):
                raise OSError(28, "short write (disk full?)")
        except OSError:
            self._file.truncate(self.size)  # later records must not follow a torn one
            raise
        self.size += len(data)

    def close(self) -> None:
        try:
            os.fsync(self._file.fileno())
        except OSError:
            pass
        self._file.close()


def is_temp_file(path: str) -> bool:
    """Whether `path` is a temp file `replace_file` left (a build killed while writing)."""
    name = os.path.basename(path)
    return name.startswith(".") and name.endswith(".tmp")


class LeftTemps:
    """The temp files `replace_file_from` left beside outputs in processes that are gone (a
    build killed while it restored or wrote one), each directory listed once: a clean of
    thousands of outputs in one directory listed it once per output."""

    def __init__(self) -> None:
        self._temps: dict[str, list[str]] = {}  # directory -> the temp files listed there

    def remove_beside(self, path: str) -> int:
        """Remove those left beside `path`; how many."""
        directory, name = os.path.split(path)
        temps = self._temps.get(directory)
        if temps is None:
            try:
                listed = os.listdir(directory or ".")
            except OSError:
                listed = []
            temps = self._temps[directory] = [entry for entry in listed
                                               if entry.startswith(".") and entry.endswith(".tmp")]
        prefix = f".{name[:TEMP_NAME_KEPT]}."
        removed = 0
        for entry in temps:
            pid, dash, thread = entry[len(prefix):-len(".tmp")].partition("-")
            if not (entry.startswith(prefix) and pid.isdigit() and dash and thread.isdigit()) \
                    or _alive(int(pid)):
                continue
            try:
                os.unlink(os.path.join(directory, entry))
                removed += 1
            except OSError:
                pass
        return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: alive
        return True
    return True


def replace_file(path: str, *chunks: bytes, mode: int | None = None, sync: bool = True) -> None:
    """`replace_file_from` these chunks."""
    replace_file_from(path, chunks, mode=mode, sync=sync)


def replace_file_from(path: str, chunks: Iterable[bytes], *, mode: int | None = None,
                sync: bool = True) -> None:
    """Write `path` whole under a temp name unique to this process and thread beside it, then
    rename it into place (making its directory when missing): a reader (another build,
    another thread, a browser) sees the old file or the new one, never a part. Its mode is
    `mode` when given, whatever the umask; else what the umask leaves. `sync` flushes
    the data to disk before the rename, so a power cut cannot leave an empty file in its
    place; files that are only shown (logs, reports), or that are checked whenever read and
    rebuilt when damaged (the proof, the project cache, the output cache), skip it."""
    temp = os.path.join(os.path.dirname(path),  # a name of 255 bytes leaves no room: cut
                        f".{os.path.basename(path)[:TEMP_NAME_KEPT]}.{os.getpid()}-"
                        f"{threading.get_ident()}.tmp")
    flags, created = os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode
    try:
        fd = os.open(temp, flags, created)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(temp, flags, created)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:  # in pieces, as they come: a large file is never whole in memory
                handle.write(chunk)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp, mode)  # whatever the umask took away
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link into a directory that cannot be searched
        return False


def _stat(st: os.stat_result) -> Stat:
    return Stat(st.st_size, st.st_mtime_ns, st.st_ino, (st.st_mode & 0o170000) == 0o040000,
                st.st_ctime_ns)
