"""The incremental fast path: build just what changed files reach, from the proof, without
loading the project or the state.

When a proof still holds for its project and records (`uptodate`) and only some files' content
changed, a full build would find up to date every task that neither touches a changed file nor
comes after one that does. So this builds a project of just the others, made from the proof:
their specs as the project cache stores them, and their records as the proof shows them (the
action and the hashes every record agreed on when the proof was written). The state is resumed
for appending, not loaded, and the ordinary `Builder` decides and runs the part, early cutoff
included; the other tasks are reported as up to date. A part that ends up to date again updates
the proof; anything else removes it, and the next build goes the full way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from buildflow import events as ev
from buildflow.cache import open_cache
from buildflow.errors import EXIT_OK
from buildflow.executors import open_executor
from buildflow.fs import LocalFileSystem
from buildflow.graph import Graph
from buildflow.hashing import Hasher, StatRow
from buildflow.model import Project, Settings, tasks_from_rows
from buildflow.scheduler import BuildOptions, BuildResult, Builder
from buildflow.staleness import Decision, action_of
from buildflow.state import State, TaskRecord
from buildflow.racy import window_ns
from buildflow.fastpath.statrows import ABSENT, DamagedRows, Row
from buildflow.fastpath.proof import Proof, ints_of, state_id
from buildflow.fastpath.record import files_of, rows_of

# A task as the proof holds it: project order, spec, and the indices of its inputs, depfile
# inputs and outputs among the proof's paths.
Entry = tuple[int, tuple[object, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]
Depfiles = dict[int, tuple[int, ...]]  # task -> its depfile inputs, for tasks that have any


def build(proof: Proof, changed: set[int], *, jobs: int | None, keep_going: bool,
          reporter: ev.Reporter, cache: bool = True, executor: str | None = None,
          check_part: Callable[[Sequence[str]], None] | None = None) -> BuildResult | None:
    """Build the part of the proof's project that the `changed` paths reach; None when the
    proof cannot say which part that is (then build the full way). `check_part` (under
    BFLOW_VERIFY) is shown the part's tasks, and the records rebuilt for them are checked
    against the state's own."""
    if proof.graph is None or proof.state_now is None:
        return None
    settings_row, vars_, *packed = proof.graph
    spec_starts, spec_crcs, touch_starts, touching, after_starts, after = map(ints_of, packed)
    part = _reached(changed, proof.depfiles, touch_starts, touching, after_starts, after)
    specs = {index: proof.spec(spec_starts[index], spec_starts[index + 1], spec_crcs[index])
             for index in part}
    if None in specs.values():
        return None
    entries = {index: _entry(spec, proof.depfiles.get(index, ())) for index, spec in specs.items()}
    settings = Settings(*settings_row)
    project = _project(proof, settings, vars_, entries, part)
    names = _names(entries, part)
    try:
        records, stats = _records_and_stats(proof, project, entries, part, changed)
    except DamagedRows:
        return None
    if check_part is not None:
        from buildflow.fastpath import verify

        check_part(names)
        verify.records_kept(os.path.join(os.path.dirname(proof.file), "state"), records)
    state = State(os.path.join(os.path.dirname(proof.file), "state"), reporter.warn).resume(
        records, stats, size=proof.state_now[0])
    options = BuildOptions(jobs=jobs or project.default_jobs, keep_going=keep_going)
    output_cache = open_cache(project, reporter.warn, use=cache)
    runner = open_executor(executor or settings.executor)
    # the paths whose stat the proof's check just found as their entries hold: not statted
    # again before a command runs
    hasher = Hasher(LocalFileSystem(proof.root), state.stats, statted=stats)
    builder = Builder(project, state, hasher,
                      runner, _WithOthersUpToDate(reporter, proof.count - len(part)),
                      options, cache=output_cache)
    try:
        result = builder.build(names)
    finally:
        runner.close()
        output_cache.close()
        state.close()
    if result.exit_status == EXIT_OK:
        _update(proof, project, state, names, entries, part,
                _readers_outside(part, proof.depfiles, touch_starts, touching))
    else:
        proof.forget()
    return result


def _readers_outside(part: list[int], depfiles: Depfiles, touch_starts: Sequence[int],
                     touching: Sequence[int]) -> Callable[[set[int]], bool]:
    """Whether a task outside the part touches any of some paths (as an input, a depfile
    input or an output): the proof vouches for that task by the content it holds of them.
    Asked only of paths whose content changed, in one pass over the depfiles, as `_reached`
    makes."""
    inside = set(part)

    def read_outside(paths: set[int]) -> bool:
        touchers = (task for path in paths if path + 1 < len(touch_starts)
                    for task in touching[touch_starts[path]:touch_starts[path + 1]])
        if any(task not in inside for task in touchers):
            return True
        return any(task not in inside and not paths.isdisjoint(inputs)
                   for task, inputs in depfiles.items())

    return read_outside


def _entry(spec: tuple[int, tuple[object, ...], tuple[int, ...], tuple[int, ...]],
           depfile_inputs: tuple[int, ...]) -> Entry:
    order, row, inputs, outputs = spec
    return order, row, inputs, depfile_inputs, outputs


