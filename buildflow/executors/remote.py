"""What runs on a Dask worker: one attempt of a task's commands, through the same
`SubprocessRunner` a local build uses (each command the leader of a new session, so of its own
process group; the task's timeout enforced here, by killing that whole group).

The attempt's output goes straight into the scratch log bflow opened for it, by its path: the
project is at the same path on every worker (one machine, or a shared filesystem), so the
saved logs and `--stream` work as in a local build.

Dask cannot interrupt a running task (`Future.cancel` only forgets it), so bflow stops its
attempts through `stop`, run on every worker by `Client.run`: it kills their process groups
and marks them, so one that had not started yet returns at once when it does.

A worker that dies (killed, out of memory, its machine gone) takes the record of its commands
with it, and its commands, in sessions of their own, would live on beside the attempt Dask
runs again elsewhere. So each worker process lists its running process groups in a file of
its own that it holds locked while it lives (`_Registry`); an attempt that starts on the same
machine first kills the groups listed in any file no living worker holds (`_sweep`). A worker
can die between starting a command and listing its group (a command may kill it at once), so
every command also carries the file's name in its environment (`REGISTRY_VARIABLE`), which its
children inherit: the sweep kills those processes too, found through /proc.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading

from buildflow.model import Task
from buildflow.runner import RunResult, SubprocessRunner
from buildflow.signals import SIGKILL, SIGTERM

_lock = threading.Lock()
_running: dict[str, SubprocessRunner] = {}  # attempt id -> the runner running it
_stopped: set[str] = set()  # attempts bflow stopped: they must not start
_registry: _Registry | None = None
REGISTRY_VARIABLE = "BFLOW_WORKER_REGISTRY"  # in every command's environment: see above


class NotShared(Exception):
    """The worker does not see the project where bflow does."""


def run_attempt(attempt: str, task: Task, root: str, env: dict[str, str],
                log_path: str) -> RunResult:
    """Run one attempt of `task` in `root`, its output appended to `log_path`."""
    registry = _open_registry()
    _sweep(registry.directory)
    env = {**env, REGISTRY_VARIABLE: registry.name}
    runner = SubprocessRunner(groups=registry)
    with _lock:
        if attempt in _stopped:
            return RunResult(None, signal=SIGTERM)
        _running[attempt] = runner
    try:
        try:
            # no O_CREAT: a log bflow has not made means another filesystem than bflow's
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            raise NotShared(
                f"worker on {os.uname().nodename} does not see {log_path}: the project must be "
                "at the same path on every worker (one machine, or a shared filesystem)"
            ) from None
        with os.fdopen(fd, "ab", buffering=0) as log:
            return runner.run(task, root, env, log)
    finally:
        with _lock:
            del _running[attempt]


def stop(attempts: list[str]) -> None:
    """Kill the process groups of `attempts` running on this worker (SIGTERM, then SIGKILL
    after the grace period) and keep any of them from starting later."""
    with _lock:
        _stopped.update(attempts)
        runners = [_running[attempt] for attempt in attempts if attempt in _running]
    threads = [threading.Thread(target=runner.stop_all) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def sweep() -> None:
    """Kill what workers that died on this machine left running: run on every worker as a
    build ends, for a worker that died after the last attempt that would have swept it
    started (Dask may have run that attempt elsewhere, at once)."""
    _sweep(_open_registry().directory)


class _Registry:
    """This worker process's running process groups, in a file it holds locked while it
    lives: the kernel lets go of the lock when the process dies, however it dies."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.name = name = f"{os.getpid()}-{os.urandom(4).hex()}"
        self._groups: set[int] = set()
        self._lock = threading.Lock()
        # made under a name `_sweep` passes over, and named only once locked
        hidden = os.path.join(directory, f".{name}")
        self._fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.rename(hidden, os.path.join(directory, name))

    def add(self, pgid: int) -> None:
        with self._lock:
            self._groups.add(pgid)
            self._write()

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)
            self._write()

    def _write(self) -> None:
        data = "".join(f"{pgid}\n" for pgid in sorted(self._groups)).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)


def _open_registry() -> _Registry:
    global _registry
    with _lock:
        if _registry is None:
            directory = os.path.join(tempfile.gettempdir(), f"bflow-dask-{os.getuid()}")
            os.makedirs(directory, mode=0o700, exist_ok=True)
            _registry = _Registry(directory)
        return _registry


def _sweep(directory: str) -> None:
    """Kill the process groups listed by workers that died, and forget their files."""
    for name in os.listdir(directory):
        if name.startswith("."):
            continue
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:  # swept meanwhile
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                # Its worker lives, or is dying and has not let go yet, or another attempt
                # is sweeping it now: killing what a dead worker left is safe twice over,
                # and must not wait for that other sweep (or the exit) to finish.
                locked = False
            if locked or _dead(name.split("-", 1)[0]):
                _kill_listed(fd, name)
            if locked:
                os.unlink(path)  # else its holder's
        finally:
            os.close(fd)


def _kill_listed(fd: int, name: str) -> None:
    """SIGKILL the process groups the registry file `fd` lists, and the processes that carry
    its `name` in their environment."""
    for line in os.pread(fd, 1 << 16, 0).split():
        try:
            os.killpg(int(line), SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError):
            pass
    _kill_marked(f"{REGISTRY_VARIABLE}={name}".encode())


def _dead(pid: str) -> bool:
    """Whether process `pid` (a registry file's worker) has ended or is ending; False when
    that cannot be told (no /proc). A killed worker closes its connection to the scheduler
    before its registry file (its files close in order, and the registry came later), so
    Dask can run the attempt again here while the dying worker still holds the lock."""
    if not pid.isdigit() or not os.path.isdir("/proc"):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return _ending(handle.read())
    except FileNotFoundError:
        return True
    except (OSError, IndexError, ValueError):
        return False


_PF_EXITING = 0x4  # a process's flag while the kernel shuts it down (linux/sched.h)


def _ending(stat: bytes) -> bool:
    """Whether a process's /proc/PID/stat shows it a zombie or shutting down."""
    fields = stat.rsplit(b")", 1)[1].split()  # after "PID (COMM)": state, ppid, ..., flags
    return fields[0] == b"Z" or bool(int(fields[6]) & _PF_EXITING)


def _kill_marked(mark: bytes) -> None:
    """SIGKILL every process of this user whose environment holds `mark` (a dead worker's
    commands and their children); nothing where /proc is not there to tell."""
    try:
        pids = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                marked = mark in handle.read().split(b"\0")
            if marked:
                os.kill(pid, SIGKILL)
        except (OSError, ValueError):  # gone, or another user's
            pass
