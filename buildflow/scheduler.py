"""The build loop: a ready queue over the DAG, `-j` workers, retries with backoff, fail-fast or
keep-going, early cutoff, and interrupts.

Staleness is decided in the main thread as each task becomes ready (its upstream finished), so
a rebuilt task that wrote identical bytes leaves its dependents up to date. Worker threads only
run commands; every record and every event is made by the main thread, in one place.
"""

from __future__ import annotations

import heapq
import os
import posixpath
import queue
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from buildflow import depfile as depfiles
from buildflow import events as ev
from buildflow.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, BuildError
from buildflow.hashing import MISSING, UNKNOWN, Hasher
from buildflow.logs import log_path
from buildflow.model import Project, Task
from buildflow.runner import CommandRunner, RunResult
from buildflow.secrets import Masker
from buildflow.staleness import Decision, decide
from buildflow.state import State, TaskRecord

MAX_PRINTED_OUTPUT = 1 << 20


class Outcome(Enum):
    RAN = "ran"
    UP_TO_DATE = "up to date"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class TaskResult:
    name: str
    outcome: Outcome
    attempts: int = 0
    duration: float = 0.0
    reason: str = ""


@dataclass
class BuildResult:
    exit_status: int
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    duration: float = 0.0

    def names(self, outcome: Outcome) -> list[str]:
        return [name for name, result in self.tasks.items() if result.outcome is outcome]


@dataclass(frozen=True)
class BuildOptions:
    jobs: int = 1
    keep_going: bool = False
    force: bool = False


class _Done:
    __slots__ = ("task", "result", "attempts", "duration", "output", "started_ns")

    def __init__(self, task: Task, result: RunResult, attempts: int, duration: float,
                 output: str, started_ns: int) -> None:
        self.task, self.result, self.attempts = task, result, attempts
        self.duration, self.output, self.started_ns = duration, output, started_ns


_INTERRUPT = object()


