"""Errors at the top: every expected error is one message and an exit code; a bug is a short
message naming where its traceback was written, exit 3, and a traceback only with -v."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project, bflow_env
from test_faults import build_in_background

# Runs bflow with one function replaced by one that fails the way a bug would.
INJECT = """
import sys
import buildflow.commands.validate, buildflow.attempts, tempfile

where = sys.argv.pop(1)

def bug(*args, **kwargs):
    raise RuntimeError("injected bug")

if where == "main":
    buildflow.commands.validate.run = bug
elif where == "worker":
    buildflow.attempts.Attempts.execute = bug
elif where == "crash-file":
    buildflow.commands.validate.run = bug
    tempfile.mkstemp = lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left"))
from buildflow.cli import main
raise SystemExit(main())
"""

HELLO = """
[tasks.hello]
cmd = "echo hello > {output}"
outputs = ["hello.txt"]
"""


def run_injected(project: Project, where: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = project.write("inject.py", INJECT)
    return subprocess.run([sys.executable, str(script), where, *args], cwd=project.root,
                          env=bflow_env({"TMPDIR": str(project.root)}), capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("where,command", [("main", "validate"), ("worker", "build")])
def test_a_bug_is_reported_briefly_with_its_traceback_saved(project: Project, where: str,
                                                            command: str) -> None:
    project.flowfile(HELLO)
    result = run_injected(project, where, command)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "internal error (a bug in bflow): RuntimeError: injected bug" in result.stderr
    saved = re.search(r"traceback was written to (\S+);", result.stderr)
    assert saved, result.stderr
    path = Path(saved.group(1))
    assert path.parent == project.root
    assert "Traceback" in path.read_text() and "injected bug" in path.read_text()
    assert len(result.stderr.splitlines()) == 2


def test_verbose_shows_the_traceback(project: Project) -> None:
    project.flowfile(HELLO)
    result = run_injected(project, "main", "validate", "-v")
    assert result.returncode == 3
    assert "Traceback (most recent call last)" in result.stderr
    assert "internal error (a bug in bflow)" in result.stderr


def test_a_bug_when_the_traceback_cannot_be_saved(project: Project) -> None:
    project.flowfile(HELLO)
    result = run_injected(project, "crash-file", "validate")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "internal error (a bug in bflow): RuntimeError: injected bug" in result.stderr
    assert "-v" in result.stderr  # says how to see it instead


@pytest.mark.parametrize("args,code,message", [
    (["build", "helo"], 2, "did you mean 'hello'"),
    (["explain", "nothing-here"], 2, "nothing-here"),
    (["log", "hello"], 2, "has no saved output yet"),
    (["-f", "missing.toml", "validate"], 2, "missing.toml: no such Flowfile"),
    (["-C", "no/such/dir", "build"], 2, "-C no/such/dir"),
    (["build", "-j", "0"], 2, "expected at least 1"),
    (["build", "1x=2"], 2, "a var override is NAME=VALUE"),
    (["frobnicate-option", "--no-such-flag"], 2, "unrecognized arguments"),
])
def test_expected_errors_are_one_message_and_a_code(project: Project, args: list[str],
                                                    code: int, message: str) -> None:
    project.flowfile(HELLO)
    result = project.bflow(*args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_no_flowfile_says_how_to_start(tmp_path: Path) -> None:
    result = Project(tmp_path).bflow("build")
    assert result.returncode == 2 and "bflow init" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [[], ["validate"], ["status"], ["-C", "{root}", "list"]])
def test_a_removed_working_directory_is_a_message(project: Project, args: list[str]) -> None:
    """A shell left standing in a directory that was removed (a branch switch, an `rm -rf`)."""
    project.flowfile(HELLO)
    gone = project.root / "gone"
    gone.mkdir()
    argv = [arg.format(root=project.root) for arg in args]
    result = subprocess.run(
        ["sh", "-c", 'cd gone && rmdir ../gone && exec "$@"', "sh",
         sys.executable, "-m", "buildflow", *argv],
        cwd=project.root, env=bflow_env({"TMPDIR": str(project.root)}),
        capture_output=True, text=True, timeout=60)
    if "-C" in argv:  # with -C naming the project, where the shell stands does not matter
        assert (result.returncode, result.stdout) == (0, "hello\n"), result.stderr
    else:
        assert result.returncode == 2, result.stderr
        assert "the current directory no longer exists" in result.stderr
        assert "internal error" not in result.stderr
    assert not list(project.root.glob("bflow-crash-*"))


def test_lock_timeout_is_a_message(project: Project) -> None:
    import fcntl

    project.flowfile(HELLO)
    (project.root / ".bflow").mkdir()
    with open(project.root / ".bflow" / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = project.bflow("build", "--lock-timeout", "0.2")
    assert result.returncode == 1
    assert "--lock-timeout" in result.stderr and "Traceback" not in result.stderr
    assert not (project.root / "hello.txt").exists()


def test_interrupt_exits_130_without_a_traceback(project: Project) -> None:
    project.flowfile("""
    [tasks.wait]
    cmd = "echo started >> runs.log && sleep 30"
    """)
    process = build_in_background(project, until_runs=["started"])
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert "wait:" in project.bflow("status").stdout  # not recorded as done


def test_broken_pipe_is_quiet(project: Project) -> None:
    project.flowfile("\n".join(f'[tasks.t{i}]\ncmd = "true"\n' for i in range(50)))
    shell = subprocess.run(f"{sys.executable} -m buildflow --json | head -1", shell=True,
                           cwd=project.root, env=bflow_env(), capture_output=True, text=True,
                           timeout=60)
    assert shell.stdout.startswith('{"event": "task_started"')
    assert "Traceback" not in shell.stderr and "internal error" not in shell.stderr


def test_a_closed_stdout_keeps_every_record_and_starts_nothing_new(project: Project) -> None:
    project.flowfile("""
        [tasks.one]
        cmd = "{WAIT}; echo one >> runs.log; echo 1 > {output}"
        outputs = ["one.txt"]
        [tasks.two]
        cmd = "{WAIT}; sleep 0.5; echo two >> runs.log; echo 2 > {output}"
        outputs = ["two.txt"]
        [tasks.three]
        cmd = "echo three >> runs.log; echo 3 > {output}"
        outputs = ["three.txt"]
        deps = ["one"]
        [vars]
        WAIT = "while [ ! -e closed ]; do sleep 0.02; done"
        """)
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--json", "-j2"],
                               cwd=project.root, env=bflow_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    # one and two start together, in either order: each worker looks its task up in the
    # output cache before it says the task started. Both must have said so before stdout
    # closes: a task whose start cannot be written is not started.
    started = [json.loads(process.stdout.readline()) for _ in range(2)]
    assert [event["event"] for event in started] == ["task_started"] * 2
    assert sorted(event["task"] for event in started) == ["one", "two"]
    process.stdout.close()  # as `bflow --json | head -2` does
    project.write("closed", "")
    assert process.wait(timeout=30) == 1
    assert process.stderr.read() == ""
    assert sorted(project.runs()) == ["one", "two"]  # two was running: it finished
    status = project.bflow("status")
    assert status.stdout == "three: no successful run recorded\n"
    logs = project.root / ".bflow" / "logs"
    assert not logs.exists() or list(logs.iterdir()) == []


def test_a_hint_for_a_missing_input_needs_a_near_file_name() -> None:
    from buildflow.errors import did_you_mean_path

    assert did_you_mean_path("food.txt", ["a.txt", "out/b.txt"]) == ""  # only `.txt` in common
    assert did_you_mean_path("gen/versoin.h", ["a.h", "gen/version.h"]) == \
        " (did you mean 'gen/version.h'?)"
    assert did_you_mean_path("src/Mian.c", ["src/main.c"]) == " (did you mean 'src/main.c'?)"


def test_an_output_whose_directory_cannot_be_made_fails_its_task_only(
        project: Project) -> None:
    # a file where its directory would be: making the directory raised, an internal error
    project.write("a.txt", "file\n")
    project.flowfile("""
        [tasks.g]
        cmd = "echo g > a.txt/x"
        outputs = ["a.txt/x"]
        [tasks.h]
        cmd = "echo h >> runs.log"
        """)
    result = project.bflow("-k")
    assert result.returncode == 1, result.stderr
    assert "FAILED g: exit 2" in result.stdout
    assert project.runs() == ["h"]
    assert project.read("a.txt") == "file\n"


def test_an_output_that_cannot_be_read_fails_its_task_only(project: Project) -> None:
    # as an unreadable input does: bflow stopped the whole build, -k or not
    project.flowfile("""
        [tasks.g]
        cmd = "echo g > out.txt"
        outputs = ["out.txt"]
        [tasks.i]
        cmd = "echo i >> runs.log"
        inputs = ["Flowfile"]
        """)
    assert project.build() == ["i"]
    (project.root / "out.txt").unlink()
    os.mkfifo(project.root / "out.txt")
    with open(project.root / "Flowfile", "a") as flowfile:
        flowfile.write("# edited\n")
    result = project.bflow("-k")
    assert result.returncode == 1, result.stderr
    assert "FAILED g: out.txt: cannot read the file to hash it: not a regular file" in \
        result.stdout
    assert project.runs() == ["i", "i"]
