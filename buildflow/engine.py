"""The engine as a library: select targets, take the lock, load state, build. The CLI and the
Python API both come through here."""

from __future__ import annotations

import os
from collections.abc import Iterable

from buildflow import events as ev
from buildflow.cache import open_cache
from buildflow.conditions import Gate
from buildflow.errors import EXIT_OK, UsageError
from buildflow.executors import Executor, open_executor
from buildflow.fs import LeftTemps
from buildflow.hashing import MISSING, Hasher
from buildflow.model import Project
from buildflow.prune import dead_files, prune_dead_outputs
from buildflow.scheduler import (BuildOptions, BuildResult, Builder, Outcome, TaskResult,
                                 summary)
from buildflow.secrets import masked
from buildflow.staleness import Decision, ReasonKind, missing_input, survey
from buildflow.state import State


def selected(project: Project, targets: Iterable[str] = (), cwd: str | None = None) -> list[str]:
    """The named targets (or the defaults) and everything they need, in build order."""
    graph = project.graph
    return graph.closure(graph.named(list(targets), project.settings.default, project.root,
                                     cwd))


def open_state(project: Project, warn: ev.Reporter | None = None, *,
               locked: bool = False) -> State:
    """The project's state, with what runs a kill cut short wrote taken as theirs (written
    down as their failure when the caller holds the lock: `State.settle_started`)."""
    state = State(os.path.join(project.cache_dir, "state"),
                  warn.warn if warn else lambda _: None, project.fs).load()
    if state.started:
        if locked:
            _remove_left_temps(project, state)
        state.settle_started(project.disk(), hasher_for(project, state).file_hash,
                             record=locked)
    return state


def _remove_left_temps(project: Project, state: State) -> None:
    """A restore from the output cache cut short by a kill left the temp file of an output
    beside it (`fs.replace_file`): removed, as `clean` removes it, before the build takes
    stock of what the killed run wrote. Only where a run was cut short, so a build lists no
    directory otherwise."""
    temps = LeftTemps()
    for name, (outputs, depfile, _) in state.started.items():
        task = project.tasks.get(name)
        for path in dict.fromkeys((*outputs, *(task.outputs if task else ()), depfile)):
            if path:
                temps.remove_beside(os.path.join(project.root, path))


def hasher_for(project: Project, state: State) -> Hasher:
    return Hasher(project.disk(), state.stats)


def as_built(project: Project) -> tuple[Project, State, frozenset[str]]:
    """The project as a build will decide it, once it has removed the outputs of tasks that
    no longer exist (`prune`), its records, and the files it will have removed; nothing is
    removed. `status`, `explain`, `-n` and `graph` decide on this, so that they say what
    `build` then does: a removed output can change what a glob matches, end the instances of
    a foreach over it, and fail a `when.exists`."""
    from buildflow.project import reload

    state = open_state(project)
    hidden: set[str] = set()
    while True:
        gone = dead_files(project, state, hasher_for(project, state)) - hidden
        if not gone:
            return project, state, frozenset(hidden)
        hidden |= gone
        project = reload(project, hidden=frozenset(hidden))


def decided(project: Project, state: State, names: Iterable[str], *, force: bool = False,
            explain: bool = False, gone: frozenset[str] = frozenset()
            ) -> tuple[dict[str, Decision], dict[str, str]]:
    """What `status`, `explain`, `-n` and `graph` say of `names`: each decided as the build
    will (`survey`, its `when` asked as the build asks it), and the tasks a build would skip
    by their `when`, with why, as the disk and the environment stand now (not those whose
    condition waits for a task to run: "after" it)."""
    gate = Gate(project.root, project.disk(), gone=gone)
    hashes = hasher_for(project, state).file_hash

    def file_hash(path: str) -> str:  # the build removes `gone` first: a depfile may name one
        return MISSING if path in gone else hashes(path)

    decisions = survey(project, names, state, file_hash,
                       force=force, explain=explain, skipped=gate.failing)
    tasks = project.tasks
    skips = {name: failing for name, decision in decisions.items()
             if tasks[name].when and not decision.after and (failing := gate.failing(tasks[name]))}
    for name, decision in decisions.items():  # a reader the build will fail, as it says it
        if decision.stale and not decision.after and name not in skips:
            missing = missing_input(decision, project.graph.producer_of, skips.get)
            if missing is not None and missing.kind is ReasonKind.INPUT_UNWRITTEN:
                decision.reasons[:] = [missing, *(
                    reason for reason in decision.reasons
                    if reason.kind is not ReasonKind.INPUT_MISSING
                    or reason.subject != missing.subject)]
    return decisions, skips


