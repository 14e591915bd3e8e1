"""`bflow build` end to end: real commands, runs counted through a log the commands append to."""

from __future__ import annotations

import collections
import json
import os
import time
from typing import Any

import pytest

from buildflow.cli import main

from conftest import CHANGED_BACK, Project, settle

CHAIN = """
[tasks.gen]
cmd = "echo gen >> runs.log && cat {input} > {output}"
inputs = ["src.txt"]
outputs = ["build/gen.txt"]

[tasks.upper]
cmd = "echo upper >> runs.log && tr a-z A-Z < {input} > {output}"
inputs = ["build/gen.txt"]
outputs = ["build/upper.txt"]
"""


def test_second_build_runs_nothing(project: Project) -> None:
    project.flowfile(CHAIN)
    project.write("src.txt", "hello\n")
    assert project.bflow().returncode == 0
    assert project.runs() == ["gen", "upper"]
    assert project.read("build/upper.txt") == "HELLO\n"
    assert project.bflow().returncode == 0
    assert project.runs() == ["gen", "upper"]


def test_touch_without_change_runs_nothing(project: Project) -> None:
    project.flowfile(CHAIN)
    source = project.write("src.txt", "hello\n")
    project.bflow()
    source.write_text("hello\n")
    assert project.bflow().returncode == 0
    assert project.runs() == ["gen", "upper"]


def test_identical_output_stops_propagation(project: Project) -> None:
    project.flowfile(CHAIN.replace("cat {input} > {output}", "head -c 3 {input} > {output}"))
    source = project.write("src.txt", "hello\n")
    project.bflow()
    source.write_text("help!\n")  # same first three bytes: gen reruns, upper is cut off
    project.bflow()
    assert project.runs() == ["gen", "upper", "gen"]


def test_an_output_written_with_the_size_and_mtime_it_had_is_read_again(project: Project) -> None:
    """A command that dates its output (`touch -d`, a fixed SOURCE_DATE_EPOCH) rewrites it
    with the same size and mtime, and the file system may give it the same inode: the stat
    entry then vouched for the old content, `upper` never ran again, and `status` said all
    was up to date."""
    project.flowfile(CHAIN.replace("cat {input} > {output}",
                                   "cat {input} > {output} && touch -d @946684800 {output}"))
    source = project.write("src.txt", "1.0.1\n")
    assert project.build() == ["gen", "upper"]
    dated = source.stat().st_mtime_ns + 1_000_000_000  # an edit a second later, same size
    source.write_text("1.0.2\n")
    os.utime(source, ns=(dated, dated))
    assert project.build() == ["gen", "upper"]
    assert project.read("build/upper.txt") == "1.0.2\n"
    assert project.build() == []

def test_always_make_reruns_everything_once(project: Project) -> None:
    project.flowfile(CHAIN)
    project.write("src.txt", "hello\n")
    project.bflow()
    assert project.bflow("-B").returncode == 0
    project.bflow()
    assert project.runs() == ["gen", "upper", "gen", "upper"]


def test_dry_run_names_what_would_run_and_writes_nothing(project: Project) -> None:
    project.flowfile(CHAIN)
    project.write("src.txt", "hello\n")
    result = project.bflow("-n")
    assert result.returncode == 0
    assert "would run gen" in result.stdout and "would run upper" in result.stdout
    assert sorted(p.name for p in project.root.iterdir()) == ["Flowfile", "src.txt"]
    project.bflow()
    project.write("src.txt", "changed\n")
    result = project.bflow("build", "-n")
    assert "would run gen: input src.txt changed" in result.stdout
    assert project.read("build/upper.txt") == "HELLO\n"
    assert project.runs() == ["gen", "upper"]


def test_dry_run_prints_the_expanded_commands_under_each_task(project: Project) -> None:
    project.flowfile("""
        [vars]
        WORD = "hi"
        TOKEN = "tok-1234"
        [tasks.say]
        cmd = ["echo {WORD} > {output}", "login --token {TOKEN} >> {output}"]
        outputs = ["build/said.txt"]
        env = { API_TOKEN = "{TOKEN}" }
        """)
    result = project.bflow("-n", "WORD=bye")
    assert result.returncode == 0
    assert result.stdout.splitlines()[:3] == [
        "would run say: no successful run recorded",
        "  $ echo bye > build/said.txt",
        "  $ login --token *** >> build/said.txt"]
    events = [json.loads(line) for line in project.bflow("-n", "--json").stdout.splitlines()]
    assert events[0]["commands"] == ["echo hi > build/said.txt",
                                     "login --token *** >> build/said.txt"]
    assert not (project.root / "build").exists()


