"""A build as spans of time: each attempt of each task, on the job slot it held, and each
task's state as the build goes. The trace and the page are drawn from it.

Slots are given as the scheduler fills them: a task takes the lowest free slot when it starts
and keeps it until it ends, its retries and their waits included (as it keeps its `-j` job),
so there are never more slots than jobs. Times are taken as the events come, in seconds
from the build's start.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import NamedTuple

from buildflow import events as ev

# Task states, as the page and SPEC §8 name them.
PENDING, RUNNING, OK, FAILED, SKIPPED, UPTODATE, RESTORED = (
    "pending", "running", "ok", "failed", "skipped", "uptodate", "restored")
STATES = (PENDING, RUNNING, OK, FAILED, SKIPPED, UPTODATE, RESTORED)


class Span(NamedTuple):
    """One attempt: `outcome` is "ok", "failed", "retried" (failed, and run again) or, on a
    page of a build still going, "running"."""

    task: str
    slot: int
    start: float
    end: float
    attempt: int
    outcome: str


class Timeline:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.reset(jobs=1)

    def reset(self, jobs: int) -> None:
        """Start over: a new build (each build of `watch` has its own timeline)."""
        self.origin = self.clock()
        self.when = time.time()
        self.jobs = jobs
        self.duration: float | None = None  # set when the build has finished
        self.exit_status: int | None = None
        self.summary: ev.BuildFinished | None = None
        self.spans: list[Span] = []
        self.states: dict[str, str] = {}
        self._running: dict[str, tuple[int, float, int]] = {}  # task -> slot, start, attempt
        self._free: list[int] = []
        self._slots = 0

    def now(self) -> float:
        return self.clock() - self.origin

    def handle(self, event: ev.Event) -> None:
        now = self.now()
        if isinstance(event, ev.TaskStarted):
            slot = heapq.heappop(self._free) if self._free else self._next_slot()
            self._running[event.task] = (slot, now, 1)
            self.states[event.task] = RUNNING
        elif isinstance(event, ev.TaskRetry) and event.task in self._running:
            slot, start, attempt = self._running[event.task]
            self.spans.append(Span(event.task, slot, start, now, attempt, "retried"))
            self._running[event.task] = (slot, now + event.delay, event.attempt)
        elif isinstance(event, (ev.TaskFinished, ev.TaskFailed)):
            ok = isinstance(event, ev.TaskFinished)
            self.states[event.task] = OK if ok else FAILED
            if event.task in self._running:  # a task can fail before it starts
                slot, start, attempt = self._running.pop(event.task)
                if attempt > event.attempts:  # stopped in the wait before a retry, or
                    if event.attempts:  # before its first attempt (a log, the cluster)
                        self._last_attempt_ends(event.task, FAILED)
                else:
                    self.spans.append(Span(event.task, slot, min(start, now), now, attempt,
                                           OK if ok else FAILED))
                heapq.heappush(self._free, slot)
        elif isinstance(event, ev.TaskRestored):
            self.states[event.task] = RESTORED
        elif isinstance(event, ev.TaskSkipped):
            self.states[event.task] = UPTODATE if event.reason == "up to date" else SKIPPED
        elif isinstance(event, ev.BuildStarted):
            self.reset(event.jobs)
        elif isinstance(event, ev.BuildFinished):
            self.duration, self.exit_status, self.summary = now, event.exit_status, event

    def _last_attempt_ends(self, task: str, outcome: str) -> None:
        """The task's last attempt, taken for one a retry would follow, ended the task: the
        retry never started."""
        index = next(i for i in range(len(self.spans) - 1, -1, -1) if self.spans[i].task == task)
        self.spans[index] = self.spans[index]._replace(outcome=outcome)

    def running_spans(self, now: float) -> list[Span]:
        """The attempts still running, as spans up to `now`."""
        return [Span(task, slot, start, max(start, now), attempt, RUNNING)
                for task, (slot, start, attempt) in self._running.items()]

    def _next_slot(self) -> int:
        self._slots += 1
        return self._slots - 1
