"""`bflow report`: the last recorded build's critical path and slowest tasks, and each task's
median time, failures and retried runs over the recorded history."""

from __future__ import annotations

import time

from buildflow.errors import EXIT_OK, UsageError
from buildflow.model import Project
from buildflow.report import critical, history
from buildflow.words import counted

SHOWN = 10  # slowest tasks, and rows of the history table unless --all


def run(project: Project, *, show_all: bool) -> int:
    records = history.load(project.cache_dir)[-history.KEEP:]
    if not records:  # as `bflow log` of a task that has not run: nothing to show (exit 2)
        raise UsageError(f"no build recorded in {history.history_path(project.cache_dir)} "
                         "yet; builds that run or fail a task are recorded: run `bflow` first")
    last = records[-1]
    verdict = {0: "succeeded", 1: "failed", 130: "interrupted"}.get(
        last.exit_status, f"exit status {last.exit_status}")
    ended = [run.outcome for run in last.runs]
    ends = ", ".join(f"{ended.count(outcome)} {outcome}" for outcome in
                     (history.FAILED, history.INTERRUPTED) if outcome in ended)
    print(f"Last build: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last.when))}, "
          f"{verdict} in {last.duration:.2f}s, {counted(len(last.runs), 'task')} ran"
          + (f" ({ends})" if ends else "") + f" (-j{last.jobs})")
    path = critical.critical_path(last, project.graph.upstream)
    length = sum(run.end - run.start for run in path)
    print(f"\nCritical path: {counted(len(path), 'task')}, {length:.2f}s of the build's "
          f"{last.duration:.2f}s (start, time, task)")
    for run in path:
        print(f"  {run.start:8.2f}s {run.end - run.start:8.2f}s  {run.task}"
              + (f"  ({run.outcome})" if run.outcome != history.OK else ""))
    print("\nSlowest tasks (time, task):")
    for run in critical.slowest(last, SHOWN):
        print(f"  {run.end - run.start:8.2f}s  {run.task}")
    stats = critical.task_stats(records)
    print(f"\nOver the last {counted(len(records), 'recorded build')} (median time, runs, failed, "
          "retried, task):")
    for row in stats if show_all else stats[:SHOWN]:
        print(f"  {row.median:8.2f}s {row.runs:5} {row.failed:6} {row.retried:7}  {row.task}")
    if not show_all and len(stats) > SHOWN:
        print(f"  ... and {counted(len(stats) - SHOWN, 'more task')} "
              "(bflow report --all lists them)")
    return EXIT_OK
