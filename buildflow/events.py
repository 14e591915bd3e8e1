"""What happens during a build, as data. The scheduler emits these; reporters print them.

Events are NamedTuples (a build makes thousands, and they import cheaply); each one's last
field, `event`, names its kind in `--json` output and is left at its default.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class BuildStarted(NamedTuple):
    total: int
    jobs: int
    dry_run: bool = False  # `-n`: tasks are said to run, never run
    event: str = "build_started"


class TaskStarted(NamedTuple):
    task: str
    commands: tuple[str, ...]
    event: str = "task_started"


class TaskOutput(NamedTuple):
    """A whole line a running task wrote, for a reporter that follows output (`--stream`, the
    live display's last line)."""

    task: str
    line: str
    event: str = "task_output"


class TaskAttached(NamedTuple):
    """An interactive task has bflow's terminal from now until it ends: a display must
    stand aside."""

    task: str
    event: str = "task_attached"


class TaskRetry(NamedTuple):
    task: str
    attempt: int
    of: int
    delay: float
    reason: str
    event: str = "task_retry"


class TaskFinished(NamedTuple):
    task: str
    duration: float
    attempts: int
    output: str
    event: str = "task_finished"


# The reason of a task stopped by Ctrl-C or SIGTERM: it did not fail on its own.
INTERRUPTED = "interrupted"


class TaskFailed(NamedTuple):
    task: str
    duration: float
    attempts: int
    output: str
    reason: str
    commands: tuple[str, ...]
    event: str = "task_failed"


class TaskRestored(NamedTuple):
    """A stale task whose outputs came from the output cache instead of its command; `output`
    is the saved output of the run that made them."""

    task: str
    duration: float
    output: str
    event: str = "task_restored"


class TaskSkipped(NamedTuple):
    task: str
    reason: str  # "up to date", "dependency failed: X", "build stopped"
    event: str = "task_skipped"


class TaskWouldRun(NamedTuple):
    """Dry run (`-n`): the task is stale and would run these commands (expanded, secrets
    masked), for this reason; or, with `after`, it may run once that task has run, which
    writes the files its globs match (its commands are not known before). `instances`: the
    task is a foreach's group, standing for instances found only then, and runs nothing
    itself: it is not counted."""

    task: str
    reason: str
    commands: tuple[str, ...] = ()
    after: str = ""
    instances: bool = False
    event: str = "task_would_run"


class PlanChanged(NamedTuple):
    """The build found the instances of a foreach over files it wrote: `added` more tasks
    may run, `dropped` of those counted in BuildStarted will not (their item is gone)."""

    added: int
    dropped: int
    event: str = "plan_changed"


class BuildFinished(NamedTuple):
    ran: int
    up_to_date: int
    failed: int
    skipped: int
    duration: float
    exit_status: int
    restored: int = 0
    interrupted: int = 0  # stopped by Ctrl-C (or SIGTERM, SIGHUP) as they ran: not in `failed`
    event: str = "build_finished"


Event = (BuildStarted | TaskStarted | TaskAttached | TaskOutput | TaskRetry | TaskFinished
         | TaskFailed | TaskRestored | TaskSkipped | TaskWouldRun | PlanChanged | BuildFinished)


def to_dict(event: Event) -> dict[str, object]:
    data = event._asdict()
    data = {"event": data.pop("event"), **data}
    if "commands" in data:
        data["commands"] = list(data["commands"])
    return data


class Reporter(Protocol):
    """Where a build's events go. A reporter may also have `note(message)`, for information
    that is no warning (waiting for the lock); without one, such messages go to `warn`. One
    whose `follows_output` is true is also sent each line of output as it comes
    (`TaskOutput`)."""

    def handle(self, event: Event) -> None: ...

    def warn(self, message: str) -> None: ...

    def close(self) -> None: ...


class Relay:
    """A reporter that hands every event on to another, for wrappers that add to what it does
    (observers, the fast path's partial build): the builder still sees the inner reporter's
    `closed`, `note` and `follows_output`, whatever wraps it."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    @property
    def closed(self) -> bool:
        """Whether the reporter's stdout went away: the build then starts nothing more."""
        return bool(getattr(self.reporter, "closed", False))

    @property
    def follows_output(self) -> bool:
        return bool(getattr(self.reporter, "follows_output", False))

    def handle(self, event: Event) -> None:
        self.reporter.handle(event)

    def note(self, message: str) -> None:
        getattr(self.reporter, "note", self.reporter.warn)(message)

    def warn(self, message: str) -> None:
        self.reporter.warn(message)

    def close(self) -> None:
        self.reporter.close()


class Collector:
    """A reporter that keeps every event: for the Python API and for tests."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.warnings: list[str] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def close(self) -> None:
        pass
