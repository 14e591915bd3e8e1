"""What `bflow report` tells of the recorded builds: the last one's critical path and slowest
tasks, and each task's median time, failures and retried runs over the history.

The critical path is the chain of tasks that set the build's length: from the task that ended
last, back through the task each one waited for, the one among those it needs that ended
last, down to one that needed none that ran. What a task needs is read from the Flowfile as
it is now; tasks that did not run (up to date, groups) are looked through to those they need.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from buildflow.report.history import FAILED, INTERRUPTED, BuildRecord, TaskRun


class TaskStats(NamedTuple):
    task: str
    median: float
    runs: int
    failed: int
    retried: int  # runs that needed more than one attempt (flaky, when they then passed)


def critical_path(record: BuildRecord,
                  upstream: Mapping[str, Sequence[str]]) -> list[TaskRun]:
    runs = {run.task: run for run in record.runs}
    if not runs:
        return []
    chain = [max(runs.values(), key=lambda run: run.end)]
    while waited := _ran_upstream(chain[-1].task, runs, upstream):
        chain.append(max(waited, key=lambda run: run.end))
    return chain[::-1]


def _ran_upstream(name: str, runs: Mapping[str, TaskRun],
                  upstream: Mapping[str, Sequence[str]]) -> list[TaskRun]:
    """The tasks that ran among those `name` needs, looking through those that did not."""
    found: list[TaskRun] = []
    seen: set[str] = set()
    todo = list(upstream.get(name, ()))
    while todo:
        up = todo.pop()
        if up in seen:
            continue
        seen.add(up)
        if up in runs:
            found.append(runs[up])
        else:
            todo.extend(upstream.get(up, ()))
    return found


def slowest(record: BuildRecord, count: int) -> list[TaskRun]:
    return sorted(record.runs, key=lambda run: run.start - run.end)[:count]


def task_stats(records: Sequence[BuildRecord]) -> list[TaskStats]:
    """Per task over `records`: failing and retried tasks first, then the slowest. A run
    Ctrl-C stopped says nothing of either, and its time is cut short: it is left out."""
    times: dict[str, list[float]] = {}
    failed: dict[str, int] = {}
    retried: dict[str, int] = {}
    for record in records:
        for run in record.runs:
            if run.outcome == INTERRUPTED:
                continue
            times.setdefault(run.task, []).append(run.end - run.start)
            failed[run.task] = failed.get(run.task, 0) + (run.outcome == FAILED)
            retried[run.task] = retried.get(run.task, 0) + (run.attempts > 1)
    stats = [TaskStats(task, statistics.median(durations), len(durations), failed[task],
                       retried[task]) for task, durations in times.items()]
    return sorted(stats, key=lambda s: (-(s.failed + s.retried), -s.median, s.task))
