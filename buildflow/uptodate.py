"""The no-op fast path: show by stat alone that a build would run nothing, before the project
or the state is loaded.

A build that ends with every selected task up to date leaves a proof in the cache dir:

- what the project was loaded from: the key of the project cache (bflow's code, the Flowfile's
  path and bytes, the overrides), the listing of every directory its globs scanned, and the
  inputs it found outside them;
- the targets asked for, and the identity (size, mtime, inode) of the state file, so a record
  written since (by any build, with any targets) voids it;
- every path the selected tasks read or write (inputs, depfile inputs, outputs), with the
  (size, mtime_ns, inode) and content hash the build saw, checked against every record.

The next build with the same targets checks the proof first. When all of it still holds, a full
build would load the same project, find the same records, hash every file to the same value and
so decide every task up to date: nothing is loaded and nothing runs. A stat is trusted as the
hasher trusts it (the file was hashed safely after its last write); a path whose stat changed or
is too recent is hashed again, and a touched file with the same content keeps the proof (which
is rewritten with the new stats once many files needed hashing). Anything else, or any doubt, falls back to the full build, which writes a new
proof. The check runs under the project lock, taken without waiting: a build in progress sends
this one down the normal path, which waits for it.
"""

from __future__ import annotations

import functools
import marshal
import operator
import os
import time
from collections.abc import Mapping, Sequence

from buildflow.gcpause import paused
from buildflow.identity import Listing, cache_dir_of, is_input_file, listing, project_key
from buildflow.locate import flowfile_path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

    from buildflow.flowcache import Basis
    from buildflow.model import Project
    from buildflow.state import State

FORMAT = 1
FILE_NAME = "uptodate"
RACY_WINDOW_NS = 1_000_000_000  # as the hasher's: a stat is trusted only this long after a write
# Rewrite a refreshed proof only when this many files had to be hashed again: re-hashing a few
# files on every run costs less than rewriting the proof (9 ms for 20,000 paths) once.
REWRITE_MIN = 64
PARALLEL_MIN_PATHS = 4000  # below this, forking a second statter costs more than it saves
ABSENT = (-1, -1, -1)  # the row of a path that must not exist (a depfile input recorded missing)

Row = tuple[int, int, int]  # size, mtime_ns, inode


def check(*, file: str | None, cwd: str, targets: Sequence[str],
          overrides: Mapping[str, str]) -> int | None:
    """The number of tasks a build of `targets` would find up to date, if it would run none;
    None when that cannot be shown cheaply (then build normally)."""
    with paused():  # tens of thousands of rows, all live: collections would find nothing
        return _check(file, cwd, targets, overrides)


