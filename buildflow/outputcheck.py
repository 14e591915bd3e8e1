"""`bflow status --outputs`: do the generated files git tracks hold what a build gives?

The question a pre-commit hook asks, answered without the records (they live in the ignored
cache dir, so a fresh clone has none): build the selected tasks in a scratch copy of what the
index holds (what a commit holds), written as a checkout writes it, then compare every output
the build made with the index's. It adds no staleness rule (the build in the copy decides as
every build does) and writes nothing into the project, its cache dir included, nor into the
user's output cache, which it does not read either: an entry there is what a build on the
disk stored, and a command reading a file it does not declare (an edit not staged) would make
a restored output pass where a clone's build gives another.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from buildflow import engine, events, gitfiles, unmerged
from buildflow.errors import EXIT_OK, FlowfileError, UsageError
from buildflow.flowfile import resolve_path
from buildflow.fs import LocalFileSystem
from buildflow.locate import FLOWFILE_NAMES, canonical_flowfile, shown
from buildflow.model import Project, Task

FIX = "run bflow, then git add it"
# said of a load error a file missing from the copy causes (`FlowfileError.missing`)
MISSING = "in the copy of the files git tracks that bflow status --outputs builds: git add " \
    "what is missing"


class Mismatch(NamedTuple):
    """An output (relative to the root) that is not what a build gives, and how to fix it."""

    path: str
    problem: str


class Comparison(NamedTuple):
    """How many outputs were compared, those that differ, and the tasks that failed in the
    copy (then nothing is compared: an unfinished build gives no answer)."""

    compared: int
    mismatches: list[Mismatch]
    failures: list[events.TaskFailed]


def flowfile_in_index(file: str | None, base: str) -> str:
    """The Flowfile of the project to check, found in the index as a build of a clone of it
    finds it on its disk: at `file` (`-f`, from `base`), else the first in `base` or a parent
    up to the top of the work tree, whether the disk has it or not (deleted but not staged,
    left out by a sparse checkout). One that the disk has and the index lacks, met first, is
    the one the user means: `compare` refuses it (git add it). With neither, the disk's
    search above the repository, or its error."""
    if file is None:
        directory, up = base, gitfiles.place(base).count("/")
        names = [os.path.join(*[os.pardir] * level, name)
                 for level in range(up + 1) for name in FLOWFILE_NAMES]
    else:
        directory, name = os.path.split(canonical_flowfile(os.path.join(base, file)))
        names = [name] if os.fspath(file) else []  # `-f ''`: resolve_path says what to give
    held = gitfiles.held(directory, names)
    for name in names:
        path = os.path.normpath(os.path.join(directory, name))
        if name in held or os.path.isfile(path):
            return path
    return resolve_path(file, None)


def compare(path: str, targets: list[str], overrides: Mapping[str, str],
            cwd: str) -> Comparison:
    """Build `targets` (none: every task that declares outputs) of a copy of what the index
    holds of the project whose Flowfile is at `path`, loaded with `overrides` there (the disk
    may lack its inputs: a sparse checkout), and compare their outputs with the index's."""
    root, flowfile = os.path.split(path)
    with tempfile.TemporaryDirectory(prefix="bflow-outputs-") as temp:
        # the repository one level down: a path leaving it (`../shared`) stays in `temp`,
        # where nothing is, never reaching a directory of /tmp another user may have made
        temp = os.path.realpath(temp)
        top = os.path.join(temp, "repository")
        os.mkdir(top)
        scratch = _in_place(root, top, gitfiles.place(root))
        index = gitfiles.check_out(root, top)
        if flowfile in index.unmerged:
            raise UsageError(f"{path}: unmerged in git's index (in conflict), and bflow status "
                             "--outputs builds a copy of what the index holds (resolve the "
                             f"conflict, then git add {flowfile})")
        if flowfile not in index.files:
            raise UsageError(f"{path}: git does not track it, and bflow status "
                             "--outputs builds a copy of the files git tracks "
                             f"(git add {flowfile})")
        from buildflow.flowfile import load
        from buildflow.project import resolve

        copied = os.path.join(scratch, flowfile)
        try:  # as a fresh clone loads it: no records, no project of a build script
            parsed = load(copied)
        except FlowfileError as exc:  # its text, which the disk may hold fixed, not staged
            fix = "in the Flowfile git's index holds, which bflow status --outputs builds: " \
                f"fix it, then git add {flowfile}"
            raise _as_the_project_s(exc, copied, path, lambda _: fix) from None
        try:
            copy = resolve(parsed, overrides, fs=unmerged.Disk(scratch, index.unmerged))
        except FlowfileError as exc:  # a file on the disk that is not added, or its own
            raise _as_the_project_s(exc, copied, path, lambda problem: MISSING
                                    if problem in exc.missing else "") from None
        except UsageError as exc:  # an override of no var it declares, named as the project's
            raise UsageError(str(exc).replace(shown(copied), shown(path))) from None
        names = targets or [name for name, task in copy.tasks.items() if task.outputs]
        if not names:
            return Comparison(0, [], [])
        moved = _moved(cwd, root, scratch)
        unmerged.refuse_inputs(copy, engine.selected(copy, names, moved), index.unmerged, path)
        _refuse_writing_through(copy, path)
        # built on the copy as it is, and its records in `temp`, wherever the Flowfile's
        # cache_dir leads (a symlink git tracks into the project's own records)
        copy = copy._replace(fs=None, settings=copy.settings._replace(
            cache_dir=os.path.join(temp, "records")))
        reporter = events.Collector()
        result = engine.build(copy, names, keep_going=True, reporter=reporter, cwd=moved,
                              cache=False)
        if result.exit_status != EXIT_OK:
            failed = [e for e in reporter.events if isinstance(e, events.TaskFailed)]
            return Comparison(0, [], failed)
        built = result.project or copy  # set by every build that is not a dry run
        tasks = (built.tasks[name] for name in result.selected)
        outputs = _outputs(scratch, tasks, [*index.files, *index.unmerged])
        return _compared(root, scratch, sorted(outputs), index)


