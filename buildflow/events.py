"""What happens during a build, as data. The scheduler emits these; reporters print them.

Events are NamedTuples (a build makes thousands, and they import cheaply); each one's last
field, `event`, names its kind in `--json` output and is left at its default.
"""

from __future__ import annotations

from buildflow.typing_lite import NamedTuple, Protocol


class BuildStarted(NamedTuple):
    total: int
    jobs: int
    event: str = "build_started"


class TaskStarted(NamedTuple):
    task: str
    commands: tuple[str, ...]
    event: str = "task_started"


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
    masked), for this reason."""

    task: str
    reason: str
    commands: tuple[str, ...] = ()
    event: str = "task_would_run"


class BuildFinished(NamedTuple):
    ran: int
    up_to_date: int
    failed: int
    skipped: int
    duration: float
    exit_status: int
    restored: int = 0
    event: str = "build_finished"


Event = (BuildStarted | TaskStarted | TaskRetry | TaskFinished | TaskFailed | TaskRestored
         | TaskSkipped | TaskWouldRun | BuildFinished)


def to_dict(event: Event) -> dict[str, object]:
    data = event._asdict()
    data = {"event": data.pop("event"), **data}
    if "commands" in data:
        data["commands"] = list(data["commands"])
    return data


class Reporter(Protocol):
    """Where a build's events go. A reporter may also have `note(message)`, for information
    that is no warning (waiting for the lock); without one, such messages go to `warn`."""

    def handle(self, event: Event) -> None: ...

    def warn(self, message: str) -> None: ...

    def close(self) -> None: ...


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
