"""Runs one attempt of a task's commands, each in its own process group, with a timeout.

A command with no shell metacharacters is executed directly, as Make does, which saves the cost
of a shell; only under the default shell, `/bin/sh`, whose words it knows (another shell has
words of its own: bash's `shopt`, `time`, `pushd`). Output goes straight into the task's log
file; nothing is buffered in memory.
Stopping a command means stopping its whole process group, so grandchildren (a shell's
children, a compiler's helpers) never outlive it.

Commands start through `posix_spawn` when they run where bflow runs, in bflow's environment
(the usual case): it costs bflow less than half the CPU of `subprocess.Popen`, which thousands
of tasks feel, and spares importing `subprocess`. Others (a task's `cwd` or `env`) go through
`Popen`, which can change directory and resolve the program on the task's own PATH.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol

from buildflow.model import DEFAULT_SHELL, Task
from buildflow.signals import (SIG_BLOCK, SIG_SETMASK, SIGKILL, SIGPIPE, SIGTERM,
                               SIGTTOU, SIGXFSZ, pthread_sigmask, signal_name)

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable
    from typing import IO, Any

    from buildflow.pyworkers import PythonWorkers

# SIGTERM, then SIGKILL this much later, so that the group is gone within 2 s (SPEC §3)
KILL_GRACE_SECONDS = 1.5
_GROUP_POLL_SECONDS = 0.02
_WAIT_POLL_MAX_SECONDS = 0.05  # waiting with a timeout polls, backing off up to this
# Dispositions a child must not inherit: Python ignores SIGPIPE (and SIGXFSZ), and an ignored
# signal stays ignored across exec. Popen resets them too (restore_signals).
_RESET_SIGNALS = (SIGPIPE, SIGXFSZ)
# Characters that need a shell, as in GNU Make's fast path.
_SHELL_CHARS = frozenset("\n\"#$&'()*;<=>?[\\]^`{|}~%!")
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
    strays: bool = False  # a command left processes running that may still write (`cmd &`)
    step: int = 0  # which of the task's commands ended the attempt (0: the first)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe(self, task: Task) -> str:
        """Why the attempt failed; for a list of commands, which one ("in command 2 of 3")."""
        where = f" in command {self.step + 1} of {len(task.commands)}" \
            if len(task.commands) > 1 else ""
        if self.timed_out:
            return f"timed out after {task.timeout:g}s{where}"
        if self.signal is not None:
            return f"killed by {signal_name(self.signal)}{where}"
        if self.exit_code == 127:
            return f"exit 127{where} (command not found)"
        return f"exit {self.exit_code}{where}"


class Child(Protocol):
    """A started command: the leader of its own process group."""

    pid: int

    def poll(self) -> int | None:
        """The exit code (negative: killed by that signal) if it has ended, else None."""

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once it ends; None if `timeout` seconds pass first."""


class Groups(Protocol):
    """Where the process groups of running commands are kept (by their leader's pid)."""

    def add(self, pgid: int) -> None: ...

    def discard(self, pgid: int) -> None: ...


def direct_argv(command: str, shell: str = DEFAULT_SHELL) -> list[str] | None:
    """The argv to exec without a shell, or None when the command needs `shell`."""
    if shell != DEFAULT_SHELL or not _SHELL_CHARS.isdisjoint(command):
        return None
    # split where sh splits, at spaces and tabs: not at a no-break space, `\f` or `\v`
    words = [word for word in command.replace("\t", " ").split(" ") if word]
    if not words or words[0] in _SHELL_WORDS:
        return None
    return words


