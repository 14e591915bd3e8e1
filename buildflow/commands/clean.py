"""`bflow clean`: delete the declared outputs (and depfiles) of the named tasks, and their
records. Never anything else: every path is checked to stay inside the project root, symlinks
included."""

from __future__ import annotations

import os
from pathlib import Path

from buildflow import engine
from buildflow.commands import invocation_dir
from buildflow.errors import EXIT_OK
from buildflow.fs import LocalFileSystem
from buildflow.lock import ProjectLock
from buildflow.model import Project


def _inside(root: Path, path: Path) -> bool:
    """True when `path`'s real parent directory is inside the root (the path itself may be a
    link, which is removed as a link, never followed)."""
    real_root = os.path.realpath(root)
    parent = os.path.realpath(path.parent)
    return (parent == real_root or parent.startswith(real_root + os.sep)) and path != root


def _named_tasks(project: Project, targets: list[str]) -> list[str]:
    """The named tasks (all when none); a group stands for the tasks it groups."""
    if not targets:
        return list(project.tasks)
    names: dict[str, None] = {}
    pending = project.graph.select(targets, str(project.root), invocation_dir())
    while pending:
        name = pending.pop(0)
        if name not in names:
            names[name] = None
            if project.tasks[name].is_group:
                pending.extend(project.tasks[name].deps)
    return list(names)


def run(project: Project, *, targets: list[str]) -> int:
    names = _named_tasks(project, targets)
    fs = LocalFileSystem(str(project.root))
    lock = ProjectLock(project.cache_dir / "lock")
    lock.acquire(None, lambda message: print(f"bflow: {message}"))
    removed = 0
    try:
        state = engine.open_state(project)
        for name in names:
            task = project.tasks[name]
            for path in (*task.outputs, *([task.depfile] if task.depfile else [])):
                absolute = project.root / path
                if not os.path.lexists(absolute) or not _inside(project.root, absolute):
                    continue
                if os.path.islink(absolute):
                    os.unlink(absolute)
                else:
                    fs.remove(path)
                removed += 1
        state.forget(names)
        state.close()
    finally:
        lock.release()
    print(f"bflow: removed {removed} output(s) of {len(names)} task(s)")
    return EXIT_OK
