"""Writing a proof after a full build (`fastpath.remember`): what the staleness decision read
when it found every selected task up to date, by the hashes the build last took, laid out as
`proof` reads it. No proof is left when the decision cannot vouch for every task by stat."""

from __future__ import annotations

import marshal
import os
import time
import zlib
from array import array
from itertools import chain
from typing import TYPE_CHECKING

from buildflow.fastpath.formats import PROOF_FILE as FILE_NAME
from buildflow.fastpath.formats import PROOF_FORMAT as FORMAT
from buildflow.fastpath.formats import PROOF_PROJECT_PART as PROJECT_PART
from buildflow.fastpath.identity import listing
from buildflow.fastpath.proof import (INT_CODE, MAX_PROOFS, dir_id, file_id, proof_name,
                                      read_project_file, remove_quietly, size_field, sized,
                                      state_id, targets_key, write_atomic, write_whole)
from buildflow.fastpath.statrows import ABSENT, Row, RowTable
from buildflow.gcpause import paused
from buildflow.racy import trusted

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

    from buildflow.fastpath.projectcache import Basis
    from buildflow.model import Project
    from buildflow.state import State


def record(project: Project, basis: Basis | None, state: State, names: Sequence[str],
           targets: Sequence[str], cwd: str | None) -> None:
    """After a build of `targets` (closure `names`) that ended with every task up to date or
    run successfully and `state` closed: leave a proof for the next build, or remove the old
    one when no proof can be given (a task that always runs, a directory output, a record that
    disagrees with a file's last hash). A project not loaded through the project cache leaves
    none (what it changed in the state voids the old one)."""
    with paused():  # thousands of rows made on a large heap: collections would find nothing
        _record(project, basis, state, names, targets, cwd)


def _record(project: Project, basis: Basis | None, state: State, names: Sequence[str],
            targets: Sequence[str], cwd: str | None) -> None:
    cache_dir = project.cache_dir
    if basis is None:
        return  # not loaded through the project cache: nothing to check a proof against
    cwd = cwd or os.getcwd()
    overrides: Any = basis.key[-1]  # the key ends with the overrides, as sorted pairs
    kind = proof_name(targets, cwd, dict(overrides))
    proof_file = os.path.join(cache_dir, kind)
    files = files_of(project, state, names)
    dir_stats = _dir_stats(project.root, basis)
    state_now = state_id(os.path.join(cache_dir, "state"))
    if files is None or dir_stats is None or state_now is None or \
            state_now[0] != state.good_size:  # a torn tail: appending must not follow it
        remove_quietly(proof_file)
        return
    tasks = [name for name in names if not project.tasks[name].is_group]
    key = (basis.key[1:], *targets_key(targets, cwd))
    paths = list({p: None for name in tasks
                  for p in (*project.tasks[name].inputs, *project.tasks[name].outputs)})
    index_of = {path: index for index, path in enumerate(paths)}
    project_id = _project_file_for(project, basis, kind, key, tasks, paths, index_of)
    extra_paths = [path for path in files if path not in index_of]  # depfile inputs only
    index_of.update((path, len(paths) + i) for i, path in enumerate(extra_paths))
    depfiles = {i: tuple(index_of[p] for p in state.tasks[name].depfile_inputs)
                for i, name in enumerate(tasks) if state.tasks[name].depfile_inputs}
    rows, digests, unsettled = rows_of(paths + extra_paths, files, state, basis.lone_inputs)
    write_whole(proof_file, project_id, state_now, dir_stats, extra_paths, RowTable.of(rows),
                 "\n".join(digests), unsettled, len(tasks), depfiles)
    _keep_newest(cache_dir)


