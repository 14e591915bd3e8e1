"""What `bflow watch` listens to: the files and directories whose changes can make the selected
tasks stale, and the paths a build writes itself, which must never trigger a build."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from buildflow.model import Project
from buildflow.state import TaskRecord


class Change(NamedTuple):
    """One path that changed. `structural` when it was created, deleted or moved: that may
    change what a glob matches, so the Flowfile is resolved again."""

    path: str
    structural: bool = False


class WatchSet(NamedTuple):
    """Absolute paths: watched files, directories whose entries count, and ignored paths;
    `code`, the Python files the project was loaded with (`Project.code`: the modules of its
    `py` tasks) and the file a symlinked Flowfile points to, whose edit, like the Flowfile's,
    asks for loading it again. A path through a symlink is watched where it leads too: an
    edit there makes no event at the link (Make and Ninja follow links when they stat)."""

    root: str
    flowfile: str
    inputs: frozenset[str]
    dirs: frozenset[str]
    ignored: frozenset[str]
    ignored_dirs: tuple[str, ...]
    code: frozenset[str] = frozenset()
    # The directories the inputs are in, and theirs up to the root: one deleted or moved
    # (a directory renamed over another) changes the inputs with no event of their own.
    input_dirs: frozenset[str] = frozenset()
    # Outputs the last build may have removed (`also_ignoring`): ignored while they are gone.
    removed: frozenset[str] = frozenset()

    @classmethod
    def of(cls, project: Project, names: Iterable[str], records: Mapping[str, TaskRecord],
           written: Iterable[str] = ()) -> WatchSet:
        """The inputs of the tasks `names` (and the depfile inputs their last runs found), the
        directories their globs listed, and the Flowfile; minus everything a build writes or
        removes: declared outputs, depfiles, outputs `records` hold (a build removes those
        of tasks that no longer exist), and the files bflow `written` itself (absolute: a
        trace, a report page), which a glob may match."""
        root = project.root

        def absolute(path: str) -> str:
            return os.path.normpath(os.path.join(root, path))

        tasks = [project.tasks[name] for name in names]
        outputs = {absolute(path) for task in project.tasks.values() for path in task.outputs}
        outputs.update(absolute(path) for record in records.values() for path in record.outputs)
        depfiles = {absolute(task.depfile) for task in project.tasks.values() if task.depfile}
        ignored_dirs = (absolute(project.cache_dir), *sorted(
            absolute(path) for task in project.tasks.values() for path in task.dir_outputs))
        paths = {absolute(path) for task in tasks for path in task.inputs}
        # a `when.exists` flag that appears or goes makes its task run or be skipped
        paths.update(absolute(path) for task in tasks for key, values in task.when
                     if key == "exists" for path in values)
        for task in tasks:
            record = records.get(task.name)
            if record is not None:
                paths.update(map(absolute, record.depfile_inputs))
        ignored = frozenset(outputs | depfiles | set(written))
        code = {path for path, _ in project.code}
        inputs = _with_targets(p for p in paths if not _ignored(p, ignored, ignored_dirs))
        return cls(root, project.flowfile, inputs,
                   _with_targets(d for d in map(absolute, project.globbed_dirs)
                                 if not _ignored(d, ignored, ignored_dirs)),
                   ignored, ignored_dirs,
                   frozenset(code | (_with_targets([project.flowfile]) - {project.flowfile})),
                   _ancestors(inputs, root))

    def also_ignoring(self, before: WatchSet) -> WatchSet:
        """This set, also ignoring what `before` ignored: the set a build ran under knew the
        outputs it could remove, which the records made after it no longer name. Never what
        this set watches: an output may have become a source (its task deleted, the file kept
        by hand), and ignoring it would be for good. A removed file is ignored only while it
        is gone: one written there later (by hand, a source now) is a change as any."""
        watched = self.inputs | self.dirs | self.code | {self.flowfile}
        kept_dirs = [d for d in before.ignored_dirs
                     if not any(_ignored(path, frozenset(), (d,)) for path in watched)]
        return self._replace(removed=(before.ignored | before.removed) - watched - self.ignored,
                             ignored_dirs=tuple(dict.fromkeys((*self.ignored_dirs, *kept_dirs))))

    def relevant(self, change: Change) -> bool:
        """Whether `change` can make a selected task stale or change the Flowfile."""
        path = change.path
        if _ignored(path, self.ignored, self.ignored_dirs):
            return False
        if path in self.removed and not os.path.lexists(path):
            return False
        if path == self.flowfile or path in self.inputs or path in self.code:
            return True
        return change.structural and (path in self.dirs or os.path.dirname(path) in self.dirs
                                      or path in self.input_dirs)

    def changes_inputs(self, change: Change) -> bool:
        """Whether `change` is to an input, or moves or deletes a directory holding one."""
        return change.path in self.inputs or (change.structural
                                              and change.path in self.input_dirs)

    def directories(self) -> set[str]:
        return {*self.dirs, *map(os.path.dirname, (*self.inputs, *self.code)),
                os.path.dirname(self.flowfile)}

    def roots(self) -> set[tuple[str, bool]]:
        """(directory, recursive) pairs to hand the observer. Inside the project root, one
        recursive watch per top-level directory rather than one per directory: inotify allows
        few instances per user, and watchdog uses one per watch."""
        found: set[tuple[str, bool]] = set()
        for directory in self.directories():
            rel = os.path.relpath(directory, self.root)
            top = os.path.join(self.root, rel.split(os.sep)[0])
            if rel == os.pardir or rel.startswith(os.pardir + os.sep):
                found.add((_nearest_existing(directory), False))
            elif rel != os.curdir and os.path.isdir(top):
                found.add((top, True))
            else:
                found.add((self.root, False))
        return found


def _nearest_existing(directory: str) -> str:
    """`directory`, or while it is not there the nearest directory above it that is, whose
    events show it made again (a header's directory outside the project, deleted and
    restored)."""
    while not os.path.isdir(directory) and os.path.dirname(directory) != directory:
        directory = os.path.dirname(directory)
    return directory


def _ancestors(paths: Iterable[str], root: str) -> frozenset[str]:
    """The directories of `paths` and theirs, up to `root` (or to `/`, for a path outside)."""
    found: set[str] = set()
    for path in paths:
        directory = os.path.dirname(path)
        while directory not in found and directory != root and directory != os.sep:
            found.add(directory)
            directory = os.path.dirname(directory)
    return frozenset(found)


def _with_targets(paths: Iterable[str]) -> frozenset[str]:
    """`paths`, and where one leads through a symlink, the path it leads to."""
    found = set(paths)
    found.update([real for path in found if (real := os.path.realpath(path)) != path])
    return frozenset(found)


def _ignored(path: str, files: frozenset[str], dirs: tuple[str, ...]) -> bool:
    return path in files or any(path == d or path.startswith(d + os.sep) for d in dirs)
