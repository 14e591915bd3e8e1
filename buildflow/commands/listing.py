"""`bflow list [PATTERN..]`: every task with its description, foreach tasks with their instance
count; with patterns, the tasks and instances whose names match (`bflow list 'compile:*'`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from fnmatch import fnmatchcase

from buildflow.errors import EXIT_OK, UsageError, did_you_mean
from buildflow.model import Project
from buildflow.words import say


def run(project: Project, *, patterns: Sequence[str] = ()) -> int:
    rows: dict[str, tuple[str, int]] = {}  # name -> (description, instance count)
    for task in project.tasks.values():
        description, count = rows.get(task.base, (task.description, 0))
        rows[task.base] = (description, count + (1 if task.item is not None else 0))
    empty = project.graph.empty  # a foreach matching no file: a task all the same
    rows.update((name, ("", 0)) for name in sorted(empty))
    if patterns:
        rows = _matching(project, rows, patterns)
    width = max((len(name) for name in rows), default=0)
    for name, (description, count) in rows.items():
        extra = f" [{count} instance{'s' if count != 1 else ''}]" if count else \
            " [no instances: its foreach matches no file]" if name in empty else ""
        text = f"{description}{extra}".strip()
        say(f"{name.ljust(width)}  {text}" if text else name)  # a name may end in a space
    return EXIT_OK


def kinds() -> int:
    """`bflow list --kinds`: each installed task kind, with the callable that expands it."""
    from buildflow.kinds import GROUP, clash, distribution, installed

    found = installed()
    if not found:
        say(f"bflow: no task kinds installed (a package declares them under the entry "
            f"point group {GROUP})")
    width = max(map(len, found), default=0)
    for name, entries in sorted(found.items()):
        for entry in entries:
            # which distribution, where two declare the name: a task cannot use it then
            say(f"{name.ljust(width)}  {entry.value}" + (
                f"  ({distribution(entry)})" if len(entries) > 1 else ""))
    for name, entries in sorted(found.items()):
        if len(entries) > 1:
            print(f"bflow: warning: {clash(name, entries)}", file=sys.stderr)
    return EXIT_OK


def _matching(project: Project, rows: dict[str, tuple[str, int]],
              patterns: Sequence[str]) -> dict[str, tuple[str, int]]:
    """The task rows and the foreach instances any pattern matches, each instance after its
    task; a pattern that matches nothing is an error, as a typo would be."""
    # Only * and ? are wildcards: a `[` is itself, as in the names `list` prints (`src/v[1].c`)
    literal = {pattern: pattern.replace("[", "[[]") for pattern in patterns}

    def matches(name: str) -> bool:
        return any(fnmatchcase(name, literal[pattern]) for pattern in patterns)

    found: dict[str, tuple[str, int]] = {}
    for task in project.tasks.values():
        if matches(task.base):
            found.setdefault(task.base, rows[task.base])
        if task.item is not None and matches(task.name):
            found[task.name] = (task.description, 0)
    found.update((name, rows[name]) for name in project.graph.empty if matches(name))
    for pattern in patterns:
        if not any(fnmatchcase(name, literal[pattern]) for name in found):
            raise UsageError(f"no task or instance matches '{pattern}'"
                             f"{did_you_mean(pattern, rows)} (a pattern is a name with * and "
                             "?, as 'compile:*'; quote it from the shell)")
    return found