class SubprocessRunner:
    """The local executor (`executors.Executor`): runs real processes on this machine.
    Thread-safe: the scheduler calls `run` from worker threads."""

    def __init__(self, kill_grace: float = KILL_GRACE_SECONDS, attached_stdout: int = 1,
                 groups: Groups | None = None) -> None:
        """`attached_stdout`: where an interactive task's stdout goes (bflow's stderr, 2,
        when bflow's stdout carries `--json` events). `groups` is told each process group as
        it starts and ends (a Dask worker keeps them where its successor can find them)."""
        self.kill_grace = kill_grace
        self.attached_stdout = attached_stdout
        self.groups = groups
        self._lock = threading.Lock()
        # bflow's environment when the build starts, as posix_spawn takes it: os.environ
        # itself would be decoded and encoded again, variable by variable, for every command.
        self._environ = dict(os.environb)
        self._here = os.getcwd()  # where a command starts when spawned without a directory
        # A command run without a shell sees `$PWD` as `sh -c` would set it: its directory
        # (`make` in a task's `cwd` writes `$(PWD)/x`), not where bflow was started.
        self._pwds: dict[tuple[str | None, str], bool] = {}
        if not self._denotes(os.environ.get("PWD"), self._here):
            self._environ[b"PWD"] = os.fsencode(self._here)
        self._running: set[Child] = set()
        self._stopping = False
        self._python: PythonWorkers | None = None  # started with the first `py` task

    def run(self, task: Task, root: str, env: Mapping[str, str], log: IO[bytes]) -> RunResult:
        deadline = time.monotonic() + task.timeout if task.timeout > 0 else None
        if task.py:  # a Python function: one more kind of attempt, run by a reused worker
            with self._lock:
                if self._stopping:
                    return RunResult(None, signal=SIGTERM)
                if self._python is None:
                    from buildflow.pyworkers import PythonWorkers

                    self._python = PythonWorkers(self.kill_grace, self.groups)
            return self._python.run(task, root, env, log, deadline)
        cwd = os.path.join(root, task.cwd) if task.cwd else root
        # The commands of this attempt so far: one that left its group running (`server &`)
        # stays with the attempt, so a timeout or a stop ends what it started too.
        started: list[Child] = []
        try:
            return self._run_commands(task, cwd, env, log, deadline, started)
        finally:  # what runs on past a finished attempt is left to run, as under Make
            with self._lock:
                for process in list(started):
                    self._forget(process, started)

    def _run_commands(self, task: Task, cwd: str, env: Mapping[str, str], log: IO[bytes],
                      deadline: float | None, started: list[Child]) -> RunResult:
        strays = False
        for step, command in enumerate(task.commands):
            shell_argv = [task.shell, "-c", command]
            argv = direct_argv(command, task.shell)
            command_env = env
            if argv is None:
                argv = shell_argv
            elif not (env is os.environ and cwd == self._here) and \
                    not self._denotes(env.get("PWD"), cwd):
                command_env = {**env, "PWD": cwd}
            log.flush()
            with self._lock:  # so that stop_all never misses a process being started
                if self._stopping:
                    return RunResult(None, signal=SIGTERM)
                terminal = _foreground_terminal() if task.interactive else None
                process = _attach(argv, cwd, command_env, log, self.attached_stdout,
                                  terminal) if task.interactive else \
                    _spawn(argv, cwd, command_env, log, self._environ, self._here, shell_argv)
                if isinstance(process, RunResult):
                    return process
                started.append(process)
                self._running.add(process)
                if self.groups is not None:
                    self.groups.add(process.pid)
            try:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                code = process.wait(timeout)
                if code is None:
                    terminate_all(started, self.kill_grace)
                    return RunResult(None, timed_out=True, step=step)
            finally:
                if terminal is not None:
                    _take_terminal_back(terminal)
            left_running = code == 0 and _group_alive(process.pid)
            with self._lock:
                stopped = self._stopping  # then `stop_all` signalled it, as it ran
                if not left_running:  # an ended group's number may soon be another's
                    self._forget(process, started)
            if stopped:  # whatever it exited with: a tool that ends cleanly on SIGTERM was
                return RunResult(None, signal=SIGTERM, step=step)  # still cut short
            if code < 0:
                return RunResult(code, signal=-code, step=step)
            if code != 0:
                return RunResult(code, step=step)
            strays = strays or left_running
        return RunResult(0, strays=strays)

    def _forget(self, process: Child, started: list[Child]) -> None:
        """Stop keeping `process` as running (the caller holds the lock)."""
        started.remove(process)
        self._running.discard(process)
        if self.groups is not None:
            self.groups.discard(process.pid)

    def _denotes(self, pwd: str | None, directory: str) -> bool:
        """Whether `$PWD` names `directory` (through a symlink, as a shell keeps it)."""
        if pwd == directory:
            return True
        if (pwd, directory) not in self._pwds:
            try:
                same = pwd is not None and os.path.samefile(pwd, directory)
            except OSError:
                same = False
            self._pwds[pwd, directory] = same
        return self._pwds[pwd, directory]

    def stop_all(self) -> None:
        with self._lock:
            self._stopping = True
            running = list(self._running)
        python = None
        if self._python is not None:
            python = threading.Thread(target=self._python.stop_all)
            python.start()
        terminate_all(running, self.kill_grace)
        if python is not None:
            python.join()

    def close(self) -> None:
        """Nothing to let go of: every process ends with its attempt."""


