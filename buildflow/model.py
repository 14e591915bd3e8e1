"""Frozen specs: the project's settings and its tasks, placeholders expanded, globs resolved.

Run state (records, hashes, results) lives elsewhere; nothing here changes during a build.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple
from buildflow.graph import Graph

if TYPE_CHECKING:
    from typing import Any

    from buildflow.fs import FileSystem


# The shell string commands run in; a command without shell syntax runs without it only here
DEFAULT_SHELL = "/bin/sh"


class Settings(NamedTuple):
    """The Flowfile's `[settings]` table, defaults filled in."""

    jobs: int | None = None
    default: tuple[str, ...] | None = None
    shell: str = DEFAULT_SHELL
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float = 0.0
    env: tuple[tuple[str, str], ...] = ()
    cache_dir: str = ".bflow"
    on_success: str | None = None  # hook commands: run after a build, its summary on stdin
    on_failure: str | None = None
    remote_cache: str = ""  # the output cache's server (SPEC §6); "" for none
    remote_cache_upload: bool = True
    executor: str = "local"  # where commands run (SPEC §7): `local` or `dask://HOST:PORT`


class Passthrough(NamedTuple):
    """What follows `--` on the command line (`bflow test -- -k fast`), as `{args}` of the
    tasks `targets` name (seen from `cwd`)."""

    targets: tuple[str, ...]
    words: tuple[str, ...]
    cwd: str


NO_PATHS: frozenset[str] = frozenset()  # shared: each frozenset() made is a new object


class Task(NamedTuple):
    """One runnable instance: a plain task, or one `foreach` item (`compile:src/a.c`)."""

    name: str
    base: str
    commands: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    dir_outputs: frozenset[str] = NO_PATHS
    deps: tuple[str, ...] = ()
    depfile: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = ""
    shell: str = DEFAULT_SHELL
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float = 0.0
    always: bool = False
    description: str = ""
    item: str | None = None
    # The tasks that must have run before what this task's globs match is known (they write
    # a directory output its globs cover, or are a foreach over such files): it waits for them,
    # and the build expands its inputs again when it becomes ready.
    known_after: tuple[str, ...] = ()
    # A group standing for the instances of a foreach over files this build writes: when it
    # becomes ready, the build finds the instances again, on the disk as its producers left it.
    expands: bool = False
    # Runs alone, on bflow's own stdin, stdout and stderr (the terminal), its output not saved.
    interactive: bool = False
    cache: bool | None = None  # the `cache` key; None: cached when the task has outputs
    py: str = ""  # "module:function": a Python function is the action (`pytasks`)
    py_code: str = ""  # the content hash of that function's module file, taken at load
    vars: tuple[tuple[str, str], ...] = ()  # a py task's: all the vars, its `ctx.vars`
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()  # conditions to run at all
    # `inputs` declared, though none may match now (a lint task's `src/**/*.py` in a project
    # with no such file yet): it runs when that set changes, not on every build
    declares_inputs: bool = False

    @property
    def is_group(self) -> bool:
        return not self.commands and not self.py

    @property
    def shown(self) -> tuple[str, ...]:
        """What `-n`, `-v` and a failure show as the task's commands."""
        return (f"py {self.py}",) if self.py else self.commands


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
    globs: frozenset[str] = frozenset()  # the patterns matched against those directories
    # The declarations (TaskDecl fields, as plain tuples the project cache can store) of the
    # tasks with `known_after`, which the build expands again (`project.Expander`).
    decls: tuple[tuple[object, ...], ...] = ()
    # The document a project made from Python objects came from (None: from a Flowfile).
    data: Mapping[str, Any] | None = None
    # Loaded with values no file holds ({env.NAME}, computed vars, {args}): the caches keyed
    # on the Flowfile's bytes cannot vouch for it.
    volatile: bool = False
    args: Passthrough | None = None  # kept so that a reload gives the tasks the same {args}
    # Python files the project depends on besides the Flowfile, with their content hashes:
    # the modules of `py` tasks, a build.py and its local imports. The caches of the loaded
    # project check them as they check the Flowfile.
    code: tuple[tuple[str, str], ...] = ()
    # Inputs named as they are (no glob) that no task writes: sources the user keeps, even a
    # file a task that no longer exists wrote (`prune` leaves it to them).
    sources: frozenset[str] = frozenset()
    # The disk the project was loaded from, when not the real one at `root` (an in-memory one
    # in tests). Never cached: a project loaded from a cache is on the real disk.
    fs: FileSystem | None = None

    def disk(self) -> FileSystem:
        """The disk the project lives on, rooted at its root: builds read and write there."""
        if self.fs is not None:
            return self.fs
        from buildflow.fs import LocalFileSystem

        return LocalFileSystem(self.root)

    @property
    def cache_dir(self) -> str:
        return os.path.join(self.root, self.settings.cache_dir)

    @property
    def default_jobs(self) -> int:
        """Commands run at once when `-j` is not given: `settings.jobs`, else one per CPU."""
        return self.settings.jobs or os.cpu_count() or 1
