"""The build loop: decide each task once it is ready, start stale ones on up to `-j` worker
threads, record what finished, stop on the first failure (or go on with `-k`), and stop every
command on Ctrl-C or SIGTERM.

Staleness is decided once a task is ready (its upstream finished) and a job is free for it,
so a rebuilt task that wrote identical bytes leaves its dependents up to date, and a large
build's first commands start before its thousands of ready tasks are hashed. Each of up to
`-j` worker threads runs a task's commands without the builder's lock, then, holding it,
records the task, decides what it made ready and takes the next stale task in build order
itself: the next command starts without waiting for another thread to wake (at 10,000 small
tasks those hand-offs left a CPU idle a fifth of the time). Every record and every event is
made under the lock, one at a time; the main thread starts the build, waits for its end or a
signal, and sums up. The builder never prints: it hands events to its reporter.
"""

from __future__ import annotations

import heapq
import os
import posixpath
import queue
import threading
import time
from collections.abc import Callable
from enum import Enum
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, NamedTuple

from buildflow import events as ev
from buildflow.attempts import Attempts, Execution, LostRun, Wait
from buildflow.cache import NO_CACHE, OutputCache, Restored
from buildflow.conditions import Gate, run_quietly
from buildflow.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, BuildError, FlowfileError
from buildflow.executors import Executor
from buildflow.follow import OutputFollower
from buildflow.fs import written_since
from buildflow.hashing import MISSING, Hasher
from buildflow.logs import LogSlot, OldLogs
from buildflow.model import Project, Task
from buildflow.plan import Plan
from buildflow.runrecord import AtStart, RunRecorder
from buildflow.secrets import masked
from buildflow.signals import (SIGINT, SIGNAL_CHECK_SECONDS, Flag, interrupts, raise_signal,
                               signal, without_signals)
from buildflow.staleness import Decision, decide, missing_input, recorded_depfile_links
from buildflow.state import NOTHING_LEFT, Left, State, TaskRecord

if TYPE_CHECKING:
    from typing import Any

    from buildflow.project import Expander


class Outcome(Enum):
    RAN = "ran"
    UP_TO_DATE = "up to date"
    FAILED = "failed"
    SKIPPED = "skipped"
    RESTORED = "restored"  # stale, and its outputs came from the output cache


class TaskResult(NamedTuple):
    name: str
    outcome: Outcome
    attempts: int = 0
    duration: float = 0.0
    reason: str = ""


class BuildResult:
    """What happened to each task, and how the build ended; `engine.build` adds the project
    built, the tasks selected and the records left. A plain class, not a dataclass: every
    build that runs a task makes one, and `dataclasses` (with the `inspect` it imports) would
    cost each such build more than the rest of its imports together (docs/speed.md)."""

    def __init__(self, exit_status: int, tasks: dict[str, TaskResult] | None = None,
                 duration: float = 0.0) -> None:
        self.exit_status = exit_status
        self.tasks = {} if tasks is None else tasks
        self.duration = duration
        self.project: Project | None = None
        self.selected: list[str] = []
        self.state: State | None = None

    def names(self, outcome: Outcome) -> list[str]:
        return [name for name, result in self.tasks.items() if result.outcome is outcome]


class BuildOptions(NamedTuple):
    jobs: int = 1
    keep_going: bool = False
    force: bool = False


# How often the logs of running tasks are read for new lines, when the reporter follows them.
FOLLOW_SECONDS = 0.05

_INTERRUPT = object()  # put on the message queue by the signal handler
_FINISHED = object()  # put on it once nothing runs and nothing more will


def _random_jitter() -> float:
    import random  # here: only a retry needs it, and a build without one spares the import

    return random.random()