def _as_the_project_s(exc: FlowfileError, copied: str, path: str,
                      where: Callable[[str], str]) -> FlowfileError:
    """`exc`, problems of the copy's Flowfile at `copied` (a temporary path), named as the
    project's at `path`, each said to be `where` it says (nowhere but the project: "")."""
    copy, project = shown(copied), shown(path)
    problems = []
    for problem in exc.problems:
        if problem.startswith(copy):
            said = where(problem)
            problem = f"{project}{problem[len(copy):]}" + (f" ({said})" if said else "")
        problems.append(problem)
    return FlowfileError(problems)


def _refuse_writing_through(copy: Project, path: str) -> None:
    """A UsageError when an output or depfile of the copy is a symlink git tracks that leads
    out of the copy's root: a build there writes through it (`cp a {output}`), into the
    repository's other entries, which the copy links to the real ones, or anywhere else."""
    inside = os.path.join(os.path.realpath(copy.root), "")
    for task in copy.tasks.values():
        for output in (*task.outputs, *((task.depfile,) if task.depfile else ())):
            place = os.path.join(copy.root, output)
            if os.path.islink(place) and \
                    not os.path.realpath(place).startswith(inside):
                raise UsageError(
                    f"{shown(path)}: {output}, an output of task '{task.name}', is a symlink "
                    f"git tracks that leads out of the project ({os.readlink(place)}): a build "
                    "of the copy of the index would write through it, into the real file; "
                    "bflow status --outputs builds no such project (git rm the link, and let "
                    "the task write the file)")


def _in_place(root: str, temp: str, place: str) -> str:
    """The copy's root: at the project's place in its repository under `temp`, with the
    repository's other entries on the way there linked to the real ones (all but `.git`), so
    that a path leaving the root (a monorepo's `../../common/conf.txt`, an `#include` of it)
    reaches the same file as in the project."""
    scratch = os.path.normpath(os.path.join(temp, place))
    real, mirror = root, scratch
    for _ in place.split("/")[:-1]:
        parent, mirror_parent = os.path.dirname(real), os.path.dirname(mirror)
        os.makedirs(mirror, exist_ok=True)
        for entry in os.listdir(parent):
            if entry not in (os.path.basename(real), ".git"):
                os.symlink(os.path.join(parent, entry), os.path.join(mirror_parent, entry))
        real, mirror = parent, mirror_parent
    return scratch


