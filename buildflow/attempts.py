"""Runs one task to its end: attempts with exponential backoff, every attempt saved to the
task's log. Worker threads call this; it reports retries through a callback and records nothing.

Each attempt runs on whichever executor (`executors`) the build was given. Time comes in
through `wait`, `jitter` and `clock`, and the times files are compared with from the disk, so
engine tests run retries on a fake clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import NamedTuple

from buildflow import events as ev
from buildflow.errors import BuildError
from buildflow.executors import AttemptLost, Executor
from buildflow.fs import FileSystem
from buildflow.logs import LogSlot
from buildflow.model import Task
from buildflow.runner import RunResult
from buildflow.secrets import Masker

Wait = Callable[[threading.Event, float], object]


def backoff(task: Task, retry: int, jitter: float) -> float:
    """Seconds before retry number `retry` (0 for the first): retry_delay * 2**retry, plus up
    to half of that again as jitter (0 <= jitter < 1), so parallel retries do not collide."""
    return task.retry_delay * 2.0 ** retry * (1 + 0.5 * jitter)


class Execution(NamedTuple):
    task: Task
    result: RunResult
    attempts: int
    duration: float
    output: str  # masked; the tail of the log when it is long
    started_ns: int  # the disk's clock at the first attempt
    # The disk's file clock then (`FileSystem.file_now_ns`): a file with an mtime at or past
    # it may have been written during the run.
    started_file_ns: int
    # Why its output could not be saved as its log (a full disk), if it was not: a warning
    log_problem: str = ""


class LostRun(BuildError):
    """An attempt the executor lost (`AttemptLost`), with the task's run up to it: the fault
    stops the build, and the task fails as having run that far."""

    def __init__(self, message: str, execution: Execution) -> None:
        super().__init__(message)
        self.execution = execution


class Attempts:
    """Runs a task's attempts, one after another, on the executor the build was given."""

    def __init__(self, runner: Executor, root: str, fs: FileSystem,
                 base_env: Mapping[str, str], *, interrupted: threading.Event,
                 on_retry: Callable[[ev.TaskRetry], None], wait: Wait,
                 jitter: Callable[[], float], clock: Callable[[], float]) -> None:
        self.runner = runner
        self.root = root
        self.fs = fs
        self.base_env = base_env
        self.interrupted = interrupted
        self.on_retry = on_retry
        self.wait = wait
        self.jitter = jitter
        self.clock = clock

    def execute(self, task: Task, slot: LogSlot) -> Execution:
        """Run `task` to its end, its output going through the calling worker's `slot`."""
        # Without env of its own a task gets the base mapping itself, which lets the runner
        # pass on bflow's own environment without encoding it again for every command.
        env = {**self.base_env, **dict(task.env)} if task.env else self.base_env
        started, started_ns, started_file_ns = self.clock(), self.fs.now_ns(), \
            self.fs.file_now_ns()
        attempts = 0
        masker = (Masker(task.env) or None) if task.env else None  # None: nothing to mask
        log = slot.open()
        while True:
            attempts += 1
            if attempts > 1 and not task.interactive:  # whose output is never saved
                log.write(f"bflow: attempt {attempts} of {task.retries + 1}\n".encode())
            try:
                result = self.runner.run(task, self.root, env, log)
            except AttemptLost as exc:
                output = slot.finish(task.name, silent_success=False, mask=masker)
                raise LostRun(str(exc), Execution(
                    task, RunResult(None), attempts, self.clock() - started, output,
                    started_ns, started_file_ns, slot.problem)) from None
            if result.ok or attempts > task.retries or self.interrupted.is_set():
                break
            delay = backoff(task, attempts - 1, self.jitter())
            self.on_retry(ev.TaskRetry(task.name, attempts + 1, task.retries + 1,
                                       round(delay, 3), result.describe(task)))
            self.wait(self.interrupted, delay)
            if self.interrupted.is_set():
                break
        output = slot.finish(task.name,
                             silent_success=result.ok and not result.strays,
                             mask=masker)
        return Execution(task, result, attempts, self.clock() - started, output, started_ns,
                         started_file_ns, slot.problem)
