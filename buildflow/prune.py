"""Outputs left behind by tasks that no longer exist (a foreach source was deleted, a task was
renamed, a branch was switched) are removed before a build, so a glob never picks up a file a
clean build would not have. Only files still byte-identical to what bflow recorded are removed,
which is the expected clean-up and said as information; anything edited since is left in place,
with a warning. A vanished task's depfile goes too (bflow records no hash of it: it is the
task's own file, which `bflow clean` deletes with its outputs), unless a current task names
that path."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Container, Iterable, Mapping

from buildflow import foreach, globbing, placeholders
from buildflow.errors import BuildError
from buildflow.flowfile import Flowfile, TaskDecl
from buildflow.fs import FileSystem
from buildflow.hashing import MISSING, Hasher
from buildflow.model import Project, Task
from buildflow.staleness import depfile_of
from buildflow.state import NOTHING_LEFT, State


def leftovers(flowfile: Flowfile) -> frozenset[str]:
    """The files the records hold that `flowfile` no longer declares (outputs of tasks it no
    longer has, by name, foreach instances by their task's, and outputs a task it has no
    longer declares, `b1/{stem}.t1` become `b1/{stem}.u1`), still on disk unchanged, a
    directory output's as the files in it: what a build removes before it builds
    (`dead_files`, with no project to keep anything for). Asked only of a Flowfile that does
    not load; empty when its state or one of those files cannot be read."""
    from buildflow.fs import LocalFileSystem

    root = flowfile.root
    decls = {decl.name: decl for decl in flowfile.tasks}
    variables = dict(flowfile.vars)
    fs = LocalFileSystem(root)
    try:
        state = State(os.path.join(root, flowfile.settings.cache_dir, "state")).load()
        names: list[str] = []
        outputs: set[str] = set()
        dirs: set[str] = set()
        depfiles: set[str] = set()
        for name in (*state.tasks, *state.left):
            if not _vanished(name, decls, variables, fs):
                declared = _declared_now(name, decls, variables)
                if declared is None:
                    continue  # what it declares now cannot be told: its files stay
                outputs.update(declared[0])
                dirs.update(declared[1])
                depfiles.update(declared[2])
            names.append(name)
        still = _Kept(outputs, (), ())
        still.dirs, still.depfiles = dirs, depfiles
        removable, _ = _outputs_on_disk(state, names, still, Hasher(fs, state.stats))
    except BuildError:
        return frozenset()
    nothing = _Kept((), (), ())
    return frozenset(file for _, path in removable for file in _removal(fs, path, nothing))


def _declared_now(name: str, decls: Mapping[str, TaskDecl], variables: Mapping[str, str]
                  ) -> tuple[list[str], list[str], list[str]] | None:
    """The outputs, the directory outputs among them and the depfile (none or one) the task
    a record is of, still in the Flowfile, declares now; None when that cannot be told (a
    template uses a var that is not plain)."""
    base, colon, path = name.partition(":")
    decl = decls[base]
    item = foreach.item_of(decl, variables, path) if colon else None
    outputs = foreach.output_paths(decl, foreach.instance_values(variables, decl, item))
    depfile = foreach.depfile_path(decl, variables, item) if item is not None else \
        decl.depfile and globbing.normalize(placeholders.expand(
            decl.depfile, foreach.instance_values(variables, decl, None)))
    if any("{" in path for path in (*outputs, depfile or "")):
        return None
    return outputs, [path for path, template in zip(outputs, decl.outputs)
                     if template.endswith("/")], [depfile] if depfile else []


def _vanished(name: str, decls: Mapping[str, TaskDecl], variables: Mapping[str, str],
              fs: FileSystem) -> bool:
    """Whether the task a record is of is gone from the Flowfile `decls` come from: its task,
    or, for a foreach instance, its task's `foreach` or its item (deleted, or no longer
    matched). A var the globs use that is not plain (computed) leaves the instance be."""
    base, colon, item = name.partition(":")
    decl = decls.get(base)
    if decl is None or not colon:
        return decl is None
    if not decl.foreach or fs.stat(item) is None:
        return True
    if any("{" in placeholders.expand(pattern, variables) for pattern in decl.foreach):
        return False
    return foreach.matching_glob(decl, variables, item) is None


def dead_files(project: Project, state: State, hasher: Hasher) -> set[str]:
    """The files a build of `project`, just loaded, removes before it decides the tasks that
    read them: the recorded outputs no current task declares that are still byte-identical to
    what bflow recorded, and of a directory among them, the files in it but those kept. The
    records of instances of a foreach whose instances the build finds again count too: by the
    time it decides the tasks after them, it has removed what those it no longer finds wrote.
    What `status`, `-n` and `explain` take as gone, so that they say what `build` does."""
    kept = _Kept.of(project)
    removable, _ = _dead(project, state, hasher, kept, found_later=True)
    return {file for _, path in removable for file in _removal(hasher.fs, path, kept)}


def recorded_outputs(project: Project, state: State, hasher: Hasher, names: Iterable[str]
                     ) -> tuple[list[tuple[str, list[str]]], list[tuple[str, str]]]:
    """What the records of `names` hold that is on disk and no current task declares, as
    removable (task, files) pairs, a directory given as the files in it but those the project
    keeps, and modified (task, path) pairs: for `bflow clean` of instances the project does
    not hold now (a foreach over files a build has not written again), and of what a task no
    longer declares (`site/` become `site/c.htm`)."""
    kept = _Kept.of(project)
    removable, modified = _outputs_on_disk(state, names, kept, hasher)
    return [(name, _removal(hasher.fs, path, kept)) for name, path in removable], modified


def _removal(fs: FileSystem, path: str, kept: _Kept) -> list[str]:
    """The files removing the dead output `path` takes: itself, or of a directory holding
    `kept` paths, every other file in it."""
    inside = _kept_inside(fs, path, kept)
    return [path] if inside is None else _others_in(fs, path, inside)


def _dead(project: Project, state: State, hasher: Hasher, kept: _Kept, *,
          found_later: bool = False) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    return _outputs_on_disk(state, (name for name in (*state.tasks, *state.left)
                                    if found_later or not _found_later(project, name)),
                            kept, hasher)


def _found_later(project: Project, name: str) -> bool:
    """Whether `name` is an instance of a foreach over files the build writes, which the
    build finds (or finds gone) once their producers have run. A record under the foreach's
    own name is another task's, from before the name was such a foreach."""
    base, colon, _ = name.partition(":")
    return bool(colon) and getattr(project.tasks.get(base), "expands", False)


