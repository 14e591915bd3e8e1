"""`bflow clean`: delete the declared outputs (and depfiles) of the named tasks, and their
records. Never anything else: every path is checked to stay inside the project root, symlinks
included."""

from __future__ import annotations

import os
import sys
from collections import Counter

from buildflow import engine
from buildflow.commands import invocation_dir
from buildflow.errors import EXIT_FAILED, EXIT_OK
from buildflow.fs import LeftTemps, remove_owned
from buildflow.lock import ProjectLock
from buildflow.model import Project
from buildflow.prune import recorded_outputs
from buildflow.words import counted


def _named_tasks(project: Project, targets: list[str]) -> list[str]:
    """The named tasks (all when none); a group stands for the tasks it groups."""
    if not targets:
        return list(project.tasks)
    names: dict[str, None] = {}
    pending = project.graph.select(targets, project.root, invocation_dir())
    while pending:
        name = pending.pop(0)
        if name not in names:
            names[name] = None
            if project.tasks[name].is_group:
                pending.extend(project.tasks[name].deps)
    return list(names)


def _removed(project: Project, name: str, path: str, removed: int, status: int,
             temps: LeftTemps) -> tuple[int, int]:
    """`removed` and `status` once `path`, an output of task `name`, is removed."""
    try:
        temps.remove_beside(os.path.join(project.root, path))  # a killed build's
        return removed + remove_owned(project.root, path), status
    except OSError as exc:
        print(f"bflow: error: cannot remove {path}, an output of task '{name}': "
              f"{exc.strerror}; check the permissions of its directory", file=sys.stderr)
        return removed, EXIT_FAILED


def run(project: Project, *, targets: list[str]) -> int:
    names = _named_tasks(project, targets)
    lock = ProjectLock(os.path.join(project.cache_dir, "lock"))
    lock.acquire(None, lambda message: print(f"bflow: {message}", file=sys.stderr))
    removed = 0
    status = EXIT_OK
    temps = LeftTemps()
    try:
        state = engine.open_state(project, locked=True)
        # What the records of the named tasks hold that they no longer declare (an output
        # renamed since, a dropped depfile, `site/` become `site/c.htm`), and instances known
        # only by their records (a foreach over files a build writes, which are not there
        # now): it goes as their outputs do, unless edited since; the next build would remove
        # it, but not once the records are gone. Found before the declared outputs go, which
        # would make a recorded directory holding one look edited.
        # Only for a task named whole: one instance named (`each:site/b.html`) is not its
        # siblings, known by their records or not.
        named = Counter(project.tasks[name].base for name in names)
        every = Counter(task.base for task in project.tasks.values())
        whole = {base for base, count in named.items() if count == every[base]}
        recorded = [name for name in (*state.tasks, *state.left)
                    if name not in project.tasks and name.partition(":")[0] in whole]
        removable, modified = recorded_outputs(project, state, engine.hasher_for(project, state),
                                               [*names, *recorded])
        for name in names:
            task = project.tasks[name]
            for path in (*task.outputs, *([task.depfile] if task.depfile else [])):
                full = os.path.join(project.root, path)
                if path not in task.dir_outputs and os.path.isdir(full) \
                        and not os.path.islink(full):
                    print(f"bflow: left {path} in place: task '{name}' declares a file there, "
                          "and a directory is no file it writes; delete it by hand if it is "
                          "not needed", file=sys.stderr)
                    continue
                if path in task.dir_outputs and os.path.lexists(full) \
                        and not os.path.isdir(full):
                    print(f"bflow: left {path} in place: task '{name}' declares a directory "
                          "there, and a file is no tree it writes; delete it by hand if it is "
                          "not needed", file=sys.stderr)
                    continue
                if path in task.dir_outputs and os.path.isdir(full) \
                        and not os.path.islink(full) \
                        and name not in state.tasks and name not in state.left:
                    print(f"bflow: left {path}/ in place: task '{name}' has no record of a run, "
                          "so nothing in it is known to be the task's; delete it by hand if it "
                          "is not needed", file=sys.stderr)
                    continue
                removed, status = _removed(project, name, path, removed, status, temps)
        for name, files in removable:
            for path in files:
                removed, status = _removed(project, name, path, removed, status, temps)
        for name, path in modified:
            print(f"bflow: left {path} in place: task '{name}' wrote it, and it was modified "
                  "since; delete it by hand if it is not needed", file=sys.stderr)
        state.forget([*names, *recorded])
        state.close()
    finally:
        lock.release()
    print(f"bflow: removed {counted(removed, 'output')} of {counted(len(names), 'task')}")
    return status
