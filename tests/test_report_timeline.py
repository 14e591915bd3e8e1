"""A build as spans of time, from its events: job slots taken as the scheduler fills them,
retries on the slot of their first attempt, and each task's state."""

from __future__ import annotations

from buildflow import events as ev
from buildflow.report.timeline import (FAILED, OK, RESTORED, RUNNING, SKIPPED, UPTODATE, Span,
                                       Timeline)


class Clock:
    """Seconds set by the test, as the timeline reads them."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def play(*steps: ev.Event | float) -> Timeline:
    """A timeline fed `steps`: events, and the seconds that pass between them."""
    clock = Clock()
    timeline = Timeline(clock)
    for step in steps:
        if isinstance(step, (int, float)):
            clock.now += step
        else:
            timeline.handle(step)
    return timeline


def started(name: str) -> ev.TaskStarted:
    return ev.TaskStarted(name, ("true",))


def finished(name: str, attempts: int = 1) -> ev.TaskFinished:
    return ev.TaskFinished(name, 0.0, attempts, "")


def test_tasks_take_the_lowest_free_slot_and_keep_it_until_they_end() -> None:
    timeline = play(ev.BuildStarted(total=3, jobs=2), started("a"), 1, started("b"), 1,
                    finished("a"), started("c"),  # a's slot, the lowest free
                    2, finished("b"), ev.TaskFailed("c", 0.0, 1, "", "exit 1", ("false",)))
    assert timeline.spans == [Span("a", 0, 0.0, 2.0, 1, OK), Span("b", 1, 1.0, 4.0, 1, OK),
                              Span("c", 0, 2.0, 4.0, 1, FAILED)]
    assert timeline.states == {"a": OK, "b": OK, "c": FAILED}


def test_a_retry_keeps_its_slot_and_starts_after_its_delay() -> None:
    retry = (ev.BuildStarted(total=1, jobs=1), started("flaky"), 1,
             ev.TaskRetry("flaky", attempt=2, of=3, delay=0.5, reason="exit 1"), 2)
    running = play(*retry)
    assert running.running_spans(running.now()) == [Span("flaky", 0, 1.5, 3.0, 2, RUNNING)]
    assert play(*retry, finished("flaky", attempts=2)).spans == [
        Span("flaky", 0, 0.0, 1.0, 1, "retried"), Span("flaky", 0, 1.5, 3.0, 2, OK)]


def test_a_build_stopped_in_the_wait_before_a_retry_shows_no_attempt_that_never_ran() -> None:
    stopped = play(ev.BuildStarted(total=1, jobs=1), started("flaky"), 1,
                   ev.TaskRetry("flaky", attempt=2, of=3, delay=5.0, reason="exit 1"), 0.5,
                   ev.TaskFailed("flaky", 1.5, 1, "", "interrupted", ("false",)))
    assert stopped.spans == [Span("flaky", 0, 0.0, 1.0, 1, FAILED)]
    assert stopped.running_spans(stopped.now()) == []


def test_states_of_tasks_that_did_not_run() -> None:
    timeline = play(ev.TaskSkipped("a", "up to date"), ev.TaskSkipped("b", "dependency failed: x"),
                    ev.TaskRestored("c", 0.1, ""),
                    ev.TaskFailed("d", 0.0, 0, "", "its input is missing", ()))  # never started
    assert timeline.states == {"a": UPTODATE, "b": SKIPPED, "c": RESTORED, "d": FAILED}
    assert timeline.spans == []


def test_each_build_starts_a_timeline_of_its_own() -> None:
    summary = ev.BuildFinished(ran=1, up_to_date=0, failed=0, skipped=0, duration=3.0,
                               exit_status=0)
    timeline = play(ev.BuildStarted(total=1, jobs=4), started("a"), 3, finished("a"), summary)
    assert (timeline.duration, timeline.exit_status, timeline.summary) == (3.0, 0, summary)
    timeline.handle(ev.BuildStarted(total=1, jobs=2))  # watch builds again
    assert (timeline.jobs, timeline.spans, timeline.states, timeline.duration) == (2, [], {}, None)