class _Kept:
    """The paths a build keeps whoever wrote them: declared outputs and depfiles of `tasks`,
    and files a task names as a source (a generated file the user now keeps by hand: `inputs
    = ["config.txt"]` after the task that wrote it was deleted)."""

    def __init__(self, outputs: Collection[str], sources: Collection[str],
                 tasks: Iterable[Task]) -> None:
        self.outputs, self.sources = outputs, sources
        self.depfiles: set[str] = set()
        self.dirs: set[str] = set()  # the directory outputs among `outputs`
        for task in tasks:
            if task.depfile:
                self.depfiles.add(task.depfile)
            self.dirs.update(task.dir_outputs)

    @classmethod
    def of(cls, project: Project, *, found_later: bool = True) -> _Kept:
        """What a build of `project` keeps; without `found_later`, not what instances of a
        foreach over files the build writes declare (found in what an earlier build left, they
        may be gone once their producers have run: a vanished task's output there is removed,
        and such an instance, if it stays, runs and writes it)."""
        if found_later or not any(task.expands for task in project.tasks.values()):
            return cls(project.graph.producer, project.sources, project.tasks.values())
        tasks = [task for name, task in project.tasks.items() if not _found_later(project, name)]
        return cls({path for task in tasks for path in task.outputs}, project.sources, tasks)

    def also(self, files: Collection[str]) -> _Kept:
        """What this keeps, and `files` too."""
        more = _Kept(self.outputs, {*self.sources, *files}, ())
        more.depfiles, more.dirs = self.depfiles, self.dirs
        return more

    def of_other_kind(self, path: str, hasher: Hasher) -> bool:
        """Whether the recorded output at `path`, declared now, is of the other kind than
        declared: a tree bflow recorded where a file output is declared now (`gen/` become
        `gen`), or a file where a directory output is. Recorded files have stat entries and
        trees do not, so only those that may differ cost a stat."""
        if (path in self.dirs) != (path in hasher.cache):
            return False
        st = hasher.fs.stat(path)
        return st is not None and st.is_dir != (path in self.dirs)

    def __contains__(self, path: object) -> bool:
        return path in self.outputs or path in self.sources or path in self.depfiles

    def below(self, directory: str) -> list[str]:
        """The kept paths inside `directory` (a dead directory output), sorted."""
        inside = directory + "/"
        return sorted(path for paths in (self.outputs, self.sources, self.depfiles)
                      for path in paths if path.startswith(inside))


