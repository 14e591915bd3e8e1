"""Outputs left behind by tasks that no longer exist (a foreach source was deleted, a task was
renamed, a branch was switched) are removed before a build, so a glob never picks up a file a
clean build would not have. Only files still byte-identical to what bflow recorded are removed,
which is the expected clean-up and said as information; anything edited since is left in place,
with a warning."""

from __future__ import annotations

from collections.abc import Callable

from buildflow.fs import remove_owned
from buildflow.hashing import MISSING, Hasher
from buildflow.model import Project
from buildflow.state import State


def prune_dead_outputs(project: Project, state: State, hasher: Hasher,
                       say: Callable[[str], None],
                       note: Callable[[str], None] | None = None) -> bool:
    """Remove recorded outputs that no current task declares; forget records of tasks that
    no longer exist. Returns whether any file was removed (globs may now match less)."""
    declared = set(project.graph.producer)
    dead_tasks = [name for name in state.tasks if name not in project.tasks]
    removed = False
    for name, record in list(state.tasks.items()):
        for path, digest in record.outputs.items():
            if path in declared or digest == MISSING:
                continue
            current = hasher.file_hash(path)
            if current == MISSING:
                continue
            if current != digest:
                say(f"left {path} in place: task '{name}' wrote it but no longer declares it, "
                    f"and it was modified since; delete it by hand if it is not needed")
            elif remove_owned(project.root, path):
                gone = "no longer declares it" if name in project.tasks else "no longer exists"
                (note or say)(f"removed {path}, an output of task '{name}', which {gone}")
                removed = True
    state.forget(dead_tasks)
    return removed
