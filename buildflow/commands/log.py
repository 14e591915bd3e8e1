"""`bflow log TARGET`: the saved output of a task's last run. A run that succeeded in silence
leaves no file (see `logs`); the state's record of the task says that it ran."""

from __future__ import annotations

import os
import sys

from buildflow.commands import invocation_dir
from buildflow.engine import open_state
from buildflow.errors import EXIT_OK, UsageError
from buildflow.lock import holder
from buildflow.logs import log_path
from buildflow.model import Project


def run(project: Project, *, task: str) -> int:
    """`task` is named as for `build`: a task, a TASK:ITEM instance or an output path."""
    names = project.graph.select([task], project.root, invocation_dir())
    if len(names) != 1:
        raise UsageError(f"'{task}' stands for {len(names)} instances; name one "
                         f"(see 'bflow list {task}:*')")
    name = names[0]
    if project.tasks[name].is_group:
        raise UsageError(f"'{name}' is a group task, which runs no command; name one of the "
                         f"tasks it needs: {', '.join(project.tasks[name].deps)}")
    running = holder(os.path.join(project.cache_dir, "lock"))
    path = log_path(project.cache_dir, name)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except IsADirectoryError:
        raise UsageError(f"{path}: a directory where the saved output of task '{name}' "
                         "belongs; remove it (the next run saves the output there)") from None
    except FileNotFoundError:
        if name not in open_state(project).tasks:
            during = "" if running is None else \
                f"; a build of this project is in progress{running}"
            raise UsageError(f"task '{name}' has no saved output yet (no run of it has "
                             f"finished{during})") from None
        data = b""  # its last run succeeded and printed nothing
    if running is not None:
        print(f"bflow: a build of this project is in progress{running}; this is the output of "
              f"the last finished run of '{name}'", file=sys.stderr, flush=True)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return EXIT_OK
