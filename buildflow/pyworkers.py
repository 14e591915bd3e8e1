"""The pool of worker processes that run `py` tasks, on bflow's side (SPEC §1 "Python tasks").

A worker is a Python process of its own, the leader of its own process group, started on the
first `py` task that finds none idle and kept for the next ones, so a build pays for starting
Python (and importing the user's modules) once per worker, not once per task. The scheduler
runs at most `-j` attempts at once, so there are never more than `-j` workers. A worker that
crashes (`os._exit`, a segfault), runs past its task's timeout or is stopped by Ctrl-C is
killed with its whole group, as a command is, and never replaced in place: the next task
starts a new one. bflow itself only ever waits on a socket.

Each request carries the task's log as a file descriptor (SCM_RIGHTS), which the worker puts
on its stdout and stderr: the function's prints, its `ctx.log`, its traceback and the output of
the programs it runs land in the log as a command's output does.
"""

from __future__ import annotations

import marshal
import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

from buildflow.model import Task
from buildflow.runner import PopenChild, RunResult, terminate
from buildflow.signals import SIGTERM, signal_name

if TYPE_CHECKING:
    from typing import IO

    from buildflow.runner import Groups

# Where `buildflow` is imported from, put first on the worker's path for its own import only.
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_START = ("import sys; sys.path.insert(0, sys.argv[1]); from buildflow import pyworker; "
          "del sys.path[0]; pyworker.serve(int(sys.argv[2]))")


class Worker(PopenChild):
    """One worker process and bflow's end of the socket to it; a `runner.Child`, so it is
    stopped exactly as a command is."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            super().__init__(subprocess.Popen(
                [sys.executable, "-c", _START, _PACKAGE_PARENT, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        finally:
            theirs.close()
        self.socket = ours

    def call(self, request: bytes, log_fd: int, timeout: float | None) -> bytes | None:
        """Send one task and wait for its answer: b"\\0" success, b"\\1" failure, b"" when the
        worker died, None when `timeout` seconds passed first."""
        try:
            socket.send_fds(self.socket, [len(request).to_bytes(8, "little")], [log_fd])
            self.socket.sendall(request)
            self.socket.settimeout(timeout)
            return self.socket.recv(1)
        except TimeoutError:
            return None
        except OSError:  # the worker is gone (killed by stop_all, or crashed while we sent)
            return b""


def _close(workers: list[Worker]) -> None:
    """Close the sockets of idle workers: each then reads the end and exits."""
    for worker in workers:
        worker.socket.close()


class PythonWorkers:
    """Runs `py` attempts on reused workers; thread-safe, as the scheduler's threads call it."""

    def __init__(self, kill_grace: float, groups: Groups | None = None) -> None:
        """`groups` is told each worker's process group while it runs a task, as a command's
        is (on a Dask worker: so that a sweep finds one its dead worker left running)."""
        self.kill_grace = kill_grace
        self.groups = groups
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._stopping = False
        weakref.finalize(self, _close, self._idle)  # a build's runner ends with its build

    def run(self, task: Task, root: str, env: Mapping[str, str], log: IO[bytes],
            deadline: float | None) -> RunResult:
        worker = self._take()
        if worker is None:
            return RunResult(None, signal=SIGTERM)
        cwd = os.path.join(root, task.cwd) if task.cwd else root
        request = marshal.dumps((task.py, root, cwd, dict(env), task.name, task.item,
                                 task.inputs, task.outputs, task.depfile, dict(task.vars)))
        log.flush()
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if self.groups is not None:
            self.groups.add(worker.pid)
        try:
            answer = worker.call(request, log.fileno(), timeout)
        finally:
            if self.groups is not None:
                self.groups.discard(worker.pid)
        if answer is None:
            self._drop(worker)
            terminate(worker, self.kill_grace)
            return RunResult(None, timed_out=True)
        if answer:
            self._give_back(worker)
            return RunResult(0 if answer == b"\0" else 1)
        self._drop(worker)
        code = worker.wait()
        if self._stopping:
            return RunResult(None, signal=SIGTERM)
        code = code if code is not None else 1
        how = f"was killed by {signal_name(-code)}" if code < 0 else f"exited {code}"
        log.write(f"bflow: the Python worker running {task.py} {how}\n".encode())
        return RunResult(code, signal=-code if code < 0 else None)

    def _take(self) -> Worker | None:
        with self._lock:
            if self._stopping:
                return None
            worker = self._idle.pop() if self._idle else Worker()
            self._busy.add(worker)
            return worker

    def _give_back(self, worker: Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if self._stopping:
                worker.socket.close()
            else:
                self._idle.append(worker)

    def _drop(self, worker: Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.socket.close()

    def stop_all(self) -> None:
        """Kill every worker, busy or idle (their whole groups), and start no more."""
        with self._lock:
            self._stopping = True
            workers = [*self._busy, *self._idle]
            self._idle.clear()
        threads = [threading.Thread(target=terminate, args=(w, self.kill_grace))
                   for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
