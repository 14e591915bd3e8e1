"""The history of builds and `bflow report`: the critical path of a project whose critical
path is known, the slowest tasks, per-task medians, failures and retries; a history that stays
bounded and loadable after a torn write."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from conftest import Project, bflow_env
from test_runner import wait_for

from buildflow.report import history

# Two chains into `end`: a -> b -> end takes 0.9 s, side -> end 0.3 s, and lone runs beside
# them. With -j3 nothing waits for a job, so the critical path is a, b, end.
KNOWN = """
[vars]
SEED = "1"
SIDE = "1"

[tasks.a]
cmd = "sleep 0.4 && echo a >> runs.log && echo {SEED} > {output}"
outputs = ["a.txt"]

[tasks.b]
cmd = "sleep 0.5 && echo b >> runs.log && cat {input} > {output}"
inputs = ["a.txt"]
outputs = ["b.txt"]

[tasks.side]
cmd = "sleep 0.3 && echo side >> runs.log && echo {SIDE} > {output}"
outputs = ["side.txt"]

[tasks.lone]
cmd = "sleep 0.2 && echo lone >> runs.log && echo {SEED} > {output}"
outputs = ["lone.txt"]

[tasks.end]
cmd = "sleep 0.1 && echo end >> runs.log && cat {inputs} > {output}"
inputs = ["b.txt", "side.txt"]
outputs = ["end.txt"]