def _moved(cwd: str, root: str, scratch: str) -> str | None:
    """`cwd` in the copy, so that output paths given as targets mean the same files there."""
    relative = os.path.relpath(cwd, root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    return os.path.normpath(os.path.join(scratch, relative))


def _outputs(scratch: str, tasks: Iterable[Task], tracked: Iterable[str]) -> set[str]:
    """The output files of `tasks`: for a directory output, the files the build left in it
    and the tracked files (merged or not) under it."""
    paths: set[str] = set()
    disk = LocalFileSystem(scratch)
    for task in tasks:
        for output in task.outputs:
            if output not in task.dir_outputs:
                paths.add(output)
                continue
            paths.update(path for path in tracked if path.startswith(output + "/"))
            paths.update(f"{output}/{rel}" for rel in disk.list_tree(output))
    return paths


def _compared(root: str, scratch: str, paths: list[str], index: gitfiles.Index) -> Comparison:
    """Each of `paths`, made by the build in `scratch` or held by `index`, against the blob
    the index records: what the commit holds, whatever the file here holds now."""
    built = {path for path in paths if _made(os.path.join(scratch, path))}
    named = _as_git_names(scratch, [path for path in paths if path not in index.files])
    tracked = {path: index.files[name] for path in paths
               if (name := named.get(path, path)) in index.files}
    ignored = gitfiles.ignored(root, scratch, (named.get(path, path) for path in built
                                               if path not in tracked), index.submodules)
    different = gitfiles.differing(root, scratch, {named.get(path, path): os.path.join(
        scratch, path) for path in built if path in tracked}, index)
    minds_modes = gitfiles.minds_modes(root)
    mismatches, compared = [], 0
    for path in paths:
        name = named.get(path, path)
        if name in index.unmerged:  # ignore rules apply to no file the index holds
            compared += 1
            mismatches.append(Mismatch(path, "unmerged in git's index (in conflict): resolve "
                                             f"the conflict ({FIX})"))
            continue
        if name in ignored or (path not in built and path not in tracked):
            continue  # ignored by git, or neither built nor committed: not the commit's
        compared += 1
        if path not in built:
            mismatches.append(Mismatch(path, "git tracks it, but a build does not make it "
                                             "(git rm it)"))
        elif path not in tracked:
            mismatches.append(Mismatch(path, f"a build makes it, but git does not track it "
                                             f"({FIX}, or list it in .gitignore)"))
        elif name in different:
            mismatches.append(Mismatch(path, f"differs from what a build gives ({FIX})"))
        elif minds_modes and tracked[path].mode != gitfiles.SYMLINK and \
                (tracked[path].mode == "100755") != _executable(os.path.join(scratch, path)):
            mismatches.append(Mismatch(path, "its executable bit is not what a build gives "
                                             f"({FIX})"))
    return Comparison(compared, mismatches, [])


def _made(path: str) -> bool:
    """Whether the build left a file or a symlink (pointing anywhere, or nowhere) at `path`."""
    return os.path.islink(path) or os.path.isfile(path)


def _executable(path: str) -> bool:
    return bool(os.stat(path).st_mode & 0o100)


def _as_git_names(root: str, paths: list[str]) -> dict[str, str]:
    """Each of `paths` as git names it: through a symlinked directory of the project
    (`gen -> real/gen`, as the copy at `root` has it from the index), where the file really
    is (`real/gen/out.txt`), which git lists and asks of; a path beyond a symlink is no path
    git takes."""
    real_root = os.path.join(os.path.realpath(root), "")
    names = {}
    for path in paths:
        real = os.path.realpath(os.path.join(root, path))
        if real.startswith(real_root) and (name := real[len(real_root):]) != path:
            names[path] = name.replace(os.sep, "/")
    return names