class Builder:
    def __init__(self, project: Project, state: State, hasher: Hasher, runner: CommandRunner,
                 reporter: ev.Reporter, options: BuildOptions, *,
                 wait: Callable[[threading.Event, float], Any] | None = None,
                 jitter: Callable[[], float] = random.random,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.project = project
        self.state = state
        self.hasher = hasher
        self.runner = runner
        self.reporter = reporter
        self.options = options
        self.wait = wait or (lambda stop, seconds: stop.wait(seconds))
        self.jitter = jitter
        self.clock = clock
        self.stop = threading.Event()
        self.messages: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.jobs: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self.workers: list[threading.Thread] = []
        self.base_env = dict(os.environ)
        self._pending_decisions: dict[str, Decision] = {}

    # --- worker side -------------------------------------------------------------------
    def _worker(self) -> None:
        while (task := self.jobs.get()) is not None:
            try:
                self.messages.put(self._execute(task))
            except OSError as exc:  # the log: a full disk, a read-only cache dir
                self.messages.put(BuildError(
                    f"{exc.filename}: cannot write the output log of task '{task.name}': "
                    f"{exc.strerror}; free some disk space or make the cache dir writable"))
            except BaseException as exc:  # a bug: hand it to the main thread
                self.messages.put(exc)

    def _execute(self, task: Task) -> _Done:
        env = {**self.base_env, **dict(task.env)}
        log_file = log_path(self.project.cache_dir, task.name)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        started = self.clock()
        started_ns = time.time_ns()
        attempts = 0
        while True:
            attempts += 1
            with open(log_file, "wb") as log:
                result = self.runner.run(task, self.project.root, env, log)
            if result.ok or self.stop.is_set() or attempts > task.retries:
                break
            delay = task.retry_delay * 2 ** (attempts - 1) * (1 + 0.5 * self.jitter())
            self.messages.put(ev.TaskRetry(task.name, attempts + 1, task.retries + 1,
                                           round(delay, 3), result.describe(task.timeout)))
            self.wait(self.stop, delay)
            if self.stop.is_set():
                break
        output = self._read_log(log_file, Masker(task.env))
        return _Done(task, result, attempts, self.clock() - started, output, started_ns)

    @staticmethod
    def _read_log(path: os.PathLike[str], mask: Masker) -> str:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PRINTED_OUTPUT + 1)
        text = data[:MAX_PRINTED_OUTPUT].decode("utf-8", "replace")
        if mask:
            text = mask(text)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        if len(data) > MAX_PRINTED_OUTPUT:
            text += f"\n... (output cut at {MAX_PRINTED_OUTPUT} bytes)\n"
        return text

    # --- main thread -------------------------------------------------------------------
    def build(self, names: list[str]) -> BuildResult:
        """Build `names` (already closed over their dependencies, in topological order)."""
        in_main = threading.current_thread() is threading.main_thread()
        previous = {}
        if in_main:
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self._on_signal)
        try:
            return self._loop(names)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for _ in self.workers:
                self.jobs.put(None)
            for worker in self.workers:
                worker.join()

    def _on_signal(self, signum: int, frame: object) -> None:
        self.messages.put(_INTERRUPT)

    def _loop(self, names: list[str]) -> BuildResult:
        tasks = self.project.tasks
        graph = self.project.graph
        plan = set(names)
        started_at = self.clock()
        result = BuildResult(EXIT_OK)
        waiting = {n: sum(1 for up in graph.upstream[n] if up in plan) for n in names}
        failed_upstream: dict[str, str] = {}
        ready = [(graph.order[n], n) for n in names if waiting[n] == 0]
        heapq.heapify(ready)
        running = 0
        stopping = interrupted = False
        self.reporter.handle(ev.BuildStarted(
            total=sum(1 for n in names if not tasks[n].is_group), to_check=len(names),
            jobs=self.options.jobs))

        def finish(name: str, outcome: Outcome, **details: Any) -> None:
            result.tasks[name] = TaskResult(name, outcome, **details)
            for down in graph.downstream[name]:
                if down not in waiting:
                    continue
                if outcome in (Outcome.FAILED, Outcome.SKIPPED):
                    failed_upstream.setdefault(down, failed_upstream.get(name, name))
                waiting[down] -= 1
                if waiting[down] == 0:
                    heapq.heappush(ready, (graph.order[down], down))

        while ready or running:
            while ready and not stopping and running < self.options.jobs:
                _, name = heapq.heappop(ready)
                task = tasks[name]
                if name in failed_upstream:
                    reason = f"dependency failed: {failed_upstream[name]}"
                    if not task.is_group:
                        self.reporter.handle(ev.TaskSkipped(name, reason))
                    finish(name, Outcome.SKIPPED, reason=reason)
                elif task.is_group:
                    finish(name, Outcome.UP_TO_DATE)
                else:
                    decision = decide(task, self.state.tasks.get(name), self.hasher,
                                      force=self.options.force)
                    if not decision.stale:
                        self.reporter.handle(ev.TaskSkipped(name, "up to date"))
                        finish(name, Outcome.UP_TO_DATE)
                    else:
                        self._start(task, decision)
                        running += 1
            if not running:
                break
            message = self.messages.get()
            if message is _INTERRUPT:
                if not interrupted:
                    interrupted = stopping = True
                    self.stop.set()
                    threading.Thread(target=self.runner.stop_all, daemon=True).start()
                continue
            if isinstance(message, BaseException):
                raise message
            if isinstance(message, ev.TaskRetry):
                self.reporter.handle(message)
                continue
            running -= 1
            if self._complete(message, finish, interrupted):
                continue
            if not self.options.keep_going:
                stopping = True
                self.stop.set()

        for name in names:
            if name not in result.tasks and not tasks[name].is_group:
                reason = f"dependency failed: {failed_upstream[name]}" \
                    if name in failed_upstream else "build stopped"
                self.reporter.handle(ev.TaskSkipped(name, reason))
                result.tasks[name] = TaskResult(name, Outcome.SKIPPED, reason=reason)
        self.state.record_stats(self.hasher.take_changes())
        if interrupted:
            result.exit_status = EXIT_INTERRUPTED
        elif result.names(Outcome.FAILED):
            result.exit_status = EXIT_FAILED
        result.duration = self.clock() - started_at
        counted = [r for n, r in result.tasks.items() if not tasks[n].is_group]
        self.reporter.handle(ev.BuildFinished(
            ran=sum(r.outcome is Outcome.RAN for r in counted),
            up_to_date=sum(r.outcome is Outcome.UP_TO_DATE for r in counted),
            failed=sum(r.outcome is Outcome.FAILED for r in counted),
            skipped=sum(r.outcome is Outcome.SKIPPED for r in counted),
            duration=round(result.duration, 3), exit_status=result.exit_status))
        return result

    def _start(self, task: Task, decision: Decision) -> None:
        for path in (*task.outputs, *([task.depfile] if task.depfile else [])):
            parent = posixpath.dirname(path)
            if parent:
                self.hasher.fs.make_dirs(parent)
        self._pending_decisions[task.name] = decision
        mask = Masker(task.env)
        self.reporter.handle(ev.TaskStarted(task.name, tuple(mask(c) for c in task.commands)))
        if len(self.workers) < self.options.jobs:
            worker = threading.Thread(target=self._worker, name=f"bflow-worker-{len(self.workers)}",
                                      daemon=True)
            worker.start()
            self.workers.append(worker)
        self.jobs.put(task)

    def _complete(self, done: _Done, finish: Callable[..., None], interrupted: bool) -> bool:
        """Record a finished task; return False when it failed."""
        task = done.task
        decision = self._pending_decisions.pop(task.name)
        mask = Masker(task.env)
        reason = "interrupted" if interrupted and not done.result.ok \
            else done.result.describe(task.timeout)
        if done.result.ok:
            outputs = {path: self.hasher.file_hash(path) for path in task.outputs}
            missing = [path for path, digest in outputs.items() if digest == MISSING]
            if missing:
                reason = (f"exited 0 but did not write declared output {missing[0]}"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
            else:
                record = TaskRecord(decision.action, decision.input_hashes,
                                    self._depfile_inputs(task, done.started_ns), outputs,
                                    round(done.duration, 3))
                self.state.record_success(task.name, record, self.hasher.take_changes())
                self.reporter.handle(ev.TaskFinished(task.name, round(done.duration, 3),
                                                     done.attempts, done.output))
                finish(task.name, Outcome.RAN, attempts=done.attempts, duration=done.duration)
                return True
        self.state.forget([task.name])
        self.reporter.handle(ev.TaskFailed(task.name, round(done.duration, 3), done.attempts,
                                           done.output, reason,
                                           tuple(mask(c) for c in task.commands)))
        finish(task.name, Outcome.FAILED, attempts=done.attempts, duration=done.duration,
               reason=reason)
        return False

    def _depfile_inputs(self, task: Task, started_ns: int) -> dict[str, str]:
        """Hashes of the files the depfile names; one changed during the run is UNKNOWN."""
        if not task.depfile:
            return {}
        try:
            text = (self.project.root / task.depfile).read_text("utf-8", "surrogateescape")
        except (FileNotFoundError, IsADirectoryError):
            return {}
        found: dict[str, str] = {}
        declared = set(task.inputs) | set(task.outputs)
        for raw in depfiles.parse(text):
            joined = raw if raw.startswith("/") else posixpath.join(task.cwd, raw)
            path = posixpath.normpath(joined)
            if path in declared or path in found:
                continue
            st = self.hasher.fs.stat(path)
            if st is not None and st.mtime_ns >= started_ns:
                found[path] = UNKNOWN
            else:
                found[path] = self.hasher.file_hash(path)
        return found