class Builder:
    def __init__(self, project: Project, state: State, hasher: Hasher, runner: Executor,
                 reporter: ev.Reporter, options: BuildOptions, *, wait: Wait | None = None,
                 jitter: Callable[[], float] = _random_jitter,
                 clock: Callable[[], float] = time.monotonic,
                 cache: OutputCache = NO_CACHE) -> None:
        self.project = project
        # The tasks as this build knows them: the project's, until a task whose globs match
        # what the build writes is expanded again (`_expand`); then a copy, kept up to date.
        self.tasks = project.tasks
        self._expander: Expander | None = None
        self._faults: dict[str, BuildError] = {}  # task -> the fault its worker met
        self._instances: dict[str, list[str]] = {}  # expanded group -> its instances now
        # Instances found during the build after every task their globs wait for had run:
        # as current as expanding them again would make them
        self._current: set[str] = set()
        self.cache = cache
        self.state = state
        self.hasher = hasher
        self.runner = runner
        self.reporter = reporter
        self.options = options
        self.clock = clock
        self.interrupted = threading.Event()
        # Messages to the main thread: _INTERRUPT (SimpleQueue.put is safe to call from a
        # signal handler), _FINISHED, or an exception from a worker.
        self.messages: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._signalled: int = SIGINT  # the last signal the build's handler took
        self.attempts = Attempts(runner, project.root, hasher.fs, os.environ,
                                 interrupted=self.interrupted, on_retry=self._on_retry,
                                 wait=wait or (lambda event, seconds: event.wait(seconds)),
                                 jitter=jitter, clock=clock)
        # Everything below is read and changed only under the lock.
        self._lock = threading.Lock()
        self._task_ready = threading.Condition(self._lock)  # idle workers wait on it
        self._workers: list[threading.Thread] = []
        self._stopper: threading.Thread | None = None
        self._stopper_lock = threading.Lock()  # started by one thread, once
        self._running: dict[str, Decision] = {}  # started tasks, with why they run
        self._recorder = RunRecorder(project.root, hasher, state, reporter.warn)
        self._started_stats: dict[str, AtStart] = {}  # of each started task, for its record
        self._stale: list[tuple[int, str, Decision]] = []  # decided stale, waiting for a job
        self._stopping = False  # start nothing more
        self._finished = False  # nothing runs and nothing more will
        self._plan = Plan(project.graph, [])
        self._names: dict[str, None] = {}  # the tasks of the plan, in build order
        self._result = BuildResult(EXIT_OK)
        self._old_logs = OldLogs(project.cache_dir, hasher.fs)
        # Set by the signal handler itself, which may run inside another setting of it (a
        # Flag takes no lock): a `when.cmd` probe may be what the main thread waits for when
        # Ctrl-C comes, before it reads the handler's message.
        self._stop_probes = Flag()
        self._gate = Gate(project.root, hasher.fs,
                          run=partial(run_quietly, stop=self._stop_probes))
        self._follower = OutputFollower(self._on_line) \
            if getattr(reporter, "follows_output", False) else None

    def build(self, names: list[str]) -> BuildResult:
        """Build `names` (already closed over their dependencies, in topological order)."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in interrupts():
                previous[signum] = signal(signum, self._on_signal)
        following = threading.Event()
        if self._follower is not None:
            follow_thread = threading.Thread(target=self._follow, args=(following,),
                                             name="bflow-follow", daemon=True)
            without_signals(follow_thread.start)
        try:
            return self._loop(names)
        finally:
            if self._follower is not None:
                following.set()
                follow_thread.join()
                self._follower.close()
            with self._lock:
                if self._running:  # left the loop with commands still running: a bug, EPIPE
                    self._interrupt()
                self._stopping = True
                self._task_ready.notify_all()
            if self._stopper is not None:
                self._stopper.join()  # every process group is killed before we return
            for worker in self._workers:
                worker.join()
            for signum, handler in previous.items():
                signal(signum, handler)
            if previous:
                self._pass_on_a_late_signal()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signalled = signum
        self._stop_probes.set()
        self.messages.put(_INTERRUPT)

    def _pass_on_a_late_signal(self) -> None:
        """A Ctrl-C (or SIGTERM) that came after the loop took its last message, as the build
        ended, is still on the queue: raise it again, now that the caller's handler is back,
        as if it had come a moment later. Dropped, it left `bflow watch` running."""
        late = False
        try:
            while True:
                late |= self.messages.get_nowait() is _INTERRUPT
        except queue.Empty:
            pass
        if late and not self.interrupted.is_set():
            raise_signal(self._signalled)

    def _follow(self, stop: threading.Event) -> None:
        """Hand on the lines running tasks write, until `stop` is set."""
        assert self._follower is not None
        while not stop.wait(FOLLOW_SECONDS):
            with self._lock:
                self._follower.poll()

    def _on_line(self, task: str, line: str) -> None:
        self.reporter.handle(ev.TaskOutput(task, line))  # under the lock, as every event

    def _on_retry(self, event: ev.TaskRetry) -> None:
        with self._lock:
            self.reporter.handle(event)

    def _interrupt(self) -> None:
        """Start nothing more, cut retries short, and stop every running process group."""
        self._stopping = True
        self._task_ready.notify_all()
        self._stop_probes.set()
        if not self.interrupted.is_set():
            self.interrupted.set()
            self._stop_commands()

    def _stop_commands(self) -> None:
        """Stop every running process group (and the output cache's lookups), once."""
        with self._stopper_lock:
            if self._stopper is None:
                self.cache.stop()
                self._stopper = threading.Thread(target=self.runner.stop_all,
                                                 name="bflow-stop")
                without_signals(self._stopper.start)

    def _loop(self, names: list[str]) -> BuildResult:
        tasks = self.tasks
        self._names = dict.fromkeys(names)
        self._plan = plan = Plan(self.project.graph, names,
                                 recorded_depfile_links(self.project.graph, names, self.state))
        result = self._result
        started_at = self.clock()
        with self._lock:
            self.reporter.handle(ev.BuildStarted(
                total=sum(1 for n in names if not tasks[n].is_group),
                jobs=self.options.jobs))
            if not self._settle(plan, self._stale, result, enough=self.options.jobs):
                self._failed()
            self._advance()
        fault: BuildError | None = None
        while not self._finished:
            try:
                # Woken now and then: Python runs signal handlers in the main thread only,
                # and a Ctrl-C the kernel hands to a worker does not end this wait
                message = self.messages.get(timeout=SIGNAL_CHECK_SECONDS)
            except queue.Empty:
                continue
            if message is _INTERRUPT:
                # The commands first, without the lock: a worker may hold it while it prints
                # to a stdout nobody reads (a stalled pager), and they would run on meanwhile.
                # Nothing is started or decided from here on, as under the lock below.
                self._stopping = True
                self.interrupted.set()
                self._stop_commands()
                with self._lock:
                    self._interrupt()
                    self._advance()
            elif isinstance(message, BuildError):
                fault = message
                self._stop_for(fault)
                break
            elif isinstance(message, BaseException):
                raise message
            # else _FINISHED, put once `_finished` is set

        tasks = self.tasks
        if fault is None and not self._stopping and not self.interrupted.is_set():
            self._fail_cycle(plan, result)
        for name in self._names:  # groups too, as `-k` skips them: the result has every task
            if name not in result.tasks:
                blocker = plan.blocked_by.get(name)
                failed = blocker is not None and \
                    getattr(result.tasks.get(blocker), "reason", "") != ev.INTERRUPTED
                self._skip(name, f"dependency failed: {blocker}" if failed else "build stopped",
                           result)
        if not self.interrupted.is_set():
            self.hasher.settle_racy()
        try:
            self.state.record_stats(self.hasher.take_changes())
        except BuildError:
            if fault is None:
                raise
        if self.interrupted.is_set():
            result.exit_status = EXIT_INTERRUPTED
        elif result.names(Outcome.FAILED) or fault is not None:
            result.exit_status = EXIT_FAILED
        result.duration = self.clock() - started_at
        self.reporter.handle(summary(result, self.tasks))
        if fault is not None:  # the build has ended as a failed one does: now name the fault
            raise fault
        return result

    def _stop_for(self, fault: BuildError) -> None:
        """A fault that stops the whole build (a log or the state that cannot be written, a
        cluster that is gone): start nothing more, stop what runs, wait for the workers, and
        fail each task a worker was left holding with the fault as its reason. The build then
        ends as a failed one does, so that `--json`, the page, the trace and the hooks each
        see its end."""
        with self._lock:
            self._stopping = True
            self._task_ready.notify_all()
            self._stop_probes.set()
            self._stop_commands()
        for worker in self._workers:
            worker.join()
        with self._lock:
            for name in list(self._running):
                del self._running[name]
                own = self._faults.get(name, fault)
                try:
                    self._fail(self.tasks[name], str(own), self._result,
                               own.execution if isinstance(own, LostRun) else None)
                except BuildError:  # reported; its failure is what could not be recorded
                    pass
                self._plan.finished(name, ok=False)

    def _fail_cycle(self, plan: Plan, result: BuildResult) -> None:
        """Tasks still waiting once nothing runs, with nothing failed or stopped: they wait
        for each other, through instances found during the build (a foreach over files a
        task writes, whose instances read what a task reading theirs writes). The first task
        of the cycle fails, naming it, and those after it are blocked by it."""
        cycle = plan.cycle(name for name in self._names if name not in result.tasks)
        if cycle:
            self._fail(self.tasks[cycle[0]], "dependency cycle, found once the files the tasks "
                       f"read were written: {' -> '.join(cycle)}; break it in the Flowfile",
                       result)
            plan.finished(cycle[0], ok=False)

    def _failed(self) -> None:
        """A task failed: without -k, start nothing more (running tasks finish). The tasks
        ready by then are still decided, so the summary counts those up to date as such."""
        if not self.options.keep_going and not self._stopping:
            self._stopping = True
            self._settle(self._plan, self._stale, self._result)

    def _advance(self) -> None:
        """After a change of the build's state (under the lock): wake or start a worker for
        each task waiting, and tell the main thread when nothing runs and nothing more will."""
        pending = len(self._stale) + self._plan.ready  # stale, or ready and not yet decided
        if getattr(self.reporter, "closed", False):  # stdout closed (`bflow | head`)
            self._stopping = True  # start nothing more; what runs finishes and is recorded
        if not self._running and (self._stopping or not pending):
            if not self._finished:
                self._finished = True
                self._task_ready.notify_all()
                self.messages.put(_FINISHED)
            return
        if self._stopping:
            self._task_ready.notify_all()
            return
        waiting = min(pending, self.options.jobs - len(self._running))
        self._task_ready.notify(waiting)
        while len(self._workers) < min(self.options.jobs, len(self._running) + waiting):
            number = len(self._workers)
            worker = threading.Thread(target=self._work, args=(number,), name=f"bflow-{number}",
                                      daemon=True)
            self._workers.append(worker)
            worker.start()  # signals unblocked: the commands it starts inherit its mask

    def _settle(self, plan: Plan, stale: list[tuple[int, str, Decision]],
                result: BuildResult, enough: int | None = None) -> bool:
        """Decide ready tasks, in build order, until `enough` are queued to run (None: all):
        skip each, pass it (up to date, group) or queue it. Deciding only as many as there are
        free jobs lets the first commands start before thousands of ready tasks are hashed.
        False when one could not be decided (an input that cannot be read): it failed."""
        # Once per task of every build, so the attribute lookups are hoisted.
        records, file_hash, force = self.state.tasks, self.hasher.file_hash, self.options.force
        handle, done, blocked_by = self.reporter.handle, result.tasks, plan.blocked_by
        decided_all = True
        while (enough is None or len(stale) < enough) and (name := plan.pop_ready()) is not None:
            task = self.tasks[name]
            blocker = blocked_by.get(name)
            if blocker is not None:
                self._skip(name, f"dependency failed: {blocker}", result)
                plan.finished(name, ok=False)
                continue
            if task.known_after:
                expanded = self._expand(task, plan, result)
                if expanded is None:
                    decided_all = False
                    continue
                task = expanded
            if task.when and (failing := self._gate.failing(task)):
                if self._stop_probes.is_set():  # its `cmd` was stopped: no answer
                    self._interrupt()
                    break
                self._skip(name, failing, result)  # its record stays; it counts as done
                plan.finished(name, ok=True)
                continue
            if not task.is_group:
                try:
                    decision = decide(task, records.get(name), file_hash, force=force, explain=False)
                except BuildError as exc:  # an input bflow cannot read fails this task only
                    self._fail(task, str(exc), result)
                    plan.finished(name, ok=False)
                    decided_all = False
                    continue
                if decision.reasons:
                    missing = missing_input(decision, self.project.graph.producer_of,
                                            partial(_skip_reason, result))
                    if missing is not None:
                        self._fail(task, str(missing), result)
                        plan.finished(name, ok=False)
                        decided_all = False
                        continue
                    heapq.heappush(stale, (plan.order[name], name, decision))
                    continue
                handle(ev.TaskSkipped(name, "up to date"))
            done[name] = TaskResult(name, Outcome.UP_TO_DATE)
            plan.finished(name, ok=True)
        return decided_all

    def _expand(self, task: Task, plan: Plan, result: BuildResult) -> Task | None:
        """A task whose globs match files this build writes, ready now that those are written:
        with its inputs found again on disk, or for the group of a foreach's instances, with
        the instances found again (new ones join the plan, those whose item is gone leave it,
        and their outputs are removed). None when that failed: a path it names is gone."""
        if self._expander is None:
            from buildflow.project import Expander

            self._expander = Expander(self.project)
            self.tasks = dict(self.tasks)
        try:
            if task.expands:
                self._find_instances(task, self._expander.instances(task, self.tasks), plan,
                                     result)
            elif task.name not in self._current and \
                    any(after != task.base for after in task.known_after):  # else made just now
                task = self.tasks[task.name] = self._expander.task(task, self.tasks)
        except FlowfileError as exc:
            self._fail(task, f"{'; '.join(exc.problems)} (found once the files it reads were "
                       "written)", result)
            plan.finished(task.name, ok=False)
            return None
        return task

    def _find_instances(self, group: Task, found: dict[str, Task], plan: Plan,
                        result: BuildResult) -> None:
        tasks = self.tasks
        whole = self._wanted_whole(group, plan)
        gone = [name for name, task in tasks.items()
                if task.base == group.base and task.item is not None and name not in found]
        dropped = 0  # from the plan, so from the count of tasks the build may run
        for name in gone:
            del tasks[name]
            if name in plan:
                plan.drop(name)
                del self._names[name]
                dropped += 1
        # and those whose file went before this project was loaded: known by their records
        prefix = group.base + ":"
        gone += [name for name in (*self.state.tasks, *self.state.left) if name.startswith(prefix)
                 and name not in found and name not in tasks and name not in gone]
        readers = [name for name in plan.dependents(group.name)
                   if tasks[name].base != group.base]
        tasks.update(found)
        from buildflow.prune import prune_instances

        if prune_instances(self.project, self.state, self.hasher, gone, found, tasks,
                           self.reporter.warn, getattr(self.reporter, "note", self.reporter.warn)):
            self.hasher.forget_seen()
        self._instances[group.name] = list(found)
        # Made now: those whose globs wait for no task still to run need no second look
        self._current.update(name for name, task in found.items()
                             if all(after == task.base or after in result.tasks
                                    for after in task.known_after))
        added = [name for name in found if name not in plan] if whole else []
        for name in added:
            self._add_to_plan(name, plan, result)
            for reader in readers:
                plan.add_edge(name, reader)
        self.reporter.handle(ev.PlanChanged(added=len(added), dropped=dropped))

    def _wanted_whole(self, group: Task, plan: Plan) -> bool:
        """Whether the build wants every instance of the foreach `group` stands for, so that
        those found now join it: a task other than its instances waits for it, or the
        selection took all the instances known at load or none of them (`bflow each`, or an
        instance whose file is not there yet, which stands for all that will be). Selected by
        name (`bflow each:site/c.html`), known instances are built alone, as `-n` and
        `status` say."""
        if any(self.tasks[name].base != group.base for name in plan.dependents(group.name)):
            return True
        known = [name for name, task in self.project.tasks.items()
                 if task.base == group.base and task.item is not None]
        selected = sum(name in self._names for name in known)
        return selected in (0, len(known))

    def _add_to_plan(self, name: str, plan: Plan, result: BuildResult) -> None:
        """Add a task found during the build to the plan, after what it needs that is not in
        the plan yet (a clean build's plan had no instance to need it)."""
        task = self.tasks[name]
        graph = self.project.graph
        if self.project.tasks.get(name) is task:
            upstream: list[str] = list(graph.upstream[name])
        else:
            upstream = [*task.deps, *task.known_after,
                        *(n for after in task.known_after if after != task.base
                          for n in self._instances.get(after, ())),
                        *filter(None, map(graph.producer_of, task.inputs))]
        # A producer the graph loaded before the build names, gone since (an instance found
        # from files the build has removed), is no task of this build to wait for.
        upstream = [up for up in upstream if up in self.tasks or up in result.tasks]
        for up in upstream:
            if up not in plan and up not in result.tasks:
                self._add_to_plan(up, plan, result)
        # Skipped by its `when`, an upstream task counts as done; skipped below a failure, not.
        failed = next((plan.blocked_by.get(up, up) for up in upstream if up in result.tasks
                       and (result.tasks[up].outcome is Outcome.FAILED or up in plan.blocked_by)),
                      None)
        order = graph.order[name] if name in graph.order else graph.order[task.base]
        plan.add(name, order, upstream, result.tasks, failed)
        self._names[name] = None

    def _fail(self, task: Task, reason: str, result: BuildResult,
              done: Execution | None = None) -> None:
        """Report a failure and drop the task's success record, so the next build runs it.
        Reported first: a state that cannot be written still leaves the failure said."""
        attempts, duration = (done.attempts, done.duration) if done else (0, 0.0)
        self.reporter.handle(ev.TaskFailed(task.name, round(duration, 3), attempts,
                                           done.output if done else "", reason,
                                           masked(task.env, task.shown)))
        result.tasks[task.name] = TaskResult(task.name, Outcome.FAILED, attempts, duration,
                                             reason)
        self.state.record_failure(task.name, self._left_by(task, done),
                                  self.hasher.take_changes())

    def _left_by(self, task: Task, done: Execution | None) -> Left:
        """What a failed run of `task` left that bflow knows is the task's: its depfile, and
        the outputs written since the run started or still as bflow last recorded them (by
        its last success or an earlier failed run). Anything else at an output's path may be
        the user's."""
        record = self.state.tasks.get(task.name)
        known = {**self.state.left.get(task.name, NOTHING_LEFT).outputs,
                 **(record.outputs if record else {})}
        outputs: dict[str, str] = {}
        for path in task.outputs:
            try:
                digest = self.hasher.file_hash(path)
            except BuildError:  # unreadable: not known to be the task's
                continue
            if digest == MISSING:
                continue
            if known.get(path) == digest:
                outputs[path] = digest
            # a directory output written into during the run is the task's whole, as a
            # successful run's tree is; a directory where a file output goes is not
            elif done is not None and written_since(self.hasher.fs, path, done.started_file_ns,
                                                    trees=path in task.dir_outputs):
                outputs[path] = digest
        return Left(outputs, task.depfile or "", tuple(self.state.depfile_named(task.name)))

    def _skip(self, name: str, reason: str, result: BuildResult) -> None:
        if not self.tasks[name].is_group:
            self.reporter.handle(ev.TaskSkipped(name, reason))
        result.tasks[name] = TaskResult(name, Outcome.SKIPPED, reason=reason)

    def _take(self) -> Task | None:
        """The next stale task to run (or restore), in build order; None once the build
        starts nothing more. Called under the lock; waits there for a task."""
        while True:
            if self._finished or self._stopping:
                return None
            if not self._stale and self._plan.ready and len(self._running) < self.options.jobs:
                if not self._settle(self._plan, self._stale, self._result, enough=1):
                    self._failed()
                self._advance()  # what it found up to date may end the build or ready more
                continue
            if self._stale and len(self._running) < self.options.jobs and \
                    self._may_start(self._stale[0][1]):
                _, name, decision = heapq.heappop(self._stale)
                self._running[name] = decision
                task = self.tasks[name]
                self._started_stats[name] = self._recorder.at_start(task)
                self._record_start(task)
                for path in (*task.outputs, *([task.depfile] if task.depfile else [])):
                    parent = posixpath.dirname(path)
                    if parent:
                        try:
                            self.hasher.fs.make_dirs(parent)
                        except OSError:  # a file on the way, no permission: the command
                            pass  # meets it, and fails saying so, as under Make
                return task
            self._task_ready.wait()

    def _record_start(self, task: Task) -> None:
        """Say in the state, before the command runs, what its run may write: its outputs
        not there now (one there already may be the user's) or that its success record says
        it wrote, and its depfile. A kill during the run then leaves them known
        (`settle_started`): a re-run killed half way leaves files its record does not
        describe, which a prune would otherwise take for edits by hand and keep."""
        stat = self.hasher.fs.stat
        record = self.state.tasks.get(task.name)
        recorded = record.outputs if record is not None else {}
        writes = tuple(path for path in task.outputs
                       if path in recorded or stat(path) is None)
        if writes or task.depfile:
            self.state.record_start(task.name, writes, task.depfile or "",
                                    self.hasher.fs.file_now_ns())

    def _may_start(self, name: str) -> bool:
        """An interactive task runs alone: it waits until nothing runs, and nothing starts
        beside it (later tasks wait too, so the build order stays as it is)."""
        tasks = self.tasks
        if any(tasks[running].interactive for running in self._running):
            return False
        return not (tasks[name].interactive and self._running)

    def _work(self, number: int) -> None:
        """A worker: take a task, run it without the lock, then record it and decide what it
        made ready, itself, so the next command starts without waiting for another thread."""
        slot = LogSlot(self._old_logs, number)
        plan, stale, result = self._plan, self._stale, self._result
        task: Task | None = None
        try:
            with self._lock:
                while (task := self._take()) is not None:
                    restored = self._restored(task, plan, result)
                    if not restored and self._stopping:  # stopped as its lookup ran
                        self._put_back(task)
                    elif not restored:
                        self.reporter.handle(ev.TaskStarted(task.name, masked(task.env,
                                                                              task.shown)))
                        if task.interactive:
                            self.reporter.handle(ev.TaskAttached(task.name))
                        if self._follower is not None:
                            slot.open()
                            self._follower.follow(task, slot.path)
                        self._lock.release()
                        try:
                            done = self.attempts.execute(task, slot)
                        except OSError as exc:  # the log: a full disk, a read-only cache dir
                            # a rename's target (the log) rather than its scratch file
                            path = exc.filename2 or exc.filename
                            fix = "remove the directory there" if \
                                isinstance(exc, IsADirectoryError) else \
                                "free some disk space or make the cache dir writable"
                            raise BuildError(
                                f"{path}: cannot write the output log of task "
                                f"'{task.name}': {exc.strerror}; {fix}") from None
                        finally:
                            self._lock.acquire()
                        if task.interactive and done.result.signal == SIGINT:
                            self._interrupt()  # Ctrl-C went to the task first, as in a shell
                        if not self._complete(done, plan, result):
                            self._failed()
                    if not self._stopping and \
                            not self._settle(plan, stale, result, enough=self.options.jobs):
                        self._failed()
                    self._advance()
        except BaseException as exc:  # a fault that stops the build, or a bug: to the main thread
            if isinstance(exc, BuildError) and task is not None:
                self._faults[task.name] = exc  # the task in hand fails with its own
            self.messages.put(exc)
        finally:
            slot.close()

    def _put_back(self, task: Task) -> None:
        """Let go of a task taken to run that never starts: the build stopped (Ctrl-C, a
        failure) while its output cache lookup ran. It ends as the tasks never taken do."""
        del self._running[task.name]
        del self._started_stats[task.name]

    def _restored(self, task: Task, plan: Plan, result: BuildResult) -> bool:
        """Restore a task from the output cache (looked up without the lock) and record it as
        its run would have been; False on a miss (and with -B, which runs every command).
        The lock is kept where no lookup can hit, so tasks start in their order."""
        if self.options.force or not self.cache.may_hold(task):
            return False
        decision = self._running[task.name]
        started = self.clock()
        self._lock.release()
        restored: Restored | None = None
        try:
            restored = self.cache.restore(task, decision)
        finally:
            self._lock.acquire()
        if restored is None:
            return False
        del self._running[task.name]
        del self._started_stats[task.name]
        self.hasher.forget_seen()
        duration = self.clock() - started
        outputs = {path: self.hasher.written_hash(path) for path in task.outputs}
        self.state.record_success(task.name, TaskRecord(
            decision.action, decision.input_hashes, restored.depfile_inputs, outputs,
            round(duration, 3)), self.hasher.take_changes())
        output = self._old_logs.replay(task.name, restored.log)
        self.reporter.handle(ev.TaskRestored(task.name, round(duration, 3), output))
        result.tasks[task.name] = TaskResult(task.name, Outcome.RESTORED, 0, duration)
        plan.finished(task.name, ok=True)
        return True

    def _complete(self, done: Execution, plan: Plan, result: BuildResult) -> bool:
        """Record a finished task and report it; False when it failed."""
        task = done.task
        if self._follower is not None:
            self._follower.end(task.name)
        if done.log_problem:
            self.reporter.warn(done.log_problem)
        decision = self._running.pop(task.name)
        at_start = self._started_stats.pop(task.name, ([], {}))
        self.hasher.forget_seen()
        duration = round(done.duration, 3)
        record = None
        if done.result.ok:
            try:
                record, reason = self._recorder.record(task, decision, done, at_start,
                                                       duration)
            except BuildError as exc:  # an output or a depfile input it cannot read
                reason = str(exc)
        elif self.interrupted.is_set():
            reason = ev.INTERRUPTED
        else:
            reason = done.result.describe(task)
        # What earlier tasks wrote, now past the window; only once the record is made, whose
        # depfile inputs count as read before the start by when they were hashed.
        self.hasher.settle_racy(oldest_only=True)
        if record is not None:
            self.state.record_success(task.name, record, self.hasher.take_changes())
            self.cache.store(task, record, self.hasher.file_hash)
            self.reporter.handle(ev.TaskFinished(task.name, duration, done.attempts,
                                                 done.output))
            result.tasks[task.name] = TaskResult(task.name, Outcome.RAN, done.attempts,
                                                 done.duration)
            plan.finished(task.name, ok=True)
            return True
        self._fail(task, reason, result, done)
        plan.finished(task.name, ok=False)
        return False


def _skip_reason(result: BuildResult, name: str) -> str | None:
    """Why the build skipped `name` by its `when`, or None."""
    done = result.tasks.get(name)
    return done.reason if done is not None and done.outcome is Outcome.SKIPPED else None


def summary(result: BuildResult, tasks: dict[str, Task]) -> ev.BuildFinished:
    """The counts of the build's last line (a dry run's too): of the tasks that run commands,
    and of the groups that failed (a foreach whose instances could not be found), as
    reported."""
    counted = [r for n, r in result.tasks.items()
               if not tasks[n].is_group or r.outcome is Outcome.FAILED]
    interrupted = sum(r.outcome is Outcome.FAILED and r.reason == ev.INTERRUPTED
                      for r in counted)
    return ev.BuildFinished(
        ran=sum(r.outcome is Outcome.RAN for r in counted),
        up_to_date=sum(r.outcome is Outcome.UP_TO_DATE for r in counted),
        failed=sum(r.outcome is Outcome.FAILED for r in counted) - interrupted,
        skipped=sum(r.outcome is Outcome.SKIPPED for r in counted),
        duration=round(result.duration, 3), exit_status=result.exit_status,
        restored=sum(r.outcome is Outcome.RESTORED for r in counted), interrupted=interrupted)
