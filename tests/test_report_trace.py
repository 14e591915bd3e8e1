"""`--trace FILE`: Chrome trace events, one complete event per attempt, timed as the commands
ran, on no more job slots than `-j`."""

from __future__ import annotations

import json
import os

import pytest

from conftest import Project

FLOWFILE = """
[tasks.slow]
cmd = "sleep 0.4 && echo slow >> runs.log && echo > {output}"
outputs = ["slow.txt"]

[tasks.quick]
cmd = "sleep 0.1 && echo quick >> runs.log && echo > {output}"
outputs = ["quick.txt"]

[tasks.after]
cmd = "sleep 0.2 && echo after >> runs.log && cat {input} > {output}"
inputs = ["slow.txt"]
outputs = ["after.txt"]

[tasks.flaky]
cmd = "echo flaky >> runs.log; test -e flag || {{ touch flag; sleep 0.2; exit 1; }}"
retries = 2
retry_delay = 0.3
"""


def complete_events(trace: dict[str, object]) -> list[dict[str, object]]:
    events = trace["traceEvents"]
    assert isinstance(events, list)
    return [event for event in events if event["ph"] == "X"]


def test_one_complete_event_per_attempt_timed_as_the_commands_ran(project: Project) -> None:
    project.flowfile(FLOWFILE)
    (project.root / "out").mkdir()
    ran = project.build("-j2", "--trace", "out/trace.json", "--plain")
    assert sorted(ran) == ["after", "flaky", "flaky", "quick", "slow"]
    trace = json.loads(project.read("out/trace.json"))
    events = complete_events(trace)
    by_task: dict[str, list[dict[str, object]]] = {}
    for event in events:
        assert {"name", "ts", "dur", "tid", "pid"} <= set(event)
        by_task.setdefault(str(event["name"]), []).append(event)
    assert sorted(by_task) == ["after", "flaky", "quick", "slow"]
    assert [e["args"] for e in by_task["flaky"]] == [
        {"outcome": "retried", "attempt": 1}, {"outcome": "ok", "attempt": 2}]
    seconds = {name: [int(e["dur"]) / 1e6 for e in found]  # type: ignore[call-overload]
               for name, found in by_task.items()}
    # Each event lasts at least its command's sleep; how much longer is the machine's
    # business (the retry delay's own arithmetic is tested on a fake clock, test_scheduler).
    for name, expected in (("slow", 0.4), ("quick", 0.1), ("after", 0.2), ("flaky", 0.2)):
        assert expected <= seconds[name][0], (name, seconds[name])
    # The second attempt starts after the retry delay (0.3 s and up to half more of jitter).
    first, second = by_task["flaky"]
    first_end = int(first["ts"]) + int(first["dur"])  # type: ignore[call-overload]
    assert (int(second["ts"]) - first_end) / 1e6 >= 0.3  # type: ignore[call-overload]
    # `after` starts once `slow` has ended; no more job slots than -j2.
    slow, after = by_task["slow"][0], by_task["after"][0]
    assert int(after["ts"]) >= int(slow["ts"]) + int(slow["dur"])  # type: ignore[call-overload]
    assert {e["tid"] for e in events} <= {1, 2}
    names = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"]  # type: ignore[attr-defined]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {1: "job 1", 2: "job 2"}


def test_a_failed_task_is_in_the_trace_and_a_no_op_traces_nothing_run(project: Project) -> None:
    project.flowfile("""
        [tasks.ok]
        cmd = "echo ok >> runs.log && echo > {output}"
        outputs = ["ok.txt"]

        [tasks.bad]
        cmd = "echo bad >> runs.log; exit 3"
        """)
    assert sorted(project.build("-k", "--trace", "t.json", status=1)) == ["bad", "ok"]
    events = complete_events(json.loads(project.read("t.json")))
    assert {(e["name"], e["args"]["outcome"]) for e in events} == {  # type: ignore[index]
        ("ok", "ok"), ("bad", "failed")}
    assert project.build("ok", "--trace", "t.json") == []
    assert complete_events(json.loads(project.read("t.json"))) == []