[tasks.all]
deps = ["end", "lone"]
"""


def critical_path(report: str) -> list[str]:
    block = report.split("Critical path:")[1].split("\n\n")[0]
    return [line.split()[-1] for line in block.splitlines()[1:]]


def test_report_names_the_known_critical_path(project: Project) -> None:
    """The path and the order of the slowest tasks are checked against what the commands
    sleep at least and what bflow measured, not against timings a busy machine stretches."""
    project.flowfile(KNOWN)
    assert sorted(project.build("-j3")) == ["a", "b", "end", "lone", "side"]
    result = project.bflow("report")
    assert result.returncode == 0, result.stderr
    assert critical_path(result.stdout) == ["a", "b", "end"]
    match = re.search(r"Critical path: 3 tasks, ([\d.]+)s of the build's ([\d.]+)s",
                      result.stdout)
    assert match and 1.0 <= float(match.group(1)) <= float(match.group(2))
    block = result.stdout.split("Slowest tasks (time, task):\n")[1].split("\n\n")[0]
    slowest = [(float(line.split()[0].removesuffix("s")), line.split()[1])
               for line in block.splitlines()]
    assert [seconds for seconds, _ in slowest] == sorted((s for s, _ in slowest), reverse=True)
    sleeps = {"a": 0.4, "b": 0.5, "side": 0.3, "lone": 0.2, "end": 0.1}
    assert sorted(name for _, name in slowest) == sorted(sleeps)
    assert all(seconds >= sleeps[name] for seconds, name in slowest), slowest


def test_the_path_goes_through_groups_and_only_what_ran(project: Project) -> None:
    project.flowfile(KNOWN.replace('inputs = ["b.txt", "side.txt"]',
                                   'inputs = ["side.txt"]\ndeps = ["chain"]')
                     + '\n[tasks.chain]\ndeps = ["b"]\n')
    project.build("-j3")
    assert critical_path(project.bflow("report").stdout) == ["a", "b", "end"]
    # Only `side` and `end` run now: the path is what ran in the last build.
    assert sorted(project.build("-j3", "SIDE=2")) == ["end", "side"]
    assert critical_path(project.bflow("report").stdout) == ["side", "end"]


def test_history_counts_failures_and_retried_runs_and_medians(project: Project) -> None:
    project.flowfile("""
        [tasks.flaky]
        cmd = "echo flaky >> runs.log; test -e flag || {{ touch flag; exit 1; }}"
        retries = 1
        retry_delay = 0.05
        always = true

        [tasks.broken]
        cmd = "echo broken >> runs.log; exit 1"

        [tasks.steady]
        cmd = "sleep 0.2; echo steady >> runs.log"
        always = true
        """)
    for _ in range(3):
        project.build("-k", status=1)
        (project.root / "flag").unlink()
    report = project.bflow("report").stdout
    rows = {line.split()[-1]: line.split()[:-1] for line in
            report.split("recorded builds")[1].splitlines()[1:]}
    assert "Over the last 3 recorded builds" in report
    assert ", failed in " in report and ", 3 tasks ran (1 failed) (-j" in report
    assert rows["broken"][1:] == ["3", "3", "0"]
    assert rows["flaky"][1:] == ["3", "0", "3"]
    assert rows["steady"][1:] == ["3", "0", "0"]
    # The median of three runs of at least 0.2 s each: never their sum, however busy the machine.
    assert 0.2 <= float(rows["steady"][0].rstrip("s")) < 0.6


def test_a_task_stopped_by_ctrl_c_is_no_failure_of_its_own(project: Project) -> None:
    project.flowfile("""
        [tasks.quick]
        cmd = "echo quick >> runs.log"
        [tasks.slow]
        cmd = "echo slow >> runs.log; sleep 30 & echo $! > slow.pid; wait"
        deps = ["quick"]
        """)
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"], cwd=project.root,
                               env=bflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: (project.root / "slow.pid").exists()
                    and project.read("slow.pid").strip() != "")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert process.returncode == 130 and project.runs() == ["quick", "slow"]
    report = project.bflow("report").stdout
    assert ", interrupted in " in report and ", 2 tasks ran (1 interrupted) (-j" in report
    assert "  slow  (interrupted)" in report.split("Critical path:")[1]
    # Its cut-short time and its stop are no part of the task's history.
    rows = [line.split() for line in report.split("recorded build ")[1].splitlines()[1:]]
    assert [row[-1] for row in rows] == ["quick"] and rows[0][2] == "0"


def test_a_build_with_nothing_to_do_is_not_recorded(project: Project) -> None:
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log && echo > {output}"\n'
                     'outputs = ["a.txt"]\n')
    result = project.bflow("report")  # exit 2 on stderr, as `bflow log` of a task not run
    assert result.returncode == 2 and "bflow: error: no build recorded" in result.stderr
    project.build()
    size = (project.root / ".bflow/history").stat().st_size
    # The fast path, as users run it: BFLOW_VERIFY=1 would load the engine to check it.
    noop = project.bflow(env={"PYTHONPROFILEIMPORTTIME": "1", "BFLOW_VERIFY": "0"})
    assert noop.returncode == 0 and "buildflow.scheduler" not in noop.stderr
    assert "buildflow.report\n" not in noop.stderr and "buildflow.report." not in noop.stderr
    assert project.build("-v") == []  # the full way
    assert (project.root / ".bflow/history").stat().st_size == size
    report = project.bflow("report").stdout  # one of each, said as one
    assert "succeeded in" in report and ", 1 task ran (-j" in report
    assert "Critical path: 1 task, " in report and "Over the last 1 recorded build " in report


def test_a_task_that_failed_before_it_ran_is_no_run_of_it(project: Project) -> None:
    """`use`, its input missing once its writer was skipped, failed without running: the
    report counted it as a run of 0.00 s, halving its median."""
    project.flowfile("""
        [tasks.gen]
        cmd = "echo x > x.txt"
        outputs = ["x.txt"]
        when = { exists = "flag" }
        [tasks.use]
        cmd = "echo use >> runs.log; sleep 0.3; cp x.txt y.txt"
        inputs = ["x.txt"]
        outputs = ["y.txt"]
        """)
    project.write("flag", "")
    assert project.build() == ["use"]
    (project.root / "flag").unlink()
    (project.root / "x.txt").unlink()
    assert project.bflow("--plain").returncode == 1
    assert project.runs() == ["use"]
    report = project.bflow("report").stdout
    table = report[report.index("Over the last"):].splitlines()
    assert table[1].split()[1:] == ["1", "0", "0", "use"], report  # one run, no failure
    assert float(table[1].split()[0].rstrip("s")) >= 0.3  # its median: the run of 0.3 s


def test_history_is_bounded_and_survives_a_torn_write(tmp_path: Path) -> None:
    path = str(tmp_path / "history")
    big = tuple((f"task{i}", 0.0, 1.0, 1, "ok") for i in range(3000))
    for number in range(60):
        history.append(path, (float(number), 1.0, 0, 2, big[: 1 + number % 3]))
    assert len(history.load(str(tmp_path))) == 60
    limit = history.MAX_BYTES
    try:
        history.MAX_BYTES = 200_000
        for number in range(60, 100):
            history.append(path, (float(number), 1.0, 0, 2, big))
        assert os.path.getsize(path) <= 200_000
        records = history.load(str(tmp_path))
        assert 1 <= len(records) <= history.KEEP
        assert records[-1].when == 99.0
    finally:
        history.MAX_BYTES = limit
    with open(path, "ab") as handle:  # a kill in the middle of an append
        handle.write(history.encode((100.0, 1.0, 0, 2, ()))[:7])
    assert history.load(str(tmp_path))[-1].when == 99.0
    history.append(path, (101.0, 1.0, 0, 2, big[:1]))
    assert [r.when for r in history.load(str(tmp_path))][-2:] == [99.0, 101.0]