def _project_file_for(project: Project, basis: Basis, name: str, key: tuple[object, ...],
                      tasks: list[str], paths: list[str],
                      index_of: Mapping[str, int]) -> Row | None:
    """The identity of the project part of the proof for this key and these listings (each of
    `paths` at its index in `index_of`), written unless the one on disk already has them (then
    the costly part, the tasks for `incremental`, is not redone)."""
    cache_dir = project.cache_dir
    checks = (basis.lone_inputs, basis.output_prefixes, basis.cwd_prefixes, basis.code)
    try:
        head, project_id, handle = read_project_file(cache_dir, name)
        handle.close()
        if head[1] == key and head[2] == checks and \
                {rel: marshal.loads(seen) for rel, seen in head[4].items()} == basis.listings:
            return project_id
    except (OSError, EOFError, ValueError, TypeError):
        pass
    unscanned = [path for path in basis.lone_inputs if path not in index_of]
    static = marshal.dumps((project.root, project.flowfile, basis.skip, paths, unscanned))
    listings = {rel: marshal.dumps(seen) for rel, seen in basis.listings.items()}
    head_part: Any = (FORMAT, key, checks, static, listings, zlib.crc32(static))
    project_file = os.path.join(cache_dir, name + PROJECT_PART)
    write_atomic(project_file, chain(sized(marshal.dumps(head_part), checksum=False),
                                     _graph(project, tasks, index_of)))
    return file_id(project_file)


def _keep_newest(cache_dir: str) -> None:
    """Remove the proofs of all but the MAX_PROOFS kinds of build written last."""
    proofs = []
    with os.scandir(cache_dir) as entries:
        for entry in entries:
            if entry.name.startswith(FILE_NAME) and "." not in entry.name:
                proofs.append((entry.stat().st_mtime_ns, entry.path))
    for _, path in sorted(proofs)[:-MAX_PROOFS]:
        remove_quietly(path)
        remove_quietly(path + PROJECT_PART)


def rows_of(paths: Sequence[str], files: Mapping[str, str], state: State,
            lone_inputs: Sequence[str]) -> tuple[list[Row], list[str], list[int]]:
    """The proof's row and hash of each path from the hashes the build last took, and which
    of them are too recent to be trusted by stat. A lone input that is not there counts as
    too recent: its row is then statted on every run, and the proof's check of lone inputs
    (`Proof.changes`) sees it, as a fresh load would."""
    rows: list[Row] = []
    digests: list[str] = []
    unsettled: list[int] = []
    for index, path in enumerate(paths):
        entry = state.stats.get(path) if files[path] else None
        if entry is None:
            rows.append(ABSENT)
            digests.append("")
            if path in lone_inputs:  # rare: a tuple's scan costs nothing the rest of the time
                unsettled.append(index)
            continue
        size, mtime_ns, inode, digest, hashed_at_ns = entry
        rows.append((size, mtime_ns, inode))
        digests.append(digest)
        if not trusted(mtime_ns, hashed_at_ns):
            unsettled.append(index)
    return rows, digests, unsettled


def _dir_stats(root: str, basis: Basis) -> dict[str, Row | None] | None:
    """For each globbed directory, its stat when that can stand for its listing (taken before
    a listing that agrees with the one the project was loaded from, and safely after the last
    change), else None; None in all when some directory lists differently now."""
    stats: dict[str, Row | None] = {}
    for rel, seen in basis.listings.items():
        now_ns = time.time_ns()
        stat = dir_id(os.path.join(root, rel))
        if listing(root, rel, basis.skip) != seen:
            return None
        stats[rel] = stat if stat is not None and trusted(stat[1], now_ns) else None
    return stats


def files_of(project: Project, state: State, names: Sequence[str]) -> dict[str, str] | None:
    """Every path the decision reads for these tasks, with the hash it read, when it finds each
    of them up to date by the hashes last taken (the state's stat entries): what a proof must
    watch, since while none of those files changes, the decision cannot change either. None
    when some task is not up to date by them (a task that always runs, a directory output,
    whose tree hash no stat entry holds, a record that disagrees with a file's last hash), or
    has a `when` that stats cannot vouch for: its `env`, `exists` or `cmd` may fail on the
    next build with no file of the proof changed, and the build then skips the task (only a
    `platform` holding now holds for good)."""
    from buildflow.conditions import this_platform
    from buildflow.hashing import MISSING
    from buildflow.staleness import decide

    stats, records, tasks = state.stats, state.tasks, project.tasks

    def last_hash(path: str) -> str:
        entry = stats.get(path)
        return MISSING if entry is None else entry[3]

    files: dict[str, str] = {}
    for name in names:
        task = tasks[name]
        if task.is_group:
            continue
        if any(key != "platform" or this_platform() not in values for key, values in task.when):
            return None
        decision = decide(task, records.get(name), last_hash, explain=False)
        if decision.stale:
            return None
        files.update(decision.input_hashes)
        files.update(decision.depfile_hashes)
        files.update(decision.output_hashes)
    return files


