"""Shared helpers: run the real `bflow` in a subprocess inside a temporary project."""

from __future__ import annotations

import array
import fcntl
import os
import signal
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import pytest
from forkserver import ForkServer


REPO = Path(__file__).resolve().parents[1]



# A task whose command edits its input and changes it back while it runs, as `git stash` and
# `git stash pop` during a build would: it read another content than the one hashed before.
CHANGED_BACK = """
    [tasks.slow]
    cmd = "echo slow >> runs.log && cp {input} kept && echo other > {input} && cp {input} {output} && cp kept {input}"
    inputs = ["src.txt"]
    outputs = ["out.txt"]
"""

def pytest_configure(config: pytest.Config) -> None:
    """Stand where a terminal's foreground job stands. A suite started in the background
    (`nohup pytest &`) inherits SIGINT ignored, and a program started with a signal ignored
    keeps it ignored: every bflow the tests interrupt would then ignore its Ctrl-C."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than the cores. A third of a test's time on 2 cores is spent
    waiting on the real processes it starts (builds, watchers, servers, timeouts), and a
    worker more fills it: 75.7 s against 92.5 s for the whole suite (docs/speed.md)."""
    return (os.cpu_count() or 1) + 1


def bflow_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a bflow subprocess: this checkout's package with its byte code
    cached (as an installed bflow has it, whatever the suite runs with), no colour, and every
    shortcut checked against the full decision (BFLOW_VERIFY=1) unless the environment the
    suite runs in says otherwise (`BFLOW_VERIFY=0 pytest` runs the plain path)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    verify = {} if "BFLOW_VERIFY" in os.environ else {"BFLOW_VERIFY": "1"}
    environ = {name: value for name, value in os.environ.items()
               if name != "PYTHONDONTWRITEBYTECODE"}
    return {**environ, "NO_COLOR": "1", "PYTHONPATH": path, **verify, **(extra or {})}


def terminal_env(columns: int = 100, lines: int = 24, term: str = "xterm-256color",
                 **extra: str) -> dict[str, str]:
    """The environment of a bflow on a user's terminal: colour allowed, not in CI (where CI
    sets `CI`, which asks for plain lines)."""
    environ = {name: value for name, value in bflow_env().items()
               if name not in ("NO_COLOR", "CI")}
    return {**environ, "TERM": term, "COLUMNS": str(columns), "LINES": str(lines), **extra}


_fork_server: ForkServer | None = None