def test_missing_declared_output_fails_and_stays_stale(project: Project) -> None:
    project.flowfile("""
        [tasks.liar]
        cmd = "echo liar >> runs.log"
        outputs = ["build/never.txt"]
    """)
    result = project.bflow()
    assert result.returncode == 1
    assert "did not write declared output build/never.txt" in result.stdout + result.stderr
    assert (project.root / "build").is_dir()  # parent directories are made before the run
    assert project.bflow().returncode == 1
    assert project.runs() == ["liar", "liar"]


def test_failed_build_resumes_without_rerunning_what_succeeded(project: Project) -> None:
    project.flowfile(CHAIN + """
        [tasks.check]
        cmd = "echo check >> runs.log && grep -q HELLO {input}"
        inputs = ["build/upper.txt"]
    """)
    project.write("src.txt", "bye\n")
    assert project.bflow().returncode == 1
    assert project.bflow().returncode == 1
    assert project.runs() == ["gen", "upper", "check", "check"]
    project.write("src.txt", "hello\n")
    assert project.bflow().returncode == 0
    assert project.bflow().returncode == 0
    assert project.runs()[4:] == ["gen", "upper", "check"]


def test_check_task_without_outputs_reruns_only_on_input_change(project: Project) -> None:
    project.flowfile("""
        [tasks.lint]
        cmd = "echo lint >> runs.log"
        inputs = ["src.txt"]

        [tasks.ping]
        cmd = "echo ping >> runs.log"
    """)
    project.write("src.txt", "a\n")
    project.bflow("-j1")
    project.bflow("-j1")
    project.write("src.txt", "b\n")
    project.bflow("-j1")
    assert project.runs() == ["lint", "ping", "ping", "lint", "ping"]


def test_var_override_changes_the_action(project: Project) -> None:
    project.flowfile("""
        [vars]
        WORD = "one"

        [tasks.say]
        cmd = "echo {WORD} >> runs.log && echo {WORD} > {output}"
        outputs = ["out.txt"]
    """)
    project.bflow()
    project.bflow("WORD=two")
    project.bflow("build", "say", "WORD=two")
    assert project.runs() == ["one", "two"]
    assert project.read("out.txt") == "two\n"


def test_log_prints_the_last_run_output(project: Project) -> None:
    project.flowfile("""
        [tasks.talk]
        cmd = "echo said $RANDOM-ignored; echo talk >> runs.log; echo to-stderr >&2"
    """)
    project.bflow()
    result = project.bflow("log", "talk")
    assert result.returncode == 0
    assert "said" in result.stdout and "to-stderr" in result.stdout
    logs = list((project.root / ".bflow" / "logs").iterdir())
    assert len(logs) == 1 and "to-stderr" in logs[0].read_text()
    assert project.bflow("log", "tlak").returncode == 2


def _compile_with_depfile(project: Project) -> None:
    """A task whose depfile names a header it reads but does not declare."""
    project.flowfile("""
        [tasks.cc]
        cmd = "echo cc >> runs.log && cat {input} inc.h > {output} && echo 'out.txt: {input} inc.h' > {depfile}"
        inputs = ["main.c"]
        outputs = ["out.txt"]
        depfile = "deps/out.d"
    """)
    project.write("main.c", "main\n")
    project.write("inc.h", "v1\n")


def test_depfile_inputs_rebuild_and_a_missing_depfile_names_nothing(project: Project) -> None:
    _compile_with_depfile(project)
    project.bflow()
    project.bflow()
    project.write_before_the_run("inc.h", "v2\n")
    project.bflow()
    assert project.read("out.txt") == "main\nv2\n"
    (project.root / "deps/out.d").unlink()
    project.bflow()
    assert project.runs() == ["cc", "cc"]


def test_a_depfile_input_from_the_future_is_named_in_a_warning(project: Project) -> None:
    _compile_with_depfile(project)
    future = time.time_ns() + 3600 * 10**9
    os.utime(project.root / "inc.h", ns=(future, future))
    first = project.bflow()
    assert first.returncode == 0
    assert "inc.h: modified 3" in first.stderr and "s in the future" in first.stderr
    assert "task 'cc'" in first.stderr and "touch inc.h" in first.stderr
    assert project.bflow().returncode == 0
    assert project.runs() == ["cc", "cc"]  # as the warning says: every build