def _graph(project: Project, tasks: list[str],
           index_of_path: Mapping[str, int]) -> Iterator[bytes]:
    """What `incremental` needs to build part of the project: the settings and vars; each task
    (its project order, spec, and the indices `index_of_path` gives its inputs and outputs) as
    marshal data of its own, so a part decodes only its tasks; and, as flat lists, which tasks
    touch each path and which come after each task. Every list of ints is packed (`ints_of`
    unpacks one), so that loading the table decodes nothing but what the part uses. The specs
    come first, each as it is made, so that they are never all in memory; then the table with
    the offsets of each spec among them, then the table's size. The table is None when a task
    waits on a group through `deps` (a part without the group would not wait)."""
    from buildflow.fastpath.projectcache import row_of

    if any(project.tasks[dep].is_group for name in tasks for dep in project.tasks[name].deps):
        yield from _table(None)
        return
    graph = project.graph
    index_of_task = {name: index for index, name in enumerate(tasks)}
    spec_starts, after_starts, after = array(INT_CODE, [0]), array(INT_CODE, [0]), array(INT_CODE)
    touched, touching = array(INT_CODE), array(INT_CODE)  # (path, task) pairs
    spec_crcs = array(INT_CODE)  # each spec's CRC-32, checked as `Proof.spec` reads it
    for index, name in enumerate(tasks):
        task = project.tasks[name]
        inputs = tuple(map(index_of_path.__getitem__, task.inputs))
        outputs = tuple(map(index_of_path.__getitem__, task.outputs))
        for path_index in {*inputs, *outputs}:
            touched.append(path_index)
            touching.append(index)
        spec: Any = (graph.order[name], row_of(task), inputs, outputs)
        spec_data = marshal.dumps(spec)
        spec_crcs.append(zlib.crc32(spec_data))
        yield spec_data
        spec_starts.append(spec_starts[-1] + len(spec_data))
        after.extend(index_of_task[d] for d in graph.downstream[name] if d in index_of_task)
        after_starts.append(len(after))
    by_path = _grouped(touched, touching, len(index_of_path))
    del touched, touching
    packed = [ints.tobytes()
              for ints in (spec_starts, spec_crcs, *by_path, after_starts, after)]
    yield from _table((row_of(project.settings), project.vars, *packed))


def _table(table_data: Any) -> tuple[bytes, bytes]:
    """The task table, then its size (never 0: a size of 0 is a damaged part's) and
    checksum."""
    table = marshal.dumps(table_data)
    return table, size_field(len(table), zlib.crc32(table))


def _grouped(keys: array[int], values: array[int], count: int) -> tuple[array[int], array[int]]:
    """The values paired with each key from 0 to count - 1, in the order given, as (starts,
    items): key k's are items[starts[k]:starts[k + 1]]. The table then loads two lists of
    ints, not one per key; arrays, not a list per key, which would cost many times the
    memory."""
    zero = bytes(array(INT_CODE).itemsize)
    starts = array(INT_CODE, zero * (count + 1))
    for key in keys:
        starts[key + 1] += 1
    for key in range(count):
        starts[key + 1] += starts[key]
    items = array(INT_CODE, zero * len(values))
    place = array(INT_CODE, starts)
    for key, value in zip(keys, values):
        items[place[key]] = value
        place[key] += 1
    return starts, items