def _outputs_on_disk(state: State, names: Iterable[str], declared: _Kept,
                     hasher: Hasher) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The outputs the records of `names` hold that are not `declared` and are on disk, as
    (task, path): those still byte-identical to what bflow recorded, which go, and those
    modified since, which stay."""
    removable: list[tuple[str, str]] = []
    modified: list[tuple[str, str]] = []
    for name in names:
        record = state.tasks.get(name)
        left = state.left.get(name, NOTHING_LEFT)
        outputs, depfile = (record.outputs, depfile_of(record.action)) if record is not None \
            else (left.outputs, left.depfile)
        for path, digest in outputs.items():
            if digest == MISSING or path in declared and not declared.of_other_kind(path,
                                                                                     hasher):
                continue
            current = hasher.file_hash(path)
            if current == digest:
                removable.append((name, path))
            elif current != MISSING:
                modified.append((name, path))
        if depfile and depfile not in declared and (st := hasher.fs.stat(depfile)) is not None \
                and not st.is_dir:  # a directory there is no depfile the task wrote
            removable.append((name, depfile))
    return removable, modified


def prune_dead_outputs(project: Project, state: State, hasher: Hasher,
                       say: Callable[[str], None],
                       note: Callable[[str], None] | None = None) -> bool:
    """Remove recorded outputs that no current task declares; forget the records of tasks
    that no longer exist. Returns whether any file was removed (globs may now match less:
    the caller loads the project again and calls again, until none is). A vanished task's
    record that holds an output a current task declares stays while files go: that task may
    be an instance found from a file removed now, gone once the project is loaded again, and
    the output then the record's to remove. The removals are told to `note` (information),
    a file left in place to `say` (a warning), once: as its record goes, or by the last call."""
    kept = _Kept.of(project, found_later=False)
    removable, modified = _dead(project, state, hasher, kept)
    removable, keeping = _untracked(project, removable, kept, note or say)
    removed = _remove(hasher, removable, [], project.tasks, keeping, say, note)
    tasks = project.tasks
    vanished = [name for name in (*state.tasks, *state.left)
                if (name not in tasks or tasks[name].expands) and not _found_later(project, name)]
    going = set(vanished) if not removed else \
        {name for name in vanished if not any(path in kept for path in _recorded(state, name))}
    _left_in_place([(name, path) for name, path in modified if not removed or name in going],
                   say)
    state.forget([name for name in vanished if name in going])
    return removed


def _untracked(project: Project, removable: list[tuple[str, str]], kept: _Kept,
               say: Callable[[str], None]) -> tuple[list[tuple[str, str]], _Kept]:
    """`removable` less the files git tracks, and `kept` with them: a clean checkout has
    those (a branch switched to, where the file is committed and no task writes it), so a
    clean build would see them too. Asked of git only when something is to be removed."""
    if not removable or project.fs is not None:  # a disk in memory is in no repository
        return removable, kept
    from buildflow import gitfiles

    tracked = gitfiles.tracked_among(project.root, [path for _, path in removable])
    if not tracked:
        return removable, kept
    for name, path in removable:
        if path in tracked:
            say(f"left {path} in place: task '{name}' wrote it, but git tracks it")
    return [(name, path) for name, path in removable if path not in tracked], \
        kept.also(tracked)


def _recorded(state: State, name: str) -> Iterable[str]:
    """The outputs task `name`'s record holds: of its last success, else of its failed run."""
    record = state.tasks.get(name)
    return record.outputs if record is not None else state.left.get(name, NOTHING_LEFT).outputs