HEADERS = 30


@pytest.mark.parametrize("way", ["fast path", "full way"])
def test_a_rerun_stats_each_depfile_input_once_before_its_command_and_once_after(
        project: Project, monkeypatch: pytest.MonkeyPatch, way: str) -> None:
    # the decision, the stats taken as the task started, and the hash taken after the run
    # each statted every header again: three to five stats of each, 20,000 headers a build
    project.flowfile("""
        [tasks.cc]
        cmd = "echo cc >> runs.log && printf 'out.o: ' > {depfile} && cat {input} >> {depfile} && echo o > {output}"
        inputs = ["names.txt"]
        outputs = ["out.o"]
        depfile = "out.o.d"
    """)
    headers = [f"inc/h{i}.h" for i in range(HEADERS)]
    for header in headers:
        project.write(header, f"{header}\n")
    project.write("names.txt", " ".join(headers))
    settle(*(project.root / header for header in headers))
    assert project.build() == ["cc"]
    assert project.build() == []  # leaves the proof
    edited = project.write("inc/h7.h", "edited\n")
    settle(edited)
    if way == "full way":
        for proof in (project.root / ".bflow").glob("uptodate*"):
            proof.unlink()
    statted: collections.Counter[str] = collections.Counter()
    real_stat = os.stat

    def stat(path: str, *args: Any, **kwargs: Any) -> os.stat_result:
        statted[os.path.relpath(path, project.root)] += 1
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.chdir(project.root)
    assert main(["--plain", "-q"]) == 0
    monkeypatch.undo()
    assert project.runs() == ["cc", "cc"]
    assert {header: statted[header] for header in headers} == dict.fromkeys(headers, 2)


def test_input_edited_while_its_task_runs_stays_stale(project: Project) -> None:
    project.flowfile("""
        [tasks.slow]
        cmd = "echo slow >> runs.log && cp {input} {output} && echo late >> {input}"
        inputs = ["src.txt"]
        outputs = ["out.txt"]
    """)
    project.write("src.txt", "early\n")
    project.bflow()
    assert project.read("src.txt") == "early\nlate\n"
    project.bflow()
    assert project.runs() == ["slow", "slow"]
    project.flowfile("""
        [tasks.slow]
        cmd = "echo slow >> runs.log && cp {input} {output} && echo more >> {input}"
        inputs = ["src.txt"]
        outputs = ["out.txt"]
    """)
    project.bflow()
    project.bflow()
    assert project.runs() == ["slow", "slow", "slow", "slow"]


def test_an_input_edited_and_changed_back_while_its_task_runs_stays_stale(
        project: Project) -> None:
    # As `git stash` and `git stash pop` during a build: the command read another content,
    # and the input's hash now equals the one taken before it started.
    project.flowfile(CHANGED_BACK)
    project.write("src.txt", "one\n")
    assert project.build() == ["slow"]
    assert project.read("src.txt") == "one\n" and project.read("out.txt") == "other\n"
    assert "slow: input src.txt changed" in project.bflow("status").stdout
    assert project.build() == ["slow"]


def test_output_path_target_and_unknown_target(project: Project) -> None:
    project.flowfile(CHAIN)
    project.write("src.txt", "hello\n")
    assert project.bflow("build/gen.txt").returncode == 0
    assert project.runs() == ["gen"]
    result = project.bflow("build", "uper")
    assert result.returncode == 2 and "did you mean 'upper'" in result.stderr


def test_a_check_whose_glob_matches_no_file_yet_runs_once(project: Project) -> None:
    # it has inputs, none of them there yet: it ran on every build, as a task with neither
    project.flowfile("""
        [tasks.lint]
        cmd = "cat {inputs} > /dev/null; echo lint >> runs.log"
        inputs = ["src/*.txt"]
        """)
    (project.root / "src").mkdir()
    assert project.build() == ["lint"]
    assert project.build() == []
    assert project.bflow("status", "--check").returncode == 0
    project.write("src/a.txt", "a\n")
    assert project.build() == ["lint"]
    (project.root / "src" / "a.txt").unlink()
    assert project.build() == ["lint"]
    assert project.build() == []
