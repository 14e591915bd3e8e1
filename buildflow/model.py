"""Frozen specs: the project's settings and its tasks, placeholders expanded, globs resolved.

Run state (records, hashes, results) lives elsewhere; nothing here changes during a build.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from buildflow.graph import Graph
from buildflow.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any


class Settings(NamedTuple):
    """The Flowfile's `[settings]` table, defaults filled in."""

    jobs: int | None = None
    default: tuple[str, ...] | None = None
    shell: str = "/bin/sh"
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float = 0.0
    env: tuple[tuple[str, str], ...] = ()
    cache_dir: str = ".bflow"
    remote_cache: str = ""  # the output cache's server (SPEC §6); "" for none
    remote_cache_upload: bool = True


class Task(NamedTuple):
    """One runnable instance: a plain task, or one `foreach` item (`compile:src/a.c`)."""

    name: str
    base: str
    commands: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    dir_outputs: frozenset[str] = frozenset()
    deps: tuple[str, ...] = ()
    depfile: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = ""
    shell: str = "/bin/sh"
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float = 0.0
    always: bool = False
    description: str = ""
    item: str | None = None
    cache: bool | None = None  # the `cache` key; None: cached when the task has outputs

    @property
    def is_group(self) -> bool:
        return not self.commands


def tasks_from_rows(rows: Iterable[tuple[object, ...]]) -> dict[str, Task]:
    """Tasks by name from their fields as plain tuples, the form the project cache and the
    proof store them in; a row of the wrong length raises."""
    return {task.name: task for task in map(Task._make, rows)}


class Project(NamedTuple):
    """A loaded Flowfile: every task instance in declaration order, and the graph over them.
    Its paths are absolute strings (the engine joins them with `os.path`, not `pathlib`)."""

    root: str
    flowfile: str
    settings: Settings
    vars: dict[str, str]
    tasks: dict[str, Task]
    graph: Graph
    warnings: tuple[str, ...] = ()
    globbed_dirs: frozenset[str] = frozenset()
    # The document a project made from Python objects came from (None: from a Flowfile).
    data: Mapping[str, Any] | None = None

    @property
    def cache_dir(self) -> str:
        return os.path.join(self.root, self.settings.cache_dir)

    @property
    def default_jobs(self) -> int:
        """Commands run at once when `-j` is not given: `settings.jobs`, else one per CPU."""
        return self.settings.jobs or os.cpu_count() or 1
