"""Saved output (`bflow log`): the latest run of each task, whether it printed or not, and
output written late by a command's leftover background process stays with that command's
task."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import Project


def _logs(project: Project) -> list[Path]:
    logs = project.root / ".bflow" / "logs"
    return sorted(logs.iterdir()) if logs.exists() else []


def test_a_silent_run_leaves_no_file_and_replaces_older_output(project: Project) -> None:
    project.flowfile("""
        [tasks.talk]
        cmd = "{SAY} echo talk >> runs.log"

        [tasks.quiet]
        cmd = "echo quiet >> runs.log"

        [vars]
        SAY = "echo loud-output;"
    """)
    assert project.bflow("-j1").returncode == 0
    assert project.runs() == ["talk", "quiet"]
    assert [p.read_text() for p in _logs(project)] == ["loud-output\n"]  # no scratch file left
    assert project.bflow("log", "talk").stdout == "loud-output\n"
    quiet = project.bflow("log", "quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")

    assert project.bflow("-j1", "SAY=").returncode == 0  # talk runs again, printing nothing
    assert project.runs() == ["talk", "quiet", "talk", "quiet"]  # quiet has no files: it always runs
    talk = project.bflow("log", "talk")
    assert (talk.returncode, talk.stdout) == (0, "")
    assert _logs(project) == []


def test_a_silent_failure_keeps_a_log(project: Project) -> None:
    project.flowfile("""
        [tasks.fail]
        cmd = "echo fail >> runs.log; exit 3"
    """)
    assert project.bflow().returncode == 1
    assert project.runs() == ["fail"]
    result = project.bflow("log", "fail")
    assert (result.returncode, result.stdout) == (0, "")
    assert len(_logs(project)) == 1


def test_late_output_of_a_background_process_stays_with_its_task(project: Project) -> None:
    # `first` leaves a subshell behind that prints after `first` ended and `second` (run on
    # the same worker, -j1) has started; the late line belongs to `first` alone.
    project.flowfile("""
        [tasks.first]
        cmd = "echo first >> runs.log; (while [ ! -e go ]; do sleep 0.05; done; echo late-line; touch printed) &"

        [tasks.second]
        cmd = "echo second >> runs.log; touch go; while [ ! -e printed ]; do sleep 0.05; done"
        deps = ["first"]
    """)
    assert project.bflow("-j1").returncode == 0
    assert project.runs() == ["first", "second"]
    deadline = time.monotonic() + 30
    while "late-line" not in project.bflow("log", "first").stdout:
        assert time.monotonic() < deadline, "the late line never reached first's log"
        time.sleep(0.05)
    assert project.bflow("log", "second").stdout == ""