def build(project: Project, targets: Iterable[str] = (), *, jobs: int | None = None,
          keep_going: bool = False, force: bool = False, dry_run: bool = False,
          reporter: ev.Reporter | None = None, runner: Executor | None = None,
          lock_timeout: float | None = None, cwd: str | None = None,
          cache: bool = True) -> BuildResult:
    """Build `targets` (task names, TASK:ITEM instances or output paths; default: the
    Flowfile's defaults, else every task) and return what happened to each task, with the
    project built (reloaded when outputs were pruned), its selected tasks and their records.
    `cache=False` (or BFLOW_CACHE=0) neither reads nor writes the output cache. Commands run
    on `runner` (the caller's to close), else on the Flowfile's executor."""
    if not isinstance(project, Project):  # a `buildflow.Project` declared in Python, say
        raise TypeError(f"build() takes a loaded project (buildflow.load or from_dict), not "
                        f"{type(project).__name__}; a project declared with "
                        "buildflow.Project() builds with project.main()")
    if isinstance(targets, str):  # its letters would be the targets: 'u', 's', 'e'
        raise TypeError(f"build() takes a list of targets, not the string {targets!r} "
                        f"(write [{targets!r}])")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool)):
        raise TypeError(f"jobs: expected a whole number, got {jobs!r}")
    if jobs is not None and jobs < 1:  # as the command line's -j: none at all waits for ever
        raise UsageError(f"jobs: expected at least 1, got {jobs}")
    reporter = reporter or ev.Collector()
    targets = list(targets)
    names = selected(project, targets, cwd)
    options = BuildOptions(jobs=jobs or project.default_jobs, keep_going=keep_going,
                           force=force)
    if dry_run:
        return _dry_run(project, targets, cwd, options, reporter)
    lock = project.disk().lock(os.path.join(project.cache_dir, "lock"))
    lock.acquire(lock_timeout, getattr(reporter, "note", reporter.warn))
    try:
        state = open_state(project, reporter, locked=True)
        # Repeat: a removed output can end instances of a foreach over it, and so on down.
        while prune_dead_outputs(project, state, hasher_for(project, state), reporter.warn,
                                 getattr(reporter, "note", None)):
            from buildflow.project import reload

            project = reload(project)  # files its globs matched are gone
            names = selected(project, targets, cwd)
        output_cache = open_cache(project, reporter.warn, use=cache)
        executor = runner or open_executor(project.settings.executor)
        builder = Builder(project, state, hasher_for(project, state), executor, reporter,
                          options, cache=output_cache)
        try:
            result = builder.build(names)
        finally:
            if runner is None:
                executor.close()
            output_cache.close()
            state.close()
        result.project, result.selected, result.state = project, names, state
        return result
    finally:
        lock.release()


def _dry_run(project: Project, targets: list[str], cwd: str | None, options: BuildOptions,
             reporter: ev.Reporter) -> BuildResult:
    """Say what would run and why; run and write nothing."""
    project, state, gone = as_built(project)
    names = selected(project, targets, cwd)
    decisions, skips = decided(project, state, names, force=options.force, gone=gone)
    result = BuildResult(EXIT_OK)
    tasks = project.tasks
    # A group runs nothing itself, here as in a build: a foreach's group standing for
    # instances found only once their files are written is named, for the instances to
    # come, up to date as the build's result has it, and never counted.
    reporter.handle(ev.BuildStarted(total=sum(not tasks[n].is_group for n in decisions),
                                    jobs=options.jobs, dry_run=True))
    for name, decision in decisions.items():
        failing = skips.get(name, "")
        if failing:
            reporter.handle(ev.TaskSkipped(name, failing))
            result.tasks[name] = TaskResult(name, Outcome.SKIPPED, reason=failing)
        elif decision.after:
            reason = str(decision.reasons[0])
            group = tasks[name].is_group
            reporter.handle(ev.TaskWouldRun(name, reason, after=decision.after,
                                            instances=group))
            result.tasks[name] = TaskResult(
                name, Outcome.UP_TO_DATE if group else Outcome.SKIPPED, reason=reason)
        elif decision.stale:
            reason = str(decision.reasons[0])
            reporter.handle(ev.TaskWouldRun(name, reason, masked(tasks[name].env,
                                                                 tasks[name].shown)))
            result.tasks[name] = TaskResult(name, Outcome.SKIPPED, reason=f"would run: {reason}")
        else:
            reporter.handle(ev.TaskSkipped(name, "up to date"))
            result.tasks[name] = TaskResult(name, Outcome.UP_TO_DATE)
    for name in names:  # a plain group (only deps) runs nothing: up to date, as in a build
        result.tasks.setdefault(name, TaskResult(name, Outcome.UP_TO_DATE))
    reporter.handle(summary(result, tasks))
    return result


def load(path: str | os.PathLike[str] = "Flowfile",
         overrides: dict[str, str] | None = None) -> Project:
    """Load and check a Flowfile (see buildflow.load)."""
    from buildflow.project import load as load_project

    return load_project(path, overrides)
