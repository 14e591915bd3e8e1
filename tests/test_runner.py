"""SubprocessRunner with real processes: direct exec, lists, env and cwd, timeouts and stops that
take the whole process group down. Each test that can runs both ways commands start:
`posix_spawn` (a command run where bflow runs, in its environment) and `Popen`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from buildflow import runner as runners
from buildflow.model import Task
from buildflow.runner import SubprocessRunner, direct_argv
from conftest import Project, bflow_env


@pytest.fixture(params=["posix_spawn", "popen"])
def where(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory to run commands in, from bflow's own directory (posix_spawn) or from
    elsewhere (Popen); a test of the first fails if a command takes the other way."""
    if request.param == "posix_spawn":
        monkeypatch.chdir(tmp_path)

        def popen(*args: object) -> None:
            pytest.fail("started through Popen")

        monkeypatch.setattr(runners, "_Popened", popen)
    return tmp_path


def run(tmp_path: Path, *commands: str, runner: SubprocessRunner | None = None,
        env: Mapping[str, str] = os.environ, **fields: object) -> tuple[object, str]:
    task = Task(name="t", base="t", commands=commands, **fields)  # type: ignore[arg-type]
    log_file = tmp_path / "t.log"
    with open(log_file, "wb", buffering=0) as log:
        result = (runner or SubprocessRunner()).run(task, str(tmp_path), env, log)
    return result, log_file.read_text()


def gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_for(condition: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_direct_argv_only_without_shell_syntax() -> None:
    assert direct_argv("gcc -O2 -c a.c -o a.o") == ["gcc", "-O2", "-c", "a.c", "-o", "a.o"]
    for command in ("echo $HOME", "a && b", "cat x > y", "ls *.c", "cd sub", "A=1 make", ""):
        assert direct_argv(command) is None


def test_plain_command_runs_without_a_shell(where: Path) -> None:
    tmp_path = where
    script = tmp_path / "parent"
    script.write_text("#!/bin/sh\ncat /proc/$PPID/comm > parent.txt\n")
    script.chmod(0o755)
    result, _ = run(tmp_path, "./parent")
    assert result.ok
    direct_parent = (tmp_path / "parent.txt").read_text().strip()
    run(tmp_path, "./parent; true")
    shell_parent = (tmp_path / "parent.txt").read_text().strip()
    assert shell_parent == "sh" and direct_parent != "sh"


def test_list_stops_at_first_failure(where: Path) -> None:
    result, output = run(where, "echo one", "sh -c 'echo two; exit 4'", "echo three")
    assert result.exit_code == 4 and not result.ok
    assert output == "one\ntwo\n"


def test_env_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    result, output = run(tmp_path, "pwd; echo $GREETING", cwd="sub",
                         env={**os.environ, "GREETING": "hi"})
    assert result.ok
    assert output.splitlines() == [str(tmp_path / "sub"), "hi"]


def test_missing_command_is_explained(where: Path) -> None:
    result, output = run(where, "no-such-command-here --flag")
    assert result.exit_code == 127 and "command not found" in output
    (where / "not-executable").write_text("echo hi\n")
    result, output = run(where, "./not-executable")
    assert result.exit_code == 126 and "Permission denied" in output


def test_commands_do_not_inherit_ignored_signals(where: Path) -> None:
    # bflow (Python) ignores SIGPIPE; a command must get the default, or `yes | head` would
    # end with errors instead of quietly.
    result, output = run(where, "grep SigIgn /proc/self/status")
    assert result.ok
    ignored = int(output.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))


def test_missing_cwd_is_explained(tmp_path: Path) -> None:
    result, output = run(tmp_path, "true", cwd="nowhere")
    assert result.exit_code == 126 and "cannot run in" in output


def test_timeout_kills_the_whole_group(where: Path) -> None:
    tmp_path = where
    result, _ = run(tmp_path, "sleep 30 & echo $! > child.pid; wait", timeout=0.5)
    assert result.timed_out and result.describe(0.5) == "timed out after 0.5s"
    child = int((tmp_path / "child.pid").read_text())
    assert wait_for(lambda: gone(child))


def test_stop_all_kills_what_ignores_sigterm(where: Path) -> None:
    tmp_path = where
    runner = SubprocessRunner(kill_grace=0.3)
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(run(
        tmp_path, "trap '' TERM; sleep 30 & echo $! > child.pid; wait", runner=runner)))
    thread.start()
    assert wait_for(lambda: (tmp_path / "child.pid").exists()
                    and (tmp_path / "child.pid").read_text().strip())
    runner.stop_all()
    child = int((tmp_path / "child.pid").read_text())
    # stop_all returns once the group is SIGKILLed; the kernel ends its members just after
    assert wait_for(lambda: gone(child))
    thread.join(20)
    assert not outcome[0][0].ok  # type: ignore[index]
    result, _ = run(tmp_path, "true", runner=runner)
    assert not result.ok  # a stopped runner starts nothing more


# Runs bflow as the child of a subreaper that never reaps the orphans it inherits: a killed
# grandchild stays a zombie, as under a slow PID 1 in a container. Prints bflow's time.
SLOW_REAPER = """
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
start = time.monotonic()
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "buildflow", *sys.argv[1:]])
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), time.monotonic() - start)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a subreaper is Linux's")
def test_a_timeout_ends_on_time_beside_zombies_bflow_cannot_reap(project: Project) -> None:
    project.flowfile("""
        [tasks.shell]
        cmd = "echo start; sleep 100"
        timeout = 0.5
        [tasks.python]
        cmd = "python3 -c 'import time; time.sleep(100)'"
        timeout = 0.5
        """)
    result = subprocess.run([sys.executable, "-c", SLOW_REAPER, "--plain", "-j2", "-k"],
                            cwd=project.root, env=bflow_env(), capture_output=True, text=True,
                            timeout=60)
    status, elapsed = result.stdout.splitlines()[-1].split()
    assert status == "1"
    assert result.stdout.count("timed out after 0.5s") == 2
    # Without the kill grace (2s) spent waiting on zombies: the start-up, the 0.5s, the kill.
    assert float(elapsed) < 0.5 + runners.KILL_GRACE_SECONDS * 0.75, result.stdout
