"""SubprocessRunner with real processes: direct exec, lists, env and cwd, timeouts and stops that
take the whole process group down. Each test that can runs both ways commands start:
`posix_spawn` (a command run where bflow runs, in its environment) and `Popen`."""

from __future__ import annotations

import json
import os
import re
import shutil
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
from conftest import OnTerminal, Project, bflow_env, run_bflow, terminal_env


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
    return process_state(pid) in ("Z", None)


def process_state(pid: int) -> str | None:
    """The state letter of `pid` (`S` sleeping, `R` running, `Z` a zombie), None once gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


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
    # another shell has words of its own, which no list here can know: bash's `shopt`, `time`
    assert direct_argv("shopt -s extglob", "/bin/bash") is None
    assert direct_argv("gcc -c a.c", "/bin/bash") is None


def test_a_command_run_without_a_shell_sees_what_sh_c_would_show_it(project: Project) -> None:
    """Run directly (no shell syntax), a command kept bflow's `$PWD` (where bflow was started,
    not its `cwd`: `make` wrote `$(PWD)/gen.txt` over the user's file in the root), a script
    without `#!` failed with "Exec format error" where sh runs it, and a no-break space split
    a file name in two where sh keeps it whole."""
    project.write("lib/Makefile", "gen.txt:\n\techo generated > $(PWD)/gen.txt\n")
    project.write("gen.txt", "the user's notes\n")
    project.write("build.sh", "echo built > out.txt\n")
    (project.root / "build.sh").chmod(0o755)
    project.write("sub/.keep", "")
    project.flowfile("""
        [tasks.lib]
        cmd = "make -s gen.txt"
        cwd = "lib"
        outputs = ["lib/gen.txt"]
        [tasks.where]
        cmd = "printenv PWD"
        [tasks.script]
        cmd = "./build.sh"
        outputs = ["out.txt"]
        [tasks.nbsp]
        cmd = "touch my\u00a0notes.txt"
        outputs = ["my\u00a0notes.txt"]
        """)
    sub = project.root / "sub"  # where the user runs bflow, as their shell says
    result = run_bflow("--plain", "-v", cwd=sub, env={"PWD": str(sub)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.read("gen.txt") == "the user's notes\n"
    assert project.read("lib/gen.txt") == "generated\n"
    assert f"  | {project.root}\n" in result.stdout  # `where`'s output: the root, not sub/
    assert project.read("out.txt") == "built\n"
    assert sorted(p.name for p in project.root.iterdir() if "notes" in p.name) == \
        ["my\u00a0notes.txt"]


def test_a_command_under_another_shell_runs_in_it(project: Project) -> None:
    project.flowfile("""
        [settings]
        shell = "/bin/bash"
        [tasks.t]
        cmd = "shopt -s extglob"
        """)
    result = project.bflow("--plain")
    assert result.returncode == 0, result.stdout + result.stderr


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


def test_a_failure_in_a_list_says_which_command_failed(project: Project) -> None:
    # the report listed the three commands and "exit 1", not which of them failed
    project.flowfile("""
        [tasks.a]
        cmd = ["echo one >> runs.log", "false", "echo three >> runs.log"]
        [tasks.b]
        cmd = "exit 3"
        """)
    result = project.bflow("--plain", "-k")
    assert result.returncode == 1
    assert "FAILED a: exit 1 in command 2 of 3 (1 attempt, " in result.stdout
    assert "FAILED b: exit 3 (1 attempt, " in result.stdout
    assert project.runs() == ["one"]


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
    command = "sleep 30 & echo $! > child.pid; wait"
    result, _ = run(tmp_path, command, timeout=0.5)
    task = Task(name="t", base="t", commands=(command,), timeout=0.5)
    assert result.timed_out and result.describe(task) == "timed out after 0.5s"
    child = int((tmp_path / "child.pid").read_text())
    assert wait_for(lambda: gone(child))


def test_a_timeout_ends_what_an_earlier_command_of_the_list_left_running(where: Path) -> None:
    tmp_path = where
    result, _ = run(tmp_path, "sleep 30 > /dev/null & echo $! > child.pid", "sleep 30",
                    timeout=0.5)
    assert result.timed_out and result.step == 1
    assert wait_for(lambda: gone(int((tmp_path / "child.pid").read_text())))


def test_a_stop_ends_what_an_earlier_command_of_the_list_left_running(where: Path) -> None:
    tmp_path = where
    runner = SubprocessRunner(kill_grace=0.3)
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(run(
        tmp_path, "sleep 30 > /dev/null & echo $! > child.pid", "touch second; sleep 30",
        runner=runner)))
    thread.start()
    assert wait_for(lambda: (tmp_path / "second").exists())
    runner.stop_all()
    assert wait_for(lambda: gone(int((tmp_path / "child.pid").read_text())))
    thread.join(20)
    assert outcome[0][0].signal == signal.SIGTERM  # type: ignore[index]


def test_what_a_finished_attempt_left_running_runs_on(where: Path) -> None:
    """As under Make: `server &` in a task that succeeded is the user's to stop."""
    tmp_path = where
    result, _ = run(tmp_path, "sleep 30 > /dev/null & echo $! > child.pid", "true")
    child = int((tmp_path / "child.pid").read_text())
    try:
        assert result.ok and result.strays and not gone(child)
    finally:
        os.kill(child, signal.SIGKILL)


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
# grandchild stays a zombie, as under a slow PID 1 in a container. Prints bflow's exit status.
SLOW_REAPER = """
import ctypes, os, sys
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "buildflow", *sys.argv[1:]])
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
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
    assert result.stdout.splitlines()[-1] == "1"  # bflow's exit status
    assert result.stdout.count("timed out after 0.5s") == 2
    # Without the kill grace spent waiting on zombies: the 0.5s and the kill, as the
    # build's summary times it (bflow's start-up, seconds on a loaded machine, left out).
    took = re.search(r"failed in ([0-9.]+)s", result.stdout)
    assert took is not None and float(took.group(1)) < 0.5 + runners.KILL_GRACE_SECONDS * 0.75, \
        result.stdout


# --- interactive tasks: on bflow's own terminal --------------------------------------------

PROMPT = """
[tasks.before]
cmd = "echo before >> runs.log && echo printed-before"
[tasks.ask]
cmd = "printf 'name? '; read name; echo \\"hello $name\\" > answer.txt; [ -t 0 ] && [ -t 1 ] && echo on-a-terminal"
interactive = true
deps = "before"
"""


def test_an_interactive_task_reads_what_is_typed_on_the_terminal(project: Project) -> None:
    project.flowfile(PROMPT)
    terminal = OnTerminal(project.root)
    terminal.wait_for(b"name? ")
    terminal.type(b"bob\n")
    assert terminal.finish() == 0, terminal.screen
    assert project.read("answer.txt") == "hello bob\n"
    assert b"on-a-terminal" in terminal.screen
    assert b"printed-before" in terminal.screen
    assert terminal.screen.rindex(b"\x1b[?25h") > terminal.screen.rindex(b"\x1b[?25l")
    assert project.bflow("log", "ask").stdout == ""  # its output is not saved


def test_an_interactive_task_retried_saves_no_log(project: Project) -> None:
    project.flowfile("""
        [tasks.i]
        cmd = "echo hi; exit 1"
        interactive = true
        retries = 1
        retry_delay = 0.1
        """)
    result = project.bflow("--plain")
    assert result.returncode == 1 and "(2 attempts" in result.stdout
    assert "bflow: attempt" not in result.stdout
    assert project.bflow("log", "i").stdout == ""  # its output is never saved, not even bflow's


def test_ctrl_c_goes_to_an_interactive_task_first(project: Project) -> None:
    project.flowfile("""
        [tasks.serve]
        cmd = "trap 'echo stopping; exit 0' INT; echo ready; while :; do sleep 0.05; done"
        interactive = true
        [tasks.after]
        cmd = "echo after >> runs.log"
        deps = "serve"
        [tasks.dies]
        cmd = '''exec python3 -c "import time; print('dying', flush=True); time.sleep(30)"'''
        interactive = true
        deps = "after"
        """)
    # `dies` is one process that says `dying` when it can already be interrupted: `sh -c
    # "echo dying; sleep 30"` catches a Ctrl-C between the two commands and acts on it only
    # once `sleep 30` has ended (dash defers SIGINT in `-c` mode), so the test waited 30 s.
    terminal = OnTerminal(project.root)
    terminal.wait_for(b"ready")
    terminal.type(b"\x03")  # the task handles it and ends well: the build goes on
    terminal.wait_for(b"dying")
    terminal.type(b"\x03")  # this one dies of it: the build stops, as a shell script would
    assert terminal.finish() == 130, terminal.screen
    assert b"stopping" in terminal.screen
    assert project.runs() == ["after"]


def test_an_interactive_task_runs_alone(project: Project) -> None:
    project.flowfile("""
        [tasks.slow]
        cmd = "echo slow-start >> runs.log; sleep 0.5; echo slow-end >> runs.log"
        [tasks.ask]
        cmd = "echo ask >> runs.log"
        interactive = true
        [tasks.later]
        cmd = "echo later >> runs.log"
        """)
    assert project.build("-j3") == ["slow-start", "slow-end", "ask", "later"]


def test_without_a_terminal_it_gets_bflows_stdin_and_keeps_json_on_stdout(
        project: Project) -> None:
    project.flowfile(PROMPT)
    result = subprocess.run([sys.executable, "-m", "buildflow", "--json"], cwd=project.root,
                            env=bflow_env(), input="ann\n", capture_output=True, text=True)
    assert result.returncode == 1  # its stdin is not a terminal: `[ -t 0 ]` fails
    assert project.read("answer.txt") == "hello ann\n"
    assert "name? " in result.stderr
    events = [json.loads(line)["event"] for line in result.stdout.splitlines()]
    assert events == ["task_started", "task_finished", "task_started", "task_failed",
                      "build_finished"]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_what_an_interactive_task_printed_stays_on_the_screen(project: Project) -> None:
    """Seen as a terminal shows it: the live display, resumed after the task, draws below
    what the task printed, never over it."""
    project.flowfile(PROMPT.replace("> answer.txt", ""))
    socket = f"bflow-test-{os.getpid()}"
    tmux = ["tmux", "-L", socket]
    command = f"{sys.executable} -m buildflow; echo exit=$?; sleep 60"
    env = {k: v for k, v in terminal_env().items() if k not in ("TMUX", "COLUMNS", "LINES")}
    subprocess.run([*tmux, "-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "20",
                    "-c", str(project.root), command], env=env, check=True)
    try:
        def screen() -> str:
            return subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True,
                                  text=True, check=True).stdout

        deadline = time.monotonic() + 30
        while "name?" not in screen():
            assert time.monotonic() < deadline, screen()
            time.sleep(0.05)
        subprocess.run([*tmux, "send-keys", "zoe", "Enter"], check=True)
        while "exit=" not in screen():
            assert time.monotonic() < deadline, screen()
            time.sleep(0.05)
        shown = [line for line in screen().splitlines() if line.strip()]
        assert shown[shown.index("name? zoe") + 1:] == [
            "hello zoe", "on-a-terminal"] + shown[shown.index("name? zoe") + 3:]
        assert "exit=0" in shown
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
