"""`bflow list`: every task with its description; foreach tasks with their instance count."""

from __future__ import annotations

from buildflow.errors import EXIT_OK
from buildflow.model import Project


def run(project: Project) -> int:
    rows: dict[str, tuple[str, int]] = {}
    for task in project.tasks.values():
        description, count = rows.get(task.base, (task.description, 0))
        rows[task.base] = (description, count + (1 if task.item is not None else 0))
    width = max((len(name) for name in rows), default=0)
    for name, (description, count) in rows.items():
        extra = f" [{count} instance{'s' if count != 1 else ''}]" if count else ""
        text = f"{description}{extra}".strip()
        print(f"{name.ljust(width)}  {text}".rstrip())
    return EXIT_OK