def _reached(changed: set[int], depfiles: Depfiles, touch_starts: Sequence[int],
             touching: Sequence[int], after_starts: Sequence[int],
             after: Sequence[int]) -> list[int]:
    """The tasks that touch a changed path (as an input, a depfile input or an output), every
    task after them, and every task whose depfile named a path one of those touches (it may
    write it, and the build then orders the reader after it), in build order."""
    reached: set[int] = set()
    stack = [task for path in changed if path + 1 < len(touch_starts)
             for task in touching[touch_starts[path]:touch_starts[path + 1]]]
    stack.extend(task for task, inputs in depfiles.items() if not changed.isdisjoint(inputs))
    while stack:
        while stack:
            task = stack.pop()
            if task not in reached:
                reached.add(task)
                stack.extend(after[after_starts[task]:after_starts[task + 1]])
        stack = [task for task, inputs in depfiles.items() if task not in reached and any(
            toucher in reached for path in inputs if path + 1 < len(touch_starts)
            for toucher in touching[touch_starts[path]:touch_starts[path + 1]])]
    return sorted(reached)


def _names(entries: dict[int, Entry], part: list[int]) -> list[str]:
    return [_name(entries[index]) for index in part]


def _name(entry: Entry) -> str:
    return str(entry[1][0])  # a spec's first field is its name


def _project(proof: Proof, settings: Settings, vars_: dict[str, str],
             entries: dict[int, Entry], part: list[int]) -> Project:
    """A project of just the tasks in `part`, in the Flowfile's order (the order ready tasks
    start in). Their inputs made by other tasks are plain files to it: up to date ones."""
    specs = [entries[index] for index in sorted(part, key=lambda i: entries[i][0])]
    tasks = tasks_from_rows(tuple(spec[1] for spec in specs))
    return Project(root=proof.root, flowfile=proof.flowfile, settings=settings,
                   vars=vars_, tasks=tasks, graph=Graph(tasks))


def _records_and_stats(proof: Proof, project: Project, entries: dict[int, Entry],
                       part: list[int], changed: set[int]
                       ) -> tuple[dict[str, TaskRecord], dict[str, StatRow]]:
    """Each task's record as the proof shows it, and the stat entries of the paths the part
    touches: trusted where the proof's check trusted them, absent (so hashed again) where the
    path changed or is too recent."""
    digest_of = proof.digest_of
    # The check trusted a refreshed stat only when it was old enough; one still too recent
    # (still_unsettled) must be hashed again, so that its entry, and the proof's row after
    # the build, say so.
    untrusted = changed | set(proof.unsettled) | set(proof.still_unsettled)
    records: dict[str, TaskRecord] = {}
    stats: dict[str, StatRow] = {}
    for index in part:
        _, _, inputs, depfile_inputs, outputs = entries[index]
        task = project.tasks[_name(entries[index])]
        # The decision the proof keeps: what it read when it last found the task up to date.
        records[task.name] = Decision(
            [], action_of(task), {proof.paths[i]: digest_of[i] for i in inputs},
            {proof.paths[i]: digest_of[i] for i in depfile_inputs},
            {proof.paths[i]: digest_of[i] for i in outputs}).as_record()
        for i in (*inputs, *depfile_inputs, *outputs):
            row = proof.refreshed.get(i, proof.rows[i])
            if i not in untrusted and row != ABSENT:
                # hashed at least a racy window after its mtime: as the check just trusted it
                stats[proof.paths[i]] = (*row, digest_of[i], row[1] + window_ns(row[1]) + 1)
    return records, stats


def _update(proof: Proof, project: Project, state: State, names: list[str],
            entries: dict[int, Entry], part: list[int],
            read_outside: Callable[[set[int]], bool]) -> None:
    """Carry what the part's build left into the proof, or remove the proof when its tasks'
    files are no longer the ones it lists (a depfile that names other files), or when a file
    a task outside the part reads has changed meanwhile (saved during the build): the proof
    would vouch for that task by content it never saw."""
    files = files_of(project, state, names)
    if files is None:
        proof.forget()
        return
    indices: dict[str, int] = {}
    for index in part:
        _, _, inputs, depfile_inputs, outputs = entries[index]
        indices.update((proof.paths[i], i) for i in (*inputs, *depfile_inputs, *outputs))
        task = project.tasks[_name(entries[index])]
        if {proof.paths[i] for i in depfile_inputs} != set(state.tasks[task.name].depfile_inputs):
            proof.forget()
            return
    paths = list(files)
    if not all(path in indices for path in paths):  # the proof names other paths: damaged
        proof.forget()
        return
    rows, digests, unsettled = rows_of(paths, files, state, proof.lone_inputs)
    new_rows: dict[int, Row] = {}
    new_digests: dict[int, str] = {}
    for path, row, digest in zip(paths, rows, digests):
        new_rows[indices[path]] = row
        new_digests[indices[path]] = digest
    changed = {index for index, digest in new_digests.items()
               if digest != proof.digest_of[index]}
    if changed and read_outside(changed):
        proof.forget()
        return
    proof.update(new_rows, new_digests, state_id(str(state.path)),
                 [indices[paths[i]] for i in unsettled])


class _WithOthersUpToDate(ev.Relay):
    """The reporter of a partial build, told of the tasks outside the part as up to date, so
    the summary reads as the full build's would. (The `[k/N]` counter counts the tasks that
    run, which are all in the part.)"""

    def __init__(self, reporter: ev.Reporter, others: int) -> None:
        super().__init__(reporter)
        self.others = others

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.BuildFinished):
            event = event._replace(up_to_date=event.up_to_date + self.others)
        self.reporter.handle(event)
