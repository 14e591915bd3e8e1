"""The watch loop: build, wait for changes that matter, let a burst settle, build again.

Changes come from a `ChangeSource` (watchdog in `buildflow.observer`; a scripted queue in tests),
so the debounce and rebuild decisions run without sleeping. Changes that arrive during a build
wait in the source and make exactly one more build after it. The build itself goes through the
`build` callable (the engine, with the command line's options), which installs its own Ctrl-C
handling: an interrupted build returns 130 and ends the watch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection
from typing import Protocol

from buildflow import engine
from buildflow.errors import EXIT_INTERRUPTED, EXIT_OK, FatalError, Interrupted
from buildflow.model import Project, Task
from buildflow.watchset import Change, WatchSet


class ChangeSource(Protocol):
    def watch(self, roots: Collection[tuple[str, bool]]) -> None:
        """Watch exactly these (directory, recursive) pairs."""

    def get(self, timeout: float | None) -> Change | None:
        """The next change, waiting up to `timeout` seconds (None: forever); None if none."""


class WatchStatus(Protocol):
    """What the loop tells the user between builds."""

    def idle(self, watched: WatchSet, exit_status: int) -> None: ...

    def changed(self, paths: list[str]) -> None: ...

    def reloaded(self) -> None: ...

    def invalid(self, message: str) -> None: ...

    def error(self, message: str) -> None: ...


class Watcher:
    def __init__(self, project: Project, targets: list[str], *, source: ChangeSource,
                 status: WatchStatus, build: Callable[[Project], int],
                 load: Callable[[], Project], debounce: float = 0.1, cwd: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.project = project
        self.targets = targets
        self.cwd = cwd
        self.names = engine.selected(project, targets, cwd)
        self.source = source
        self.status = status
        self.build = build
        self.load = load
        self.debounce = debounce
        self.clock = clock
        self.watched = self._watch()

    def run(self) -> int:
        """Build, then rebuild after every change that matters. Returns 130 when a build was
        interrupted, 0 when Ctrl-C (or SIGTERM) came between builds."""
        try:
            while self._build() != EXIT_INTERRUPTED:
                while not self._wait_for_work():
                    pass
            return EXIT_INTERRUPTED
        except (KeyboardInterrupt, Interrupted):
            return EXIT_OK

    def _build(self) -> int:
        try:
            exit_status = self.build(self.project)
        except FatalError as exc:  # the lock, the state: say so and keep watching
            self.status.error(str(exc))
            exit_status = exc.exit_code
        self.watched = self._watch()  # the build may have found new depfile inputs
        if exit_status != EXIT_INTERRUPTED:
            self.status.idle(self.watched, exit_status)
        return exit_status

    def _watch(self) -> WatchSet:
        watched = WatchSet.of(self.project, self.names, engine.open_state(self.project).tasks)
        self.source.watch(watched.roots())
        return watched

    def collect(self) -> list[Change]:
        """Block until a relevant change, then gather more until `debounce` seconds pass
        without one; irrelevant changes (outputs, the cache dir) neither count nor wait."""
        batch: list[Change] = []
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            change = self.source.get(timeout)
            if change is None:
                if batch:
                    return batch
            elif self.watched.relevant(change):
                batch.append(change)
                deadline = self.clock() + self.debounce

    def _wait_for_work(self) -> bool:
        """Take one batch of changes; return True when it calls for a build."""
        batch = self.collect()
        flowfile = any(change.path == self.watched.flowfile for change in batch)
        inputs = any(change.path in self.watched.inputs for change in batch)
        if flowfile or any(change.structural for change in batch):
            before = self._tasks()
            try:
                self._reload()
            except FatalError as exc:
                self.status.invalid(str(exc))
                return self._announce(batch) if inputs else False
            if flowfile:
                self.status.reloaded()
            elif not inputs and self._tasks() == before:
                self.watched = self._watch()  # e.g. a new file no glob matches
                return False
        return self._announce(batch)

    def _announce(self, batch: list[Change]) -> bool:
        root = str(self.project.root)
        self.status.changed(sorted({os.path.relpath(change.path, root) for change in batch}))
        return True

    def _reload(self) -> None:
        """Load the Flowfile again; on an error keep the last good project."""
        project = self.load()
        self.names = engine.selected(project, self.targets, self.cwd)
        self.project = project

    def _tasks(self) -> list[Task]:
        return [self.project.tasks[name] for name in self.names]