def prune_instances(project: Project, state: State, hasher: Hasher, gone: list[str],
                    found: Iterable[str], tasks: Mapping[str, Task], say: Callable[[str], None],
                    note: Callable[[str], None]) -> bool:
    """During a build, once a foreach's instances are found again: remove the recorded outputs
    of the instances `gone` (their item is no longer written), and those the records of the
    instances `found` hold that no task of the build (`tasks`) declares now (the Flowfile
    renamed an output or the depfile), as a build removes those of vanished tasks before it
    starts (so a glob over them never sees them); forget the records of those gone. Returns
    whether any file was removed."""
    outputs = {path for task in tasks.values() for path in task.outputs}
    kept = _Kept(outputs, project.sources, tasks.values())
    removable, modified = _outputs_on_disk(state, [*gone, *found], kept, hasher)
    removed = _remove(hasher, removable, modified, tasks, kept, say, note)
    state.forget(gone)
    return removed


def _remove(hasher: Hasher, removable: list[tuple[str, str]], modified: list[tuple[str, str]],
            tasks: Container[str], kept: _Kept, say: Callable[[str], None],
            note: Callable[[str], None] | None) -> bool:
    """Remove what is `removable`: of a directory holding `kept` paths (a file the old
    directory output wrote, now a source), every other file. What was `modified` since is
    left, with a warning."""
    _left_in_place(modified, say)
    fs = hasher.fs
    removed = False
    for name, path in removable:
        inside = _kept_inside(fs, path, kept)
        gone = "no longer declares it" if name in tasks else "no longer exists"
        try:
            if not inside:
                if not fs.remove(path):
                    continue
                (note or say)(f"removed {path}, written by task '{name}', which {gone}")
            else:
                others = _others_in(fs, path, inside)
                if not others:  # nothing but what is kept: nothing to remove, now or again
                    continue
                for file in others:
                    fs.remove(file)
                (note or say)(f"removed the files in {path}, written by task '{name}', which "
                              f"{gone}, but {', '.join(inside)}, which the Flowfile names now")
        except OSError as exc:
            say(f"cannot remove {path}, written by task '{name}', which {gone}: "
                f"{exc.strerror}; check the permissions of its directory")
            continue
        removed = True
    return removed


def _left_in_place(modified: list[tuple[str, str]], say: Callable[[str], None]) -> None:
    for name, path in modified:
        say(f"left {path} in place: task '{name}' wrote it but no longer declares it, "
            f"and it was modified since; delete it by hand if it is not needed")


def _kept_inside(fs: FileSystem, path: str, kept: _Kept) -> list[str] | None:
    """For a dead directory output, the kept files in it (a file it wrote that the Flowfile
    now names as a source), which stay while the others go; None for a file or a link. Only
    a directory can hold one, so a file costs a stat, not a look through every kept path."""
    st = fs.stat(path)
    if st is None or not st.is_dir or fs.link_target(path) is not None:
        return None
    return kept.below(path)


def _others_in(fs: FileSystem, directory: str, kept: list[str]) -> list[str]:
    """The files in `directory` but the `kept` ones."""
    return [file for rel in fs.list_tree(directory) if (file := f"{directory}/{rel}") not in kept]