def terminate(process: Child, grace: float) -> None:
    """SIGTERM the group `process` leads, give its members `grace` seconds to exit, then
    SIGKILL it."""
    terminate_all([process], grace)


def terminate_all(processes: list[Child], grace: float) -> None:
    """`terminate` the groups of `processes` together, so all are gone within one grace."""
    for process in processes:
        _signal_group(process.pid, SIGTERM)
    deadline = time.monotonic() + grace
    alive = list(processes)
    while alive and time.monotonic() < deadline:
        for process in alive:
            process.poll()  # reap the leader: a zombie would keep the group alive
        alive = [process for process in alive if _group_alive(process.pid)]
        if alive:
            time.sleep(_GROUP_POLL_SECONDS)
    for process in processes:
        _signal_group(process.pid, SIGKILL)
    for process in processes:
        process.wait()


def _spawn(argv: list[str], cwd: str, env: Mapping[str, str], log: IO[bytes],
           environ: Mapping[bytes, bytes], here: str,
           shell_argv: list[str]) -> Child | RunResult:
    """Start `argv` as the leader of a new process group, or say in the log why it could not.
    `environ` is bflow's environment, encoded, and `here` its working directory, for a
    command run in both (`env is os.environ`, `cwd` is `here`) without Popen. A file the
    kernel cannot execute (a script without `#!`) runs through the shell (`shell_argv`), as
    `sh -c` runs it."""
    try:
        if env is os.environ and cwd == here:
            fd = log.fileno()
            return _Spawned(os.posix_spawnp(
                argv[0], argv, environ, setsid=True, setsigdef=_RESET_SIGNALS,
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                              (os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)]))
        return _Popened(argv, cwd, env, log)
    except OSError as exc:
        if exc.errno == errno.ENOEXEC and argv is not shell_argv:
            return _spawn(shell_argv, cwd, env, log, environ, here, shell_argv)
        return _spawn_failed(argv, cwd, exc, log)


def _spawn_failed(argv: list[str], cwd: str, exc: OSError, log: IO[bytes]) -> RunResult:
    """Say in the log why `argv` could not start, with the exit status a shell gives."""
    if exc.filename is not None and os.fsdecode(exc.filename) == cwd:
        log.write(f"bflow: cannot run in {cwd}: {exc.strerror}\n".encode())
        return RunResult(126)
    if isinstance(exc, FileNotFoundError):
        log.write(f"bflow: {argv[0]}: command not found\n".encode())
        return RunResult(127)
    if exc.errno == errno.E2BIG:  # `sh -c` takes the whole command as one argument
        longest = max(len(os.fsencode(arg)) for arg in argv)
        log.write(f"bflow: {argv[0]}: {exc.strerror}: the command is {longest / 1024:.0f} KiB, "
                  "and Linux takes at most 128 KiB in one argument (2 MiB in all, with the "
                  "environment); write a long list of files to a file the command reads "
                  "instead (`xargs < list.txt`)\n".encode())
        return RunResult(126)
    log.write(f"bflow: {argv[0]}: {exc.strerror}\n".encode())
    return RunResult(126)


