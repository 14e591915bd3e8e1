"""Runs a task's commands, each in its own process group, with a timeout and captured output.

A command with no shell metacharacters is executed directly, as Make does, which saves the cost
of a shell. Output goes straight into the task's log file; nothing is buffered in memory.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, NamedTuple, Protocol

from buildflow.model import Task

KILL_GRACE_SECONDS = 2.0
# Characters that need a shell, as in GNU Make's fast path.
_SHELL_CHARS = re.compile(r"""[\n"#$&'()*;<=>?\[\\\]^`{|}~%!]""")
_SHELL_WORDS = frozenset(
    "alias bg break case cd command continue declare do done echo elif else esac eval exec exit "
    "export fc fg fi for function getopts hash if jobs kill let local logout read readonly return "
    "select set shift source test then times trap type typeset ulimit umask unalias unset until "
    "wait while . : [".split()
)


class RunResult(NamedTuple):
    exit_code: int | None  # None when the command was killed by bflow
    timed_out: bool = False
    signal: int | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe(self, timeout: float) -> str:
        if self.timed_out:
            return f"timed out after {timeout:g}s"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by {name}"
        if self.exit_code == 127:
            return "exit 127 (command not found)"
        return f"exit {self.exit_code}"


class CommandRunner(Protocol):
    def run(self, task: Task, root: Path, env: Mapping[str, str], log: IO[bytes]) -> RunResult:
        """Run every command of `task` in order, stopping at the first failure."""

    def stop_all(self) -> None:
        """Stop every running command (whole process groups); called on interrupt."""


def direct_argv(command: str) -> list[str] | None:
    """The argv to exec without a shell, or None when the command needs one."""
    if _SHELL_CHARS.search(command):
        return None
    words = command.split()
    if not words or words[0] in _SHELL_WORDS:
        return None
    return words


class SubprocessRunner:
    """Runs real processes. Thread-safe: the scheduler calls `run` from worker threads."""

    def __init__(self, kill_grace: float = KILL_GRACE_SECONDS) -> None:
        self.kill_grace = kill_grace
        self._lock = threading.Lock()
        self._running: set[object] = set()
        self._stopping = False

    def run(self, task: Task, root: Path, env: Mapping[str, str], log: IO[bytes]) -> RunResult:
        import subprocess

        deadline = time.monotonic() + task.timeout if task.timeout > 0 else None
        cwd = root / task.cwd if task.cwd else root
        for command in task.commands:
            argv = direct_argv(command) or [task.shell, "-c", command]
            with self._lock:
                if self._stopping:
                    return RunResult(None, signal=signal.SIGTERM)
                try:
                    process = subprocess.Popen(
                        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                        stderr=subprocess.STDOUT, start_new_session=True)
                except FileNotFoundError:
                    if not cwd.is_dir():
                        log.write(f"bflow: cannot run in {cwd}: no such directory\n".encode())
                        return RunResult(126)
                    log.write(f"bflow: {argv[0]}: command not found\n".encode())
                    return RunResult(127)
                except PermissionError:
                    log.write(f"bflow: {argv[0]}: permission denied\n".encode())
                    return RunResult(126)
                except NotADirectoryError:
                    log.write(f"bflow: cannot run in {cwd}: not a directory\n".encode())
                    return RunResult(126)
                self._running.add(process)
            try:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    code = process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._kill_group(process)
                    return RunResult(None, timed_out=True)
            finally:
                with self._lock:
                    self._running.discard(process)
            if code != 0:
                if code < 0:
                    return RunResult(code, signal=-code)
                return RunResult(code)
        return RunResult(0)

    def _kill_group(self, process: object) -> None:
        """SIGTERM the group, give it a grace period, then SIGKILL whatever is left."""
        import subprocess

        assert isinstance(process, subprocess.Popen)
        pgid = process.pid
        _signal_group(pgid, signal.SIGTERM)
        try:
            process.wait(self.kill_grace)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(pgid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        with self._lock:
            self._stopping = True
            running = list(self._running)
        threads = [threading.Thread(target=self._kill_group, args=(p,)) for p in running]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass
