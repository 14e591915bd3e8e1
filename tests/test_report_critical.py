"""What `bflow report` computes from the history: the critical path through the tasks that
ran, the slowest tasks, and per-task statistics with failing and flaky tasks first."""

from __future__ import annotations

from buildflow.report.critical import TaskStats, critical_path, slowest, task_stats
from buildflow.report.history import FAILED, OK, BuildRecord, TaskRun


def build(*runs: TaskRun) -> BuildRecord:
    return BuildRecord(when=0.0, duration=max((r.end for r in runs), default=0.0),
                       exit_status=0, jobs=2, runs=runs)


def run(task: str, start: float, end: float, attempts: int = 1,
        outcome: str = OK) -> TaskRun:
    return TaskRun(task, start, end, attempts, outcome)


# gen -> (a, b) -> link; "all" is a group (it never runs) between link and pkg.
UPSTREAM = {"a": ["gen"], "b": ["gen"], "link": ["a", "b"], "all": ["link"], "pkg": ["all"]}


def test_the_critical_path_follows_what_each_task_waited_for_last() -> None:
    record = build(run("gen", 0, 1), run("a", 1, 5), run("b", 1, 2), run("link", 5, 6),
                   run("pkg", 6, 7))
    assert [r.task for r in critical_path(record, UPSTREAM)] == ["gen", "a", "link", "pkg"]


def test_the_critical_path_looks_through_tasks_that_did_not_run() -> None:
    record = build(run("b", 0, 3), run("pkg", 3, 4))  # gen, a, link up to date
    assert [r.task for r in critical_path(record, UPSTREAM)] == ["b", "pkg"]
    assert critical_path(build(), UPSTREAM) == []


def test_the_slowest_tasks_first() -> None:
    record = build(run("a", 0, 1), run("b", 0, 5), run("c", 1, 3))
    assert [r.task for r in slowest(record, 2)] == ["b", "c"]


def test_failing_and_retried_tasks_come_first_each_part_slowest_first() -> None:
    records = [build(run("slow", 0, 9), run("flaky", 0, 1, attempts=2), run("ok", 0, 2)),
               build(run("slow", 0, 7), run("flaky", 0, 3), run("bad", 0, 1, outcome=FAILED),
                     run("ok", 0, 4))]
    assert task_stats(records) == [
        TaskStats("flaky", 2.0, 2, 0, 1), TaskStats("bad", 1.0, 1, 1, 0),
        TaskStats("slow", 8.0, 2, 0, 0), TaskStats("ok", 3.0, 2, 0, 0)]
