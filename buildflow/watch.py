"""The watch loop: build, wait for changes that matter, let a burst settle, build again.

Changes come from a `ChangeSource` (watchdog in `buildflow.observer`; a scripted queue in tests),
so the debounce and rebuild decisions run without sleeping. Changes that arrive during a build
wait in the source and make exactly one more build after it. The build itself goes through the
`build` callable (the engine, with the command line's options), which installs its own Ctrl-C
handling: an interrupted build returns 130 and ends the watch. Ctrl-C before the builder runs
(while the build waits for the project lock) unwinds out of `run`, which the CLI turns into 130
too; Ctrl-C while waiting for changes, or after a build has finished (as its hooks run), ends
the watch with 0.

A reload can add watches (a new top-level directory a `**` glob covers, or a directory replaced
since its watch was placed). A file created in such a directory after the reload's walk but
before its watch was added makes no event, so whenever watches were added the Flowfile is
loaded once more, after they are in place.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection
from typing import Protocol

from buildflow import engine
from buildflow.errors import EXIT_INTERRUPTED, EXIT_OK, FatalError, Interrupted, UsageError
from buildflow.hashing import UNKNOWN
from buildflow.model import Project, Task
from buildflow.watchset import Change, WatchSet


class ChangeSource(Protocol):
    def watch(self, roots: Collection[tuple[str, bool]]) -> bool:
        """Watch exactly these (directory, recursive) pairs; whether a watch was placed (a
        new one, or one again on a directory replaced since)."""

    def get(self, timeout: float | None) -> Change | None:
        """The next change, waiting up to `timeout` seconds (None: forever); None if none."""


class WatchStatus(Protocol):
    """What the loop tells the user between builds."""

    def idle(self, watched: WatchSet, exit_status: int) -> None: ...

    def changed(self, paths: list[str]) -> None: ...

    def reloaded(self) -> None: ...

    def invalid(self, message: str) -> None: ...

    def error(self, message: str) -> None: ...


class BuildOver(Exception):
    """Raised by `build` for Ctrl-C or SIGTERM after its build had finished (as its hooks ran):
    the watch ends as it does between builds."""


class Watcher:
    def __init__(self, project: Project, targets: list[str], *, source: ChangeSource,
                 status: WatchStatus, build: Callable[[Project], int],
                 load: Callable[[], Project], debounce: float = 0.1, cwd: str | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 ran: Callable[[], Collection[str]] | None = None,
                 written: Collection[str] = ()) -> None:
        """`ran`: the tasks the last build ran (or restored, or failed in); without it, every
        task it was asked for. `written`: the files each build writes besides its outputs (a
        trace, a report page), which never make one."""
        self.project = project
        self.here = os.getcwd()  # entered again when removed and made anew (a restore)
        self.written = written
        self.targets = targets
        self.cwd = cwd
        self.names = engine.selected(project, targets, cwd)
        self.source = source
        self.status = status
        self.build = build
        self.load = load
        self.ran = ran
        self.debounce = debounce
        self.clock = clock
        self.roots: set[tuple[str, bool]] = set()  # what the source watches
        self.placed = False  # whether the last `_watch` placed a watch
        self.watched = self._watch()
        self.built_with = self._known_at_load()
        self.broken: tuple[bytes | None, str] | None = None  # the Flowfile error last reported

    def run(self) -> int:
        """Build, then rebuild after every change that matters. Returns 130 when a build was
        interrupted, 0 when Ctrl-C (or SIGTERM) came between builds (`BuildOver`);
        KeyboardInterrupt or `Interrupted` raised by `build` before its builder took over
        propagate."""
        while True:
            try:
                exit_status = self._build()
            except BuildOver:
                return EXIT_OK
            if exit_status == EXIT_INTERRUPTED:
                return EXIT_INTERRUPTED
            during = self.watched
            built = set(self.names if self.ran is None else self.ran())
            self.built_with = self._known_at_load()
            try:
                # The build may have found new depfile inputs, instances of a foreach over
                # files it wrote, and removed outputs of tasks that no longer exist, whose
                # events are still to come: never a change.
                self._load_as_built()
                self.watched = self.watched.also_ignoring(during)
                self.status.idle(self.watched, exit_status)
                unknown = self._changed_while_running(built)
                if built <= set(self.names) and not unknown:
                    while not self._wait_for_work():
                        pass
                else:
                    # A task the build ran is gone (its source deleted meanwhile), which the
                    # deletion's event, judged by the project loaded now, would not show:
                    # build again, which removes what it wrote. That is the one more build the
                    # changes made meanwhile call for: it reads the disk they left.
                    while self.source.get(0) is not None:
                        pass
                    if unknown:
                        self.status.changed(unknown)
            except (KeyboardInterrupt, Interrupted):
                return EXIT_OK

    def _known_at_load(self) -> dict[str, Task] | None:
        """The selected tasks as the load makes them, where the load alone knows them (no task
        of the build must run first). Kept as the last build loaded them (`built_with`): a
        change made while it ran (a file its glob matched or its foreach item deleted or
        added, its `py` module edited) is in the project loaded after it, so its event, judged
        against that project alone, would change nothing. None for a project with values no
        file holds (computed vars), which differs at every load."""
        if self.project.volatile:
            return None
        tasks = self.project.tasks
        return {name: tasks[name] for name in self.names if not tasks[name].known_after}

    def _changed_while_running(self, built: set[str]) -> list[str]:
        """The files that tasks the build ran read and whose stat changed while they ran
        (recorded unknown: the tasks are stale), as the changed line names them. They call
        for one more build, as any change made during a build does, though no event may tell
        of it: a `touch` changes only the file's times, which the watch does not count, and a
        file a first depfile named may lie where no watch was during the build. Asked once
        the watches are placed again after the build (`_watch`, which read its records)."""
        root = self.project.root
        return sorted({os.path.relpath(os.path.join(root, path), root)
                       for name in built if (record := self.records.get(name)) is not None
                       for path, digest in (*record.inputs.items(),
                                            *record.depfile_inputs.items())
                       if digest == UNKNOWN})

    def _build(self) -> int:
        try:
            self._enter_working_directory()
            return self.build(self.project)
        except FatalError as exc:  # the lock, the state: say so and keep watching
            self.status.error(str(exc))
            return exc.exit_code

    def _enter_working_directory(self) -> None:
        """The directory the watch runs in, removed and made again at its path since the last
        build (`rm -rf proj && cp -r backup proj`, a clone made anew): the process is still in
        the removed one, where nothing is found; it enters the one at the path, as a shell's
        `cd .` does. UsageError while there is none."""
        try:
            os.getcwd()
        except FileNotFoundError:
            try:
                os.chdir(self.here)
            except OSError:
                raise UsageError(f"{self.here}: the directory bflow watch runs in was removed; "
                                 "it builds again once a change comes there") from None

    def _load_as_built(self) -> None:
        """The project as the build left the disk: its globs, and the instances of a foreach
        over files the build wrote, which the project loaded before it did not know; watched
        as it stands. A Flowfile broken meanwhile is reported, and the last good one kept."""
        try:
            self._reload()
        except FatalError as exc:
            self._report_broken(str(exc))

    def _watch(self) -> WatchSet:
        # the records as the last build left them, kept for `_changed_while_running`
        self.records = engine.open_state(self.project).tasks
        watched = WatchSet.of(self.project, self.names, self.records, self.written)
        self.roots = watched.roots()
        self.placed = bool(self.source.watch(self.roots))
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
        inputs = any(map(self.watched.changes_inputs, batch))
        code = any(change.path in self.watched.code for change in batch)
        # A project that does not load is loaded again on any change (a build would stop at
        # its error); one whose vars run commands, on every build, as a plain build does.
        if flowfile or code or self.broken is not None or self.project.volatile or \
                any(change.structural for change in batch):
            before = self._tasks()
            try:
                self._reload()
            except FatalError as exc:
                self._report_broken(str(exc))
                return False  # nothing builds until it loads: it fails the checks made at load
            if flowfile:
                self.status.reloaded()  # names the Flowfile; the changed line names the rest
                batch = [change for change in batch if change.path != self.watched.flowfile]
            elif not inputs and self._tasks() == before and \
                    self._known_at_load() == self.built_with:
                return False  # e.g. a new file no glob matches
        return self._announce(batch)

    def _report_broken(self, message: str) -> None:
        """Report a Flowfile that does not load once, not again on every later change, until
        its bytes change or it loads again."""
        try:
            with open(self.watched.flowfile, "rb") as handle:
                content: bytes | None = handle.read()
        except OSError:
            content = None
        if self.broken != (content, message):
            self.broken = (content, message)
            self.status.invalid(message)

    def _announce(self, batch: list[Change]) -> bool:
        root = str(self.project.root)
        if batch:
            self.status.changed(sorted({os.path.relpath(change.path, root)
                                        for change in batch}))
        return True

    def _reload(self) -> None:
        """Load the Flowfile again and watch what it covers now, loading again while that adds
        watches (see the module docstring). On an error keep the last good project, watched as
        the disk now stands (a directory of its inputs, deleted and made again, is watched
        anew, so the input written there is seen), and raise once loading again places no
        watch."""
        while True:
            try:
                project = self.load()
            except FatalError:
                self.watched = self._watch()
                if self.placed:
                    continue
                raise
            self.names = engine.selected(project, self.targets, self.cwd)
            self.project = project
            self.broken = None
            before = self.roots
            self.watched = self._watch()
            if self.roots <= before and not self.placed:
                return

    def _tasks(self) -> list[Task]:
        return [self.project.tasks[name] for name in self.names]
