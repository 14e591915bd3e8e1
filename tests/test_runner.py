"""SubprocessRunner with real processes: direct exec, lists, env and cwd, timeouts and stops that
take the whole process group down."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from buildflow.model import Task
from buildflow.runner import SubprocessRunner, direct_argv

ENV = dict(os.environ)


def run(tmp_path: Path, *commands: str, runner: SubprocessRunner | None = None,
        env: dict[str, str] | None = None, **fields: object) -> tuple[object, str]:
    task = Task(name="t", base="t", commands=commands, **fields)  # type: ignore[arg-type]
    log_file = tmp_path / "t.log"
    with open(log_file, "wb", buffering=0) as log:
        result = (runner or SubprocessRunner()).run(task, tmp_path, env or ENV, log)
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


def test_plain_command_runs_without_a_shell(tmp_path: Path) -> None:
    script = tmp_path / "parent"
    script.write_text("#!/bin/sh\ncat /proc/$PPID/comm > parent.txt\n")
    script.chmod(0o755)
    result, _ = run(tmp_path, "./parent")
    assert result.ok
    direct_parent = (tmp_path / "parent.txt").read_text().strip()
    run(tmp_path, "./parent; true")
    shell_parent = (tmp_path / "parent.txt").read_text().strip()
    assert shell_parent == "sh" and direct_parent != "sh"


def test_list_stops_at_first_failure(tmp_path: Path) -> None:
    result, output = run(tmp_path, "echo one", "sh -c 'echo two; exit 4'", "echo three")
    assert result.exit_code == 4 and not result.ok
    assert output == "one\ntwo\n"


def test_env_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    result, output = run(tmp_path, "pwd; echo $GREETING", cwd="sub",
                         env={**ENV, "GREETING": "hi"})
    assert result.ok
    assert output.splitlines() == [str(tmp_path / "sub"), "hi"]


def test_missing_command_and_missing_cwd_are_explained(tmp_path: Path) -> None:
    result, output = run(tmp_path, "no-such-command-here --flag")
    assert result.exit_code == 127 and "command not found" in output
    result, output = run(tmp_path, "true", cwd="nowhere")
    assert result.exit_code == 126 and "cannot run in" in output


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    result, _ = run(tmp_path, "sleep 30 & echo $! > child.pid; wait", timeout=0.5)
    assert result.timed_out and result.describe(0.5) == "timed out after 0.5s"
    child = int((tmp_path / "child.pid").read_text())
    assert wait_for(lambda: gone(child))


def test_stop_all_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    runner = SubprocessRunner(kill_grace=0.3)
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(run(
        tmp_path, "trap '' TERM; sleep 30 & echo $! > child.pid; wait", runner=runner)))
    thread.start()
    assert wait_for(lambda: (tmp_path / "child.pid").exists()
                    and (tmp_path / "child.pid").read_text().strip())
    runner.stop_all()
    child = int((tmp_path / "child.pid").read_text())
    assert gone(child)  # stop_all returns only once the group is gone
    thread.join(20)
    assert not outcome[0][0].ok  # type: ignore[index]
    result, _ = run(tmp_path, "true", runner=runner)
    assert not result.ok  # a stopped runner starts nothing more