def run_bflow(*args: str, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`bflow ARGS` in `cwd`, forked from a server that has imported it already
    (`forkserver.py` says why), or in a new interpreter where the run needs one, and for every
    run under `BFLOW_TEST_FRESH=1`."""
    global _fork_server
    full_env = bflow_env(env)
    if not os.environ.get("BFLOW_TEST_FRESH"):
        if _fork_server is None:
            _fork_server = ForkServer(bflow_env())
        done = _fork_server.run(args, cwd, full_env, timeout)
        if done is not None:
            return done
    return subprocess.run([sys.executable, "-m", "buildflow", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def git(root: Path, *args: str) -> str:
    """Run git in `root` as a fixed author; its output."""
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=root, check=True, capture_output=True, text=True).stdout


def children() -> set[int]:
    """The processes whose parent is this one, zombies included: to tell that code under test
    reaped every child it made, whatever other tests of this process left running."""
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path("/proc", name, "stat").read_bytes()
            except OSError:  # ended meanwhile
                continue
            # "PID (COMM) STATE PPID ...", where COMM may hold spaces and parentheses
            if int(stat[stat.rfind(b")") + 2:].split()[1]) == os.getpid():
                found.add(int(name))
    return found


def date_past_timestamp_slack(path: Path) -> None:
    """Date the last write of a depfile input back past the scheduler's timestamp slack, as a
    write a moment earlier would have: one written just before its task starts counts as
    written during the run (recorded as unknown, so the task runs again on the next build),
    and a fast build can start its task within that slack. bflow tells a write made before
    a run from one made during it by its mtime alone, so dating the write back is as good as
    waiting the slack out. A file dated in the future is left as it is."""
    from buildflow.runrecord import TIMESTAMP_SLACK_NS

    now = time.time_ns()
    if 0 <= now - path.stat().st_mtime_ns <= 2 * TIMESTAMP_SLACK_NS:
        earlier = now - 2 * TIMESTAMP_SLACK_NS - 1
        os.utime(path, ns=(earlier, earlier))


def settle(*paths: Path) -> None:
    """Wait until each path's last change is old enough for its stat to be trusted (the racy
    rule): the hash cache and the proof trust it from then on, and a load of the project whose
    globs read those directories is cached."""
    from buildflow.racy import trusted

    deadline = time.monotonic() + 30
    for path in paths:
        while True:
            st = path.stat()
            if trusted(max(st.st_mtime_ns, st.st_ctime_ns), time.time_ns()):
                break
            assert time.monotonic() < deadline
            time.sleep(0.02)


class Project:
    """A temporary project directory with helpers to write files and run bflow."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, path: str, text: str) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def flowfile(self, text: str) -> Path:
        return self.write("Flowfile", textwrap.dedent(text))

    def read(self, path: str) -> str:
        return (self.root / path).read_text()

    def bflow(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return run_bflow(*args, cwd=self.root, **kwargs)  # type: ignore[arg-type]

    def write_before_the_run(self, path: str, text: str) -> Path:
        """Write a depfile input, then `date_past_timestamp_slack`."""
        target = self.write(path, text)
        date_past_timestamp_slack(target)
        return target

    def build(self, *args: str, status: int = 0, env: dict[str, str] | None = None) -> list[str]:
        """Run `bflow ARGS`, check its exit status, and return what its commands appended to
        runs.log: the tasks it ran, counted by their side effect."""
        before = len(self.runs())
        result = self.bflow(*args, env=env)
        assert result.returncode == status, result.stdout + result.stderr
        return self.runs()[before:]

    def runs(self, log: str = "runs.log") -> list[str]:
        """Lines a test's commands appended to a log file: the side effect that counts runs."""
        path = self.root / log
        return path.read_text().split() if path.exists() else []


@pytest.fixture(autouse=True)
def private_output_cache(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest,
                         monkeypatch: pytest.MonkeyPatch) -> Path:
    """An output cache of the test's own, for bflow run in-process and in subprocesses (whose
    environment is copied from this one): no test touches the user's, and no test restores
    what another one built. It is off unless the test is marked `output_cache`: most tests
    count the commands a build runs, and with the cache on, a stale task built before (an
    edit undone, a deleted output) is restored instead of run."""
    directory = tmp_path_factory.mktemp("output-cache")
    monkeypatch.setenv("BFLOW_CACHE_DIR", str(directory))
    for name in ("BFLOW_CACHE", "BFLOW_CACHE_MAX", "BFLOW_REMOTE_CACHE",
                 "BFLOW_REMOTE_CACHE_HEADER", "BFLOW_REMOTE_CACHE_UPLOAD"):
        monkeypatch.delenv(name, raising=False)
    if request.node.get_closest_marker("output_cache") is None:
        monkeypatch.setenv("BFLOW_CACHE", "0")
    return directory


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


class OnTerminal:
    """`bflow ARGS` on a terminal of its own (a pty it controls), as a user runs it: what it
    shows is read as it comes, and keys are typed into it."""

    def __init__(self, root: Path, *args: str, columns: int = 100) -> None:
        import fcntl
        import pty
        import termios

        self.leader, self.follower = pty.openpty()
        env = terminal_env(columns)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "buildflow", *args], cwd=root, env=env,
            stdin=self.follower, stdout=self.follower, stderr=self.follower,
            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        self.screen = b""

    def wait_for(self, text: bytes, timeout: float = 30) -> None:
        """Read until `text` has been shown."""
        import select

        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < deadline and self.process.poll() is None, self.screen
            if select.select([self.leader], [], [], 0.1)[0]:
                self.screen += os.read(self.leader, 65536)

    def type(self, keys: bytes) -> None:
        os.write(self.leader, keys)

    def finish(self) -> int:
        """Read everything until bflow exits; its exit status."""
        import select

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if select.select([self.leader], [], [], 0.1)[0]:
                try:
                    self.screen += os.read(self.leader, 65536)
                except OSError:  # the terminal closed
                    break
            elif self.process.poll() is not None:
                break
        os.close(self.follower)
        os.close(self.leader)
        return self.process.wait(30)


def waiting_in(pipe: int) -> int:
    """The bytes written into `pipe` and not read yet."""
    count = array.array("i", [0])
    fcntl.ioctl(pipe, termios.FIONREAD, count)
    return count[0]