def test_a_trace_file_in_a_missing_directory_is_a_usage_error(project: Project) -> None:
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log"\n')
    result = project.bflow("--trace", "no/such/dir/t.json")
    assert result.returncode == 2
    assert "--trace no/such/dir/t.json: directory no/such/dir does not exist" in result.stderr
    assert project.runs() == []


def test_a_trace_or_page_name_too_long_is_a_usage_error(project: Project) -> None:
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log"\n')
    for option in ("--trace", "--report"):
        result = project.bflow(option, "x" * 300 + ".json")
        assert result.returncode == 2
        assert result.stderr.startswith(f"bflow: error: {option} xxx")
        assert result.stderr.endswith(".json: File name too long\n")
    assert project.runs() == []


@pytest.mark.parametrize(("option", "path", "what"), [
    ("--report", "Flowfile", "is the Flowfile"),
    ("--trace", "in.txt", "is an input of task 'a'"),
    ("--report", "out.txt", "is an output of task 'a'"),
    ("--trace", ".bflow/t.json", "is in the cache dir .bflow"),
])
def test_a_trace_or_page_over_a_file_of_the_project_is_a_usage_error(
        project: Project, option: str, path: str, what: str) -> None:
    """`--report Flowfile` wrote the page over the Flowfile; over an output, it made its task
    run at every build."""
    flowfile = project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log; cp in.txt out.txt"\n'
                                'inputs = ["in.txt"]\noutputs = ["out.txt"]\n')
    project.write("in.txt", "in\n")
    assert project.build() == ["a"]
    before = {name: (project.root / name).read_bytes() for name in ("Flowfile", "in.txt",
                                                                     "out.txt")}
    result = project.bflow("-B", option, path)
    assert result.returncode == 2
    assert result.stderr == f"bflow: error: {option} {path}: {what}; name a file of your own " \
                            f"for the {option[2:]}\n"
    assert {name: (project.root / name).read_bytes() for name in before} == before
    assert project.runs() == ["a"] and flowfile.exists()


def test_a_trace_or_page_without_a_name_is_a_usage_error(project: Project) -> None:
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log && touch a.txt"\n'
                     'outputs = ["a.txt"]\n')
    result = project.bflow("--report", "")
    assert result.returncode == 2
    assert result.stderr == "bflow: error: --report needs the name of a file, such as " \
                            "build.html\n"  # it was "is a directory", the working one
    assert project.runs() == []
    assert project.build() == ["a"]
    # up to date, it was answered by the fast path, which took '' for no trace: exit 0
    for option in ("--trace", "--report"):
        assert project.bflow(option, "").returncode == 2


@pytest.mark.parametrize(("option", "what"), [("-C", "a directory, such as -C src"),
                                              ("-f", "the name of a Flowfile")])
def test_an_empty_directory_or_flowfile_is_a_usage_error(project: Project, option: str,
                                                          what: str) -> None:
    """`-C ''` was taken as no -C; `-f ''` said ": a directory, not a Flowfile"."""
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log"\n')
    result = project.bflow(option, "")
    assert result.returncode == 2 and f"{option} needs {what}" in result.stderr
    assert project.runs() == []


def test_a_trace_and_a_page_in_one_file_is_a_usage_error(project: Project) -> None:
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log"\n')
    result = project.bflow("--trace", "r.html", "--report", "./r.html")
    assert result.returncode == 2
    assert "--trace and --report both name r.html; name a file for each" in result.stderr
    assert project.runs() == []

@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_trace_or_page_that_cannot_be_written_is_a_warning_and_the_build_s_status_stands(
        project: Project) -> None:
    # /proc exists, and takes no new file: the write fails only once the build is over; it
    # was an internal error (exit 3) that hid the build's own status
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log; exit 1"\n')
    result = project.bflow("--trace", "/proc/t.json", "--report", "/proc/r.html")
    assert result.returncode == 1, result.stderr
    assert project.runs() == ["a"]
    for line in ("bflow: warning: --trace /proc/t.json: cannot write it: No such file or "
                 "directory", "bflow: warning: --report /proc/r.html: cannot write it: No "
                 "such file or directory"):
        assert result.stderr.count(line) == 1, result.stderr
