"""Saved output (`bflow log`): the latest run of each task, whether it printed or not, and
output written late by a command's leftover background process stays with that command's
task."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from conftest import Project, bflow_env


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


FOREACH = """
[tasks.cc]
description = "compile"
foreach = "src/*.c"
cmd = "echo compiling {item}; cp {item} {output}"
outputs = ["build/{stem}.o"]
[tasks.all]
deps = ["cc"]
[tasks.slow]
cmd = "touch started; while [ ! -e release ]; do sleep 0.05; done"
"""


def test_log_takes_an_instance_or_output_path_as_build_does(project: Project) -> None:
    project.flowfile(FOREACH)
    project.write("src/a.c", "a")
    project.write("src/b.c", "b")
    project.write("release", "")
    assert project.bflow().returncode == 0
    assert project.bflow("log", "build/b.o").stdout == "compiling src/b.c\n"
    assert project.bflow("log", "cc:src/a.c").stdout == "compiling src/a.c\n"
    many = project.bflow("log", "cc")
    assert many.returncode == 2
    assert "'cc' stands for 2 instances; name one (see 'bflow list cc:*')" in many.stderr
    group = project.bflow("log", "all")
    assert group.returncode == 2 and "name one of the tasks it needs: cc:src/a.c" in group.stderr


def test_log_says_when_a_build_is_in_progress(project: Project) -> None:
    project.flowfile(FOREACH)
    project.write("src/a.c", "a")
    project.write("release", "")
    assert project.bflow().returncode == 0
    (project.root / "release").unlink()
    (project.root / "started").unlink()
    project.write("src/a.c", "changed")
    build = subprocess.Popen([sys.executable, "-m", "buildflow", "-j1", "slow", "cc"],
                             cwd=project.root, env=bflow_env(), stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (project.root / "started").exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        result = project.bflow("log", "cc")
        assert result.returncode == 0 and result.stdout == "compiling src/a.c\n"
        assert result.stderr == (f"bflow: a build of this project is in progress (pid "
                                 f"{build.pid}); this is the output of the last finished run "
                                 "of 'cc:src/a.c'\n")
    finally:
        project.write("release", "")
        assert build.wait(timeout=30) == 0
    assert project.bflow("log", "cc").stderr == ""


def test_a_long_output_is_printed_from_its_first_whole_line_in_the_last_megabyte(
        project: Project) -> None:
    # the cut fell inside a line, and the block began with the end of it ("| 204")
    project.flowfile('[tasks.loud]\ncmd = "seq 100000 300000; exit 1"\n')
    result = project.bflow()
    assert result.returncode == 1
    block = result.stdout.split("  | ... (first ", 1)[1]
    left_out = int(block.split(" ", 1)[0])
    first, last = block.splitlines()[1], block.splitlines()[-2]
    assert first.startswith("  | ") and last == "  | 300000"
    whole = b"".join(b"%d\n" % n for n in range(100000, 300001))
    assert whole[left_out:].startswith(first[4:].encode() + b"\n")
    assert whole[left_out - 1:left_out] == b"\n"  # the line before it was left out whole
    assert len(whole) - left_out <= 1 << 20


def test_a_directory_where_a_log_belongs_is_named_as_such(project: Project) -> None:
    """`bflow log b` was an internal error (exit 3); a build failed the task naming its
    scratch file and asking to free disk space."""
    project.flowfile('[tasks.b]\ncmd = "echo b >> runs.log; echo said"\n')
    assert project.build() == ["b"]
    (log,) = (project.root / ".bflow" / "logs").glob("b-*.log")
    log.unlink()
    log.mkdir()
    result = project.bflow("log", "b")
    assert result.returncode == 2
    assert f"{log}: a directory where the saved output of task 'b' belongs; remove it" \
        in result.stderr
    result = project.bflow("--plain", "-B")
    assert result.returncode == 1
    assert f"{log}: cannot write the output log of task 'b': Is a directory; remove the " \
           "directory there" in result.stderr
