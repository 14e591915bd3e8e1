"""`bflow log TASK`: the saved output of the task's last run. A run that succeeded in silence
leaves no file (see `logs`); the state's record of the task says that it ran."""

from __future__ import annotations

import sys

from buildflow.engine import open_state
from buildflow.errors import EXIT_OK, UsageError, did_you_mean
from buildflow.logs import log_path
from buildflow.model import Project


def run(project: Project, *, task: str) -> int:
    if task not in project.tasks:
        instances = [n for n, t in project.tasks.items() if t.base == task]
        if len(instances) != 1:
            hint = " (name one instance: TASK:ITEM)" if instances else \
                did_you_mean(task, project.tasks)
            raise UsageError(f"unknown task '{task}'{hint}")
        task = instances[0]
    path = log_path(project.cache_dir, task)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        if task not in open_state(project).tasks:
            raise UsageError(f"task '{task}' has no saved output yet (it has not run)") from None
        data = b""  # its last run succeeded and printed nothing
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return EXIT_OK
