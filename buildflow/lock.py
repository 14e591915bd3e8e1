"""One build per project at a time: an flock on `<cache_dir>/lock`, released by the kernel
even when bflow is killed."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable

from buildflow.errors import BuildError


PID_WAIT_SECONDS = 0.5  # for the pid of a run that has just taken the lock


def _make_cache_dir(path: str) -> None:
    """The cache dir, when it is not there yet, with a `.gitignore` that ignores all of it (as
    pytest's and mypy's caches have): a `git add -A` never takes in the records, and a
    pre-commit build hook never finds them changed."""
    if os.path.isdir(path):
        return
    os.makedirs(path, exist_ok=True)
    try:
        with open(os.path.join(path, ".gitignore"), "x") as ignore:
            ignore.write("# written by bflow: its records, logs and lock\n*\n")
    except FileExistsError:
        pass


class ProjectLock:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd: int | None = None

    def acquire(self, timeout: float | None, say: Callable[[str], None]) -> None:
        """Wait for the lock (forever when timeout is None), saying once that we wait."""
        try:
            _make_cache_dir(os.path.dirname(self.path))
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise BuildError(f"{self.path}: cannot create the lock file: {exc.strerror}; "
                             f"check that the cache dir is writable") from None
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    holder = _holder(fd)
                    os.close(fd)
                    raise BuildError(
                        f"another bflow run{holder} holds {self.path}; gave up after {timeout:g}s "
                        f"(raise --lock-timeout, or wait for it to finish)") from None
                # A run that has just taken the lock writes its pid a moment later: wait for
                # it a little, so the message names it.
                holder = "" if said else _holder(fd)
                if not said and (holder or time.monotonic() - started >= PID_WAIT_SECONDS):
                    say(f"waiting for another bflow run in this project{holder} to "
                        f"finish (lock: {self.path})")
                    said = True
                time.sleep(0.05)
        self._fd = fd
        _write_pid(fd, f"{os.getpid()}\n")

    def release(self) -> None:
        if self._fd is not None:
            _write_pid(self._fd, "")  # no pid of a run that has ended for the next to name
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _write_pid(fd: int, text: str) -> None:
    """Leave `text` as the lock file's content: the pid a waiting run names. Only a courtesy:
    a full disk (or a lock file that is no regular file) leaves the lock held all the same."""
    try:
        os.ftruncate(fd, 0)
        if text:
            os.write(fd, text.encode())
    except OSError:
        pass


def holder(path: str) -> str | None:
    """" (pid N)" (or "") when a build holds the lock at `path`; None when none does. Asks
    for a shared lock, which a waiting build's exclusive one does not wait behind for long:
    it retries every 50 ms."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no build has run here yet
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """" (pid N)" for the run holding the lock, which wrote its pid there."""
    pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return f" (pid {pid})" if pid.isdigit() else ""
