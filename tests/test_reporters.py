"""What users and machines see: plain lines without escape codes, JSON Lines per the contract,
-q and -v, dry-run summaries, and rich imported only for the live display."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys

import pytest

from buildflow import reporters
from conftest import Project, bflow_env, terminal_env
from test_interrupts import read_all

FLOW = """
[tasks.good]
cmd = "echo good-output"
[tasks.flaky]
cmd = "echo try >> tries.log; test $(wc -l < tries.log) -ge 2"
retries = 1
retry_delay = 0.01
[tasks.bad]
cmd = "echo bad-output; exit 5"
deps = ["good"]
[tasks.after]
cmd = "echo after"
deps = ["bad"]
"""

RICH_PROBE = ("import sys; from buildflow.cli import main; rc = main(sys.argv[1:]); "
              "sys.stderr.write(f'RICH={any(m.split(\".\")[0] == \"rich\" for m in sys.modules)}')")


def test_plain_in_a_pipe_has_no_escape_codes(project: Project) -> None:
    project.flowfile(FLOW)
    run = project.bflow("-k", "-v", env={"NO_COLOR": "", "TERM": "xterm-256color"})
    assert run.returncode == 1
    assert "\x1b" not in run.stdout + run.stderr
    assert "run    good: echo good-output" in run.stdout  # -v prints each command
    assert "retry  flaky: exit 1; attempt 2 of 2" in run.stdout
    assert "FAILED bad: exit 5 (1 attempt, " in run.stdout
    assert "  $ echo bad-output; exit 5\n  | bad-output\n" in run.stdout
    assert "skip   after (dependency failed: bad)" in run.stdout
    assert run.stdout.splitlines()[-1].startswith(
        "bflow: 2 ran, 0 up to date, 1 failed, 1 skipped in ")


def test_the_counter_counts_the_tasks_that_run(project: Project) -> None:
    project.flowfile("""
        [tasks.a]
        cmd = "echo a > {output}"
        outputs = ["a.txt"]
        [tasks.b]
        cmd = "echo b > {output}"
        outputs = ["b.txt"]
        [tasks.c]
        cmd = "echo {C} > {output}"
        outputs = ["c.txt"]
        [vars]
        C = "c"
        """)
    first = project.bflow("--plain", "-j1").stdout.splitlines()
    assert [line.split(" (")[0] for line in first if line.startswith("ok")] == [
        "ok     a [1/3]", "ok     b [2/3]", "ok     c [3/3]"]
    again = project.bflow("--plain", "-j1", "C=d").stdout.splitlines()
    assert [line.split(" (")[0] for line in again if line.startswith("ok")] == [
        "ok     c [1/1]"]


def test_the_counter_leaves_out_a_task_that_failed_before_it_ran(project: Project) -> None:
    """SPEC §4: `[k/N]` counts the tasks that run; one that fails before its command starts
    (a declared input missing) never runs, as one skipped never does."""
    project.flowfile("""
        [tasks.gen]
        cmd = "echo g > {output}"
        outputs = ["g.txt"]
        when = { exists = "flag" }
        [tasks.use]
        cmd = "cat g.txt > {output}"
        inputs = ["g.txt"]
        outputs = ["u.txt"]
        [tasks.other]
        cmd = "echo o > {output}"
        outputs = ["o.txt"]
        """)
    run = project.bflow("--plain", "-j1", "-k")
    assert run.returncode == 1
    assert "FAILED use: input g.txt is missing" in run.stdout
    assert [line.split(" (")[0] for line in run.stdout.splitlines()
            if line.startswith("ok")] == ["ok     other [1/1]"]


def test_a_timed_out_failure_reads_well(project: Project) -> None:
    project.flowfile("""
        [tasks.slow]
        cmd = "sleep 5"
        timeout = 0.3
        retries = 1
        retry_delay = 0
        """)
    run = project.bflow("--plain")
    assert run.returncode == 1
    assert "FAILED slow: timed out after 0.3s (2 attempts, " in run.stdout


def test_quiet_prints_only_failures_and_summary(project: Project) -> None:
    project.flowfile(FLOW)
    run = project.bflow("-q", "-k")
    lines = run.stdout.splitlines()
    assert lines[0].startswith("FAILED bad: exit 5")
    assert "good-output" not in run.stdout and "retry" not in run.stdout
    assert lines[-1].startswith("bflow: 2 ran")


def test_json_lines_follow_the_contract(project: Project) -> None:
    project.flowfile(FLOW)
    run = project.bflow("--json", "-k", "-j1")
    events = [json.loads(line) for line in run.stdout.splitlines()]
    kinds = [(e["event"], e.get("task")) for e in events]
    assert kinds == [("task_started", "good"), ("task_finished", "good"),
                     ("task_started", "flaky"), ("task_retry", "flaky"),
                     ("task_finished", "flaky"), ("task_started", "bad"),
                     ("task_failed", "bad"), ("task_skipped", "after"),
                     ("build_finished", None)]
    failed = events[6]
    assert failed["attempts"] == 1 and failed["duration"] >= 0
    assert failed["output"] == "bad-output\n" and failed["reason"] == "exit 5"
    assert events[4]["attempts"] == 2
    assert {k: events[-1][k] for k in ("ran", "up_to_date", "failed", "skipped",
                                       "exit_status")} == {
        "ran": 2, "up_to_date": 0, "failed": 1, "skipped": 1, "exit_status": 1}


def test_dry_run_says_would_run(project: Project) -> None:
    project.flowfile("""
        [tasks.one]
        cmd = "echo one >> runs.log"
        [tasks.two]
        cmd = "echo two >> runs.log"
    """)
    plain = project.bflow("-n")
    assert plain.stdout.splitlines()[-1] == "bflow: 2 would run, 0 up to date (dry run)"
    events = [json.loads(line) for line in project.bflow("-n", "--json").stdout.splitlines()]
    assert [e.get("would_run") for e in events[:2]] == [True, True]
    assert events[0]["reason"].startswith("would run: ")
    assert project.runs() == []


def test_a_dry_run_with_nothing_to_do_says_it_is_one(project: Project) -> None:
    # it printed a build's line, "0 ran, 1 up to date in 0.00s": a script could not tell
    project.flowfile('[tasks.one]\ncmd = "echo one >> runs.log; echo > one.txt"\n'
                     'outputs = ["one.txt"]\n')
    assert project.build() == ["one"]
    for options in (["-n"], ["-n", "-v"], ["-n", "-q"]):
        result = project.bflow(*options)
        assert result.stdout.splitlines()[-1] == "bflow: 0 would run, 1 up to date (dry run)"
    assert project.runs() == ["one"]


@pytest.mark.parametrize("args", [["--plain"], ["--json"], []])
def test_rich_is_not_imported_without_a_terminal(project: Project, args: list[str]) -> None:
    project.flowfile("[tasks.a]\ncmd = 'true'\n")
    run = subprocess.run([sys.executable, "-c", RICH_PROBE, *args], cwd=project.root,
                         env=bflow_env({"NO_COLOR": "", "TERM": "xterm"}), capture_output=True,
                         text=True, timeout=60)
    assert run.stderr.endswith("RICH=False")


def on_terminal(project: Project, *args: str, probe: bool = False,
                env: dict[str, str] | None = None) -> bytes:
    leader, follower = pty.openpty()
    env = terminal_env(100, 30, **(env or {}))
    argv = ["-c", RICH_PROBE] if probe else ["-m", "buildflow"]
    process = subprocess.Popen([sys.executable, *argv, *args], cwd=project.root, env=env,
                               stdin=follower, stdout=follower, stderr=follower)
    screen = read_all(leader, process, follower)
    os.close(leader)
    return screen


def test_terminal_gets_the_live_display(project: Project) -> None:
    project.flowfile(FLOW)
    screen = on_terminal(project, "-k", probe=True)
    assert screen.endswith(b"RICH=True")
    text = screen.decode()
    assert "✓ good" in text and "FAILED bad: exit 5" in text
    assert "retry  flaky" in text
    assert "bflow: 2 ran, 0 up to date, 1 failed, 1 skipped in " in text
    assert text.rindex("\x1b[?25h") > text.rindex("\x1b[?25l")


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_a_ci_runner_s_terminal_gets_plain_lines(project: Project, ci: str) -> None:
    """The spec's plain cases begin with CI: a runner that gives jobs a pseudo-terminal
    (as some do, for tools that colour only there) keeps a log, not a live display."""
    project.flowfile(FLOW)
    screen = on_terminal(project, "-k", probe=True, env={"CI": ci})
    assert screen.endswith(b"RICH=False") and b"\x1b" not in screen
    assert b"bflow: 2 ran, 0 up to date, 1 failed, 1 skipped in " in screen


def test_ci_set_to_false_keeps_the_live_display(project: Project) -> None:
    project.flowfile("[tasks.one]\ncmd = 'true'\n")
    assert on_terminal(project, probe=True, env={"CI": "false"}).endswith(b"RICH=True")


def test_terminal_dry_run_says_would_run(project: Project) -> None:
    project.flowfile("[tasks.one]\ncmd = 'true'\n")
    assert "1 would run, 0 up to date (dry run)" in on_terminal(project, "-n").decode()


def test_plain_lines_hold_no_escape_codes_of_a_task_s_colours(project: Project) -> None:
    # a compiler's colours went through to CI logs and pipes, which SPEC §3 keeps free of them
    project.flowfile(r'''
        [tasks.a]
        cmd = "printf '\\033[1;31merror\\033[0m: bad\\n\\033]8;;http://x\\033\\\\link\\033]8;;\\033\\\\\\n'"
        ''')
    for options in (["--plain"], ["--plain", "--stream"]):
        result = project.bflow(*options, "-B")
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout
        assert "error: bad" in result.stdout and "link" in result.stdout
    assert "\x1b[1;31merror" in project.bflow("log", "a").stdout  # the log keeps them


@pytest.mark.parametrize("sequence", ["\x1b(B", "\x1b7", "\x1b8", "\x1bc", "\x1b=",
                                      "\x1b)0", "\x1bP1$r0m\x1b\\", "\x1b_app\x1b\\"])
def test_plain_lines_hold_no_other_escape_sequence(project: Project, sequence: str) -> None:
    """`tput sgr0` prints `ESC ( B`; saving the cursor, a reset, a keypad mode and the
    strings went through as they were."""
    project.write("out.txt", f"a{sequence}b\n")
    project.flowfile('[tasks.a]\ncmd = "cat out.txt"\n')
    for options in (["--plain"], ["--plain", "--stream"]):
        result = project.bflow(*options)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "ab" in result.stdout


@pytest.mark.parametrize("status", [0, 1])
def test_a_line_rewritten_by_carriage_returns_prints_as_it_ends(project: Project,
                                                                status: int) -> None:
    """A progress bar's returns went raw into CI logs (a line printed over its `  | `) and
    were dropped on a terminal (`10%50%100%`); `--json` and the log keep them."""
    output = "10%\r50%\r100%\nwindows line\r\nno newline\r"
    project.write("bar.txt", output)
    project.flowfile(f'[tasks.a]\ncmd = "cat bar.txt; exit {status}"\n')
    shown = "  | 100%\n  | windows line\n  | no newline\n"
    for options in (["--plain"], ["--plain", "-q"]):
        result = project.bflow(*options, "-B")
        assert result.returncode == status, result.stderr
        if status or "-q" not in options:
            assert shown in result.stdout and "\r" not in result.stdout, result.stdout
    screen = on_terminal(project, "-B").decode()
    assert "100%" in screen and "10%50%" not in screen
    events = [json.loads(line) for line in project.bflow("--json", "-B").stdout.splitlines()]
    assert [e["output"] for e in events if "output" in e] == [output]
    assert project.bflow("log", "a").stdout == output


def test_quiet_and_verbose_call_no_skipped_task_fresh(project: Project) -> None:
    """`-q -v` printed `fresh TASK` for a task skipped below a failure, or by its `when`."""
    project.flowfile("""
        [tasks.bad]
        cmd = "exit 1"
        [tasks.after]
        cmd = "true"
        deps = ["bad"]
        [tasks.never]
        cmd = "true"
        when = { env = "BFLOW_TEST_NEVER" }
        """)
    result = project.bflow("-q", "-v", "-k")
    assert result.returncode == 1
    assert "fresh" not in result.stdout and "FAILED bad" in result.stdout


def test_a_warning_is_one_write_its_newline_included(monkeypatch: pytest.MonkeyPatch) -> None:
    """`print` wrote the message and its newline apart: with stderr unbuffered
    (PYTHONUNBUFFERED), a line of another thread landed between them."""
    writes: list[str] = []

    class Recording(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    monkeypatch.setattr(sys, "stderr", Recording())
    reporter = reporters.choose(json=False, plain=True, quiet=False, verbose=False)
    reporter.warn("remote cache not used")
    reporter.note("waiting for the lock")
    assert writes == ["bflow: warning: remote cache not used\n",
                      "bflow: waiting for the lock\n"]
