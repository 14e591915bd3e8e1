"""Output as it comes: `--stream` and the live display's last line, through the real
`bflow`, and the follower's masking of secrets on a log written by hand."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import OnTerminal, Project, bflow_env

from buildflow.follow import MAX_LINE_BYTES, OutputFollower
from buildflow.model import Task

WAITING = """
[tasks.long]
cmd = "echo first; while [ ! -f go ]; do sleep 0.02; done; echo second; printf unfinished"
"""


def test_stream_prints_each_line_while_its_task_runs(project: Project) -> None:
    project.flowfile(WAITING)
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--stream", "--plain"],
                               cwd=project.root, env=bflow_env(), stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(2)]
    assert lines == ["run    long\n", "long | first\n"]  # the task waits for us: it runs
    (project.root / "go").write_text("")
    rest = process.stdout.read()
    assert process.wait() == 0
    assert rest.splitlines()[:3] == ["long | second", "long | unfinished",
                                     "ok     long [1/1] (" + rest.split("(")[1].split(")")[0]
                                     + ")"]
    assert project.bflow("log", "long").stdout == "first\nsecond\nunfinished"  # as saved


def test_stream_lines_are_whole_and_a_failure_does_not_repeat_them(project: Project) -> None:
    project.flowfile("""
        [tasks.a]
        cmd = "for i in $(seq 400); do printf 'a%s' $i; printf 'z\\\\n'; done"
        [tasks.b]
        cmd = "for i in $(seq 400); do printf 'b%s' $i; printf 'z\\\\n' >&2; done; exit 3"
        """)
    result = project.bflow("--stream", "-j2", "-k")
    assert result.returncode == 1
    streamed = {"a": [], "b": []}
    for line in result.stdout.splitlines():
        found = re.fullmatch(r"([ab]) \| ([ab])(\d+)z", line)
        if found:
            assert found.group(1) == found.group(2)
            streamed[found.group(1)].append(int(found.group(3)))
        else:
            assert line.startswith(("run ", "ok ", "FAILED ", "  $ ", "bflow: ")), line
    assert streamed == {"a": list(range(1, 401)), "b": list(range(1, 401))}
    assert "FAILED b: exit 3 (1 attempt, " in result.stdout


def test_the_live_display_shows_each_running_tasks_last_line(project: Project) -> None:
    project.flowfile(WAITING.replace("echo first", "echo one; echo working-on-it"))
    terminal = OnTerminal(project.root)
    terminal.wait_for(b"working-on-it")
    assert b"second" not in terminal.screen
    (project.root / "go").write_text("")
    assert terminal.finish() == 0
    assert b"1 ran" in terminal.screen



def test_the_live_display_shows_a_last_line_without_its_cursor_moves(project: Project) -> None:
    """A progress bar's `ESC [9A ESC [2K` went into the status line, redrawn eight times a
    second, and moved the cursor over the lines bflow had printed above it."""
    project.write("bar.txt", "\x1b[9A\x1b[2Kprogress 50%\n")
    project.flowfile(WAITING.replace("echo first", "cat bar.txt"))
    terminal = OnTerminal(project.root)
    terminal.wait_for(b"progress 50%")
    first = terminal.screen
    terminal.screen = b""
    terminal.wait_for(b"progress 50%")  # the status line drawn again
    while_running = first + terminal.screen  # the task's block, printed once it ends, keeps them
    (project.root / "go").write_text("")
    assert terminal.finish() == 0
    assert b"\x1b[9A" not in while_running

def _followed(tmp_path: Path, env: tuple[tuple[str, str], ...]) -> tuple[Path, OutputFollower,
                                                                           list[str]]:
    """A log a task writes, followed; the lines handed on."""
    log = tmp_path / "t.log"
    log.write_bytes(b"")
    lines: list[str] = []
    follower = OutputFollower(lambda task, line: lines.append(line))
    follower.follow(Task(name="t", base="t", commands=("true",), env=env), str(log))
    return log, follower, lines


def test_each_line_of_a_secret_of_several_lines_is_masked(tmp_path: Path) -> None:
    log, follower, lines = _followed(tmp_path, (("PRIV_KEY", "line-one-abc\nline-two-def"),))
    log.write_bytes(b"line-one-abc\nline-two-def\nkey: line-two-def!\n")
    follower.end("t")
    assert lines == ["***", "***", "key: ***!"]


def test_a_long_line_is_never_cut_inside_a_secret(tmp_path: Path) -> None:
    log, follower, lines = _followed(tmp_path, (("API_TOKEN", "s3cretVALUE"),))
    with open(log, "ab") as out:
        out.write(b"A" * (MAX_LINE_BYTES - 2) + b"s3cr")  # the secret's start, not yet its end
        out.flush()
        follower.poll()
        out.write(b"etVALUE and more\n")
    follower.end("t")
    assert "".join(lines) == "A" * (MAX_LINE_BYTES - 2) + "*** and more"
    assert all("s3cr" not in line and "etVALUE" not in line for line in lines)