def _attach(argv: list[str], cwd: str, env: Mapping[str, str], log: IO[bytes],
            stdout: int, terminal: list[Any] | None) -> Child | RunResult:
    """Start an interactive task's command on bflow's own stdin, stdout (or `stdout`) and
    stderr, in a process group of its own; with a `terminal` (its settings), that group is
    made the terminal's foreground before the command starts, as a shell does, so the
    command reads what is typed and Ctrl-C goes to it, not to bflow."""
    try:
        return _Popened(argv, cwd, env, None, stdout,
                        lead=_lead_terminal if terminal is not None else os.setpgrp)
    except OSError as exc:
        return _spawn_failed(argv, cwd, exc, log)


def _foreground_terminal() -> list[Any] | None:
    """The settings of the terminal on bflow's stdin when bflow's process group is its
    foreground (so bflow may hand it on), else None."""
    import termios

    try:
        if os.tcgetpgrp(0) != os.getpgrp():
            return None
        return termios.tcgetattr(0)
    except (OSError, termios.error):  # stdin is not a terminal
        return None


def _lead_terminal() -> None:
    """In the child, before exec: a process group of its own, the terminal's foreground.
    Done there, not by bflow after the start, so not a keystroke can reach bflow meanwhile."""
    os.setpgrp()
    _as_background(lambda: os.tcsetpgrp(0, os.getpgrp()))


def _take_terminal_back(saved: list[Any]) -> None:
    """Make bflow's group the terminal's foreground again, with the settings it had (a
    program killed in raw mode leaves the terminal in it)."""
    import termios

    def restore() -> None:
        os.tcsetpgrp(0, os.getpgrp())
        termios.tcsetattr(0, termios.TCSADRAIN, saved)

    try:
        _as_background(restore)
    except OSError:
        pass


def _as_background(action: Callable[[], None]) -> None:
    """Do `action` on the terminal with SIGTTOU blocked in this thread: a process group not
    in the foreground that changes the terminal is otherwise stopped by it."""
    old = pthread_sigmask(SIG_BLOCK, {SIGTTOU})
    try:
        action()
    finally:
        pthread_sigmask(SIG_SETMASK, old)


class _Spawned:
    """A child started by `posix_spawn`, reaped as Popen reaps: by one thread at a time, so a
    worker waiting for it and `stop_all` polling it never both collect its status."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._reaping = threading.Lock()

    def poll(self) -> int | None:
        if self.returncode is None and self._reaping.acquire(blocking=False):
            try:
                self._reap(os.WNOHANG)
            finally:
                self._reaping.release()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        if timeout is None:
            with self._reaping:
                self._reap(0)
            return self.returncode
        deadline, delay = time.monotonic() + timeout, 0.0005
        while self.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _WAIT_POLL_MAX_SECONDS)
        return self.returncode

    def _reap(self, flags: int) -> None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, flags)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)


class PopenChild:
    """A `Child` over a `subprocess.Popen`."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        return self._process.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        import subprocess

        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


class _Popened(PopenChild):
    """A child started by `subprocess.Popen`, for a command with its own directory or
    environment, or an interactive one (`log` None): on bflow's stdin and stderr, its stdout
    on `stdout`, in a new process group of bflow's session (a new session would leave the
    terminal behind)."""

    def __init__(self, argv: list[str], cwd: str, env: Mapping[str, str],
                 log: IO[bytes] | None, stdout: int = 1,
                 lead: Callable[[], None] | None = None) -> None:
        import subprocess

        # env None inherits bflow's environment as the C library holds it (os.environ writes
        # through to it), sparing Popen re-encoding every variable for every command.
        given = None if env is os.environ else env
        if log is None:
            super().__init__(subprocess.Popen(argv, cwd=cwd, env=given, stdout=stdout,
                                              preexec_fn=lead))
        else:
            super().__init__(subprocess.Popen(
                argv, cwd=cwd, env=given, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True))


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. A zombie does not: a killed grandchild
    re-parented to a PID 1 that reaps slowly (as in many CI containers) stays one for a while,
    and `killpg(pgid, 0)` counts it, but it can neither run nor write."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _has_running_member(pgid)


def _has_running_member(pgid: int) -> bool:
    """Whether /proc shows a process of group `pgid` that is not a zombie (True where there is
    no /proc to ask)."""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:  # ended meanwhile
            continue
        # "PID (COMM) STATE PPID PGRP ...", where COMM may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False