def _check(file: str | None, cwd: str, targets: Sequence[str],
           overrides: Mapping[str, str]) -> int | None:
    found = flowfile_path(file, cwd)
    if found is None:
        return None
    flowfile = os.path.realpath(found)  # as the project cache names it
    try:
        with open(flowfile, "rb") as handle:
            data = handle.read()
        cache_dir = cache_dir_of(flowfile, data)
        proof_file = os.path.join(cache_dir, FILE_NAME)
        with open(proof_file, "rb") as handle:
            proof = marshal.loads(handle.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if type(proof) is not tuple or len(proof) != 12 or proof[0] != FORMAT:
        return None
    _, key, root, state_id, skip, dirs, lone_inputs, paths, rows, digests, unsettled, \
        count = proof
    if key != _key(flowfile, data, overrides, targets, cwd):
        return None
    lock = _try_lock(os.path.join(cache_dir, "lock"))
    if lock is None:
        return None
    try:
        if _file_id(os.path.join(cache_dir, "state")) != state_id:
            return None
        if not all(_same_listing(root, d, skip, *seen) for d, seen in dirs.items()):
            return None
        if not all(is_input_file(os.path.join(root, p)) for p in lone_inputs):
            return None
        refreshed = _refresh(root, paths, rows, digests, unsettled)
        if refreshed is None:
            return None
        if refreshed and refreshed[2] > REWRITE_MIN:
            _write(proof_file, (*proof[:8], refreshed[0], digests, refreshed[1], count))
        return int(count)
    finally:
        os.close(lock)


def _key(flowfile: str, data: bytes, overrides: Mapping[str, str], targets: Sequence[str],
         cwd: str) -> tuple[object, ...]:
    # Targets may be paths relative to where bflow runs; without targets that does not matter.
    return (project_key(flowfile, data, overrides), tuple(targets), cwd if targets else "")


def _same_listing(root: str, rel: str, skip: frozenset[str], seen: Listing,
                  trusted: Row | None) -> bool:
    """Whether the directory lists as it did: by its stat when that was taken safely after
    its last change (any entry added, removed or renamed moves its mtime), else by listing."""
    if trusted is not None and _file_id(os.path.join(root, rel)) == trusted:
        return True
    return listing(root, rel, skip) == seen


def _try_lock(path: str) -> int | None:
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _file_id(path: str) -> Row | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _refresh(root: str, paths: list[str], rows: list[Row], digests: str,
             unsettled: list[int]) -> tuple[list[Row], list[int], int] | tuple[()] | None:
    """Check every path against the proof: () when every stat holds and is trusted; when some
    changed stat but not content, the new rows, the paths still too recent to trust, and how
    many files were hashed again; None when any content differs or cannot be told."""
    current = _stats(root, paths)
    if current == rows and not unsettled:
        return ()
    doubtful = set(unsettled)
    doubtful.update(i for i, (now, then) in enumerate(zip(current, rows)) if now != then)
    if any(current[i] == ABSENT or rows[i] == ABSENT or current[i][0] != rows[i][0]
           for i in doubtful):
        return None  # appeared, vanished, or changed size: its content changed
    digest_of = digests.split("\n")
    from buildflow.contents import hash_regular_file

    new_rows, still_unsettled = list(rows), []
    for i in sorted(doubtful):
        hashed_at_ns = time.time_ns()
        try:
            digest, st = hash_regular_file(os.path.join(root, paths[i]))
        except OSError:
            return None
        if digest != digest_of[i] or (st.st_size, st.st_mtime_ns, st.st_ino) != current[i]:
            return None  # changed, or changed again since the stat above
        new_rows[i] = current[i]
        if st.st_mtime_ns >= hashed_at_ns - RACY_WINDOW_NS:
            still_unsettled.append(i)
    return new_rows, still_unsettled, len(doubtful)


def _stats(root: str, paths: list[str]) -> list[Row]:
    """(size, mtime_ns, inode) of each path, following links as the hasher does; ABSENT for
    a path that is not there. Statting is nearly all the fast path's time, so a large list is
    split with a forked child on a second CPU: 23 ms instead of 34 for 20,000 paths."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if len(paths) < PARALLEL_MIN_PATHS or len(os.sched_getaffinity(0)) < 2:
            return _stat_rows(fd, paths)
        return _stat_rows_in_two(fd, paths)
    finally:
        os.close(fd)


def _stat_rows(root_fd: int, paths: list[str]) -> list[Row]:
    row_of = operator.attrgetter("st_size", "st_mtime_ns", "st_ino")
    try:
        return list(map(row_of, map(functools.partial(os.stat, dir_fd=root_fd), paths)))
    except OSError:
        pass
    rows: list[Row] = []
    for path in paths:  # some path is missing: the slow way, one at a time
        try:
            rows.append(row_of(os.stat(path, dir_fd=root_fd)))
        except OSError:
            rows.append(ABSENT)
    return rows


def _stat_rows_in_two(root_fd: int, paths: list[str]) -> list[Row]:
    """The second half statted by a forked child, which sends its rows back through a pipe.
    Safe here: the fast path runs before bflow starts any thread. Falls back to one process
    when the child cannot be made or does not answer in full."""
    half = len(paths) // 2
    try:
        read_end, write_end = os.pipe()
        pid = os.fork()
    except OSError:
        return _stat_rows(root_fd, paths)
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(read_end)
            with open(write_end, "wb") as pipe:
                pipe.write(marshal.dumps(_stat_rows(root_fd, paths[half:])))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    mine = _stat_rows(root_fd, paths[:half])
    with open(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    try:
        theirs = marshal.loads(data) if status == 0 else None
    except (EOFError, ValueError, TypeError):
        theirs = None
    if type(theirs) is not list or len(theirs) != len(paths) - half:
        return mine + _stat_rows(root_fd, paths[half:])
    return mine + theirs


def _write(proof_file: str, proof: tuple[Any, ...]) -> None:
    """Replace the proof atomically: a kill leaves the old one or the new one, never a mix."""
    temp = f"{proof_file}.{os.getpid()}.tmp"
    try:
        with open(temp, "wb") as handle:
            handle.write(marshal.dumps(proof))
        os.replace(temp, proof_file)
    except (OSError, ValueError):
        _remove(temp)


def record(project: Project, state: State, names: Sequence[str], targets: Sequence[str],
           cwd: str | None) -> None:
    """After a build of `targets` (closure `names`) that ended with every task up to date or
    run successfully and `state` closed: leave a proof for the next build, or remove the old
    one when no proof can be given (a task that always runs, a directory output, a record that
    disagrees with a file's last hash, a project not loaded through the project cache)."""
    from buildflow import flowcache

    proof_file = os.path.join(project.cache_dir, FILE_NAME)
    basis = flowcache.basis(project)
    files = _files(project, state, names) if basis is not None else None
    if basis is None or files is None:
        _remove(proof_file)
        return
    paths = list(files)
    rows: list[Row] = []
    digests: list[str] = []
    unsettled: list[int] = []
    for index, path in enumerate(paths):
        entry = state.stats.get(path) if files[path] else None
        if entry is None:
            rows.append(ABSENT)
            digests.append("")
            continue
        size, mtime_ns, inode, digest, hashed_at_ns = entry
        rows.append((size, mtime_ns, inode))
        digests.append(digest)
        if mtime_ns >= hashed_at_ns - RACY_WINDOW_NS:
            unsettled.append(index)
    root = str(project.root)
    dirs = _dirs(root, basis)
    if dirs is None:
        _remove(proof_file)  # a globbed directory changed since the load: reload next time
        return
    count = sum(1 for name in names if not project.tasks[name].is_group)
    key = (basis.key[1:], tuple(targets), (cwd or os.getcwd()) if targets else "")
    _write(proof_file, (FORMAT, key, root, _file_id(str(project.cache_dir / "state")),
                        basis.skip, dirs, basis.lone_inputs, paths, rows, "\n".join(digests),
                        unsettled, count))


def _dirs(root: str, basis: Basis) -> dict[str, tuple[Listing, Row | None]] | None:
    """Each globbed directory's listing as the project was loaded from it, with its stat when
    that stat can stand for the listing (taken before a listing that still agrees, and safely
    after the last change); None when some directory lists differently now."""
    dirs: dict[str, tuple[Listing, Row | None]] = {}
    for rel, seen in basis.listings.items():
        now_ns = time.time_ns()
        stat = _file_id(os.path.join(root, rel))
        if listing(root, rel, basis.skip) != seen:
            return None
        settled = stat is not None and stat[1] < now_ns - RACY_WINDOW_NS
        dirs[rel] = (seen, stat if settled else None)
    return dirs


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _files(project: Project, state: State, names: Sequence[str]) -> dict[str, str] | None:
    """Every path the tasks read or write, with the hash their records agree it has (MISSING
    for a depfile input recorded as absent); None when some task would not be up to date by
    its record and the hashes last taken, or could never be shown to be by stat alone."""
    from buildflow.hashing import MISSING, UNKNOWN
    from buildflow.staleness import action_of

    stats = state.stats
    files: dict[str, str] = {}

    def agree(path: str, digest: str) -> bool:
        known = stats.get(path)
        if digest != MISSING and (known is None or known[3] != digest):
            return False
        return files.setdefault(path, digest) == digest

    for name in names:
        task = project.tasks[name]
        if task.is_group:
            continue
        record = state.tasks.get(name)
        if record is None or task.always or not (task.inputs or task.outputs) or \
                task.dir_outputs or record.action != action_of(task) or \
                len(record.inputs) != len(task.inputs):
            return None
        for path in task.inputs:
            digest = record.inputs.get(path, MISSING)
            if digest == MISSING or not agree(path, digest):
                return None
        for path, digest in record.depfile_inputs.items():
            if digest == UNKNOWN or not agree(path, digest):
                return None
        for path in task.outputs:
            digest = record.outputs.get(path, MISSING)
            if digest == MISSING or not agree(path, digest):
                return None
    return files
