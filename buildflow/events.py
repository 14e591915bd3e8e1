"""What happens during a build, as data. The scheduler emits these; reporters print them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class BuildStarted:
    total: int
    jobs: int
    event: str = field(default="build_started", init=False)


@dataclass(frozen=True)
class TaskStarted:
    task: str
    commands: tuple[str, ...]
    event: str = field(default="task_started", init=False)


@dataclass(frozen=True)
class TaskRetry:
    task: str
    attempt: int
    of: int
    delay: float
    reason: str
    event: str = field(default="task_retry", init=False)


@dataclass(frozen=True)
class TaskFinished:
    task: str
    duration: float
    attempts: int
    output: str
    event: str = field(default="task_finished", init=False)


@dataclass(frozen=True)
class TaskFailed:
    task: str
    duration: float
    attempts: int
    output: str
    reason: str
    commands: tuple[str, ...]
    event: str = field(default="task_failed", init=False)


@dataclass(frozen=True)
class TaskSkipped:
    task: str
    reason: str  # "up to date", "dependency failed: X", "build stopped"
    event: str = field(default="task_skipped", init=False)


@dataclass(frozen=True)
class TaskWouldRun:
    """Dry run (`-n`): the task is stale and would run, for this reason."""

    task: str
    reason: str
    event: str = field(default="task_would_run", init=False)


@dataclass(frozen=True)
class BuildFinished:
    ran: int
    up_to_date: int
    failed: int
    skipped: int
    duration: float
    exit_status: int
    event: str = field(default="build_finished", init=False)


Event = (BuildStarted | TaskStarted | TaskRetry | TaskFinished | TaskFailed | TaskSkipped
         | TaskWouldRun | BuildFinished)


def to_dict(event: Event) -> dict[str, object]:
    data = asdict(event)
    data = {"event": data.pop("event"), **data}
    if "commands" in data:
        data["commands"] = list(data["commands"])
    return data


class Reporter(Protocol):
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
