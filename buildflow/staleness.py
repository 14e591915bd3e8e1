"""decide(task) -> the reasons it must run (empty: up to date), per SPEC §2.

This is the only place staleness is decided: `build` acts on the reasons, `status` prints the
first, `explain` prints them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum

from buildflow.hashing import MISSING, UNKNOWN, Hasher, text_digest
from buildflow.model import Task
from buildflow.state import TaskRecord
from buildflow.typing_lite import NamedTuple

ACTION_PARTS = ("commands", "env", "cwd", "shell", "depfile")


class ReasonKind(Enum):
    NEVER_RUN = "never run"
    ALWAYS = "always"
    FORCED = "forced"
    NO_FILES = "no inputs or outputs"
    ACTION_CHANGED = "action changed"
    INPUT_ADDED = "input added"
    INPUT_REMOVED = "input removed"
    INPUT_CHANGED = "input changed"
    INPUT_MISSING = "input missing"
    DEPFILE_INPUT_CHANGED = "depfile input changed"
    OUTPUT_MISSING = "output missing"
    OUTPUT_CHANGED = "output changed"
    OUTPUT_NEW = "output not recorded"
    UPSTREAM_PENDING = "upstream will run"


class Reason(NamedTuple):
    kind: ReasonKind
    subject: str = ""
    old: str = ""
    new: str = ""

    def __str__(self) -> str:
        text = {
            ReasonKind.NEVER_RUN: "no successful run recorded",
            ReasonKind.ALWAYS: "always = true",
            ReasonKind.FORCED: "forced with -B",
            ReasonKind.NO_FILES: "has neither inputs nor outputs, so it runs every build",
            ReasonKind.ACTION_CHANGED: f"{self.subject} changed",
            ReasonKind.INPUT_ADDED: f"new input {self.subject}",
            ReasonKind.INPUT_REMOVED: f"input {self.subject} is no longer an input",
            ReasonKind.INPUT_CHANGED: f"input {self.subject} changed",
            ReasonKind.INPUT_MISSING: f"input {self.subject} is missing",
            ReasonKind.DEPFILE_INPUT_CHANGED: f"{self.subject} (from the depfile) changed",
            ReasonKind.OUTPUT_MISSING: f"output {self.subject} is missing",
            ReasonKind.OUTPUT_CHANGED: f"output {self.subject} was modified",
            ReasonKind.OUTPUT_NEW: f"output {self.subject} has no recorded hash",
            ReasonKind.UPSTREAM_PENDING: f"task {self.subject} it depends on will run first",
        }[self.kind]
        if self.old or self.new:
            text += f" ({_short(self.old)} -> {_short(self.new)})"
        return text


def _short(digest: str) -> str:
    return digest[:12] if digest else "missing"


class Decision(NamedTuple):
    reasons: list[Reason]
    action: tuple[object, ...]
    input_hashes: dict[str, str]

    @property
    def stale(self) -> bool:
        return bool(self.reasons)


def action_of(task: Task) -> tuple[object, ...]:
    """What the task does, in the parts `explain` can name; env is kept only as a digest."""
    env = text_digest(repr(task.env)) if task.env else ""
    return (task.commands, env, task.cwd, task.shell, task.depfile or "")


def decide(task: Task, record: TaskRecord | None, hasher: Hasher, *, force: bool = False,
           pending_upstream: Iterable[str] = ()) -> Decision:
    """Every reason `task` must run; inputs are hashed here, before the command starts."""
    action = action_of(task)
    file_hash = hasher.file_hash
    inputs = dict(zip(task.inputs, map(file_hash, task.inputs)))
    if record is not None and not force and not pending_upstream and \
            _fresh(task, record, action, inputs, file_hash):
        return Decision([], action, inputs)
    return Decision(_reasons(task, record, action, inputs, hasher, force, pending_upstream),
                    action, inputs)


def _fresh(task: Task, record: TaskRecord, action: tuple[object, ...], inputs: dict[str, str],
           file_hash: Callable[[str], str]) -> bool:
    """True only when `_reasons` would find none: the common case of a large no-op build,
    checked without making a Reason. False sends the task down the full path."""
    if task.always or not (task.inputs or task.outputs) or record.action != action \
            or record.inputs != inputs or MISSING in inputs.values():
        return False
    for path, old in record.depfile_inputs.items():
        if old == UNKNOWN or (inputs.get(path) or file_hash(path)) != old:
            return False
    outputs = record.outputs
    for path in task.outputs:
        digest = file_hash(path)
        if digest == MISSING or outputs.get(path) != digest:
            return False
    return True


def _reasons(task: Task, record: TaskRecord | None, action: tuple[object, ...],
             inputs: dict[str, str], hasher: Hasher, force: bool,
             pending_upstream: Iterable[str]) -> list[Reason]:
    reasons: list[Reason] = []
    reasons.extend(Reason(ReasonKind.UPSTREAM_PENDING, name) for name in pending_upstream)
    if force:
        reasons.append(Reason(ReasonKind.FORCED))
    if task.always:
        reasons.append(Reason(ReasonKind.ALWAYS))
    if not task.inputs and not task.outputs:
        reasons.append(Reason(ReasonKind.NO_FILES))
    if record is None:
        reasons.append(Reason(ReasonKind.NEVER_RUN))
        reasons.extend(Reason(ReasonKind.INPUT_MISSING, p) for p, h in inputs.items() if h == MISSING)
        return reasons
    for part, old, new in zip(ACTION_PARTS, record.action, action):
        if old != new:
            reasons.append(Reason(ReasonKind.ACTION_CHANGED, part))
    for path, digest in inputs.items():
        old = record.inputs.get(path)
        if digest == MISSING:
            reasons.append(Reason(ReasonKind.INPUT_MISSING, path))
        elif old is None:
            reasons.append(Reason(ReasonKind.INPUT_ADDED, path))
        elif old != digest:
            reasons.append(Reason(ReasonKind.INPUT_CHANGED, path, old, digest))
    reasons.extend(Reason(ReasonKind.INPUT_REMOVED, p) for p in record.inputs if p not in inputs)
    for path, old in record.depfile_inputs.items():
        digest = inputs.get(path) or hasher.file_hash(path)
        if digest != old or old == UNKNOWN:
            reasons.append(Reason(ReasonKind.DEPFILE_INPUT_CHANGED, path, old, digest))
    for path in task.outputs:
        old = record.outputs.get(path)
        digest = hasher.file_hash(path)
        if digest == MISSING:
            reasons.append(Reason(ReasonKind.OUTPUT_MISSING, path))
        elif old is None:
            reasons.append(Reason(ReasonKind.OUTPUT_NEW, path))
        elif old != digest:
            reasons.append(Reason(ReasonKind.OUTPUT_CHANGED, path, old, digest))
    return reasons


def survey(project: "Project", names: Iterable[str], records: dict[str, TaskRecord],
           hasher: Hasher, *, force: bool = False) -> dict[str, Decision]:
    """Decide every task in `names` (topological order) without running anything.

    A task whose upstream would run is reported stale for that reason, since its inputs will
    change; the real build decides it again once that upstream has finished.
    """
    decisions: dict[str, Decision] = {}
    will_run: set[str] = set()
    for name in names:
        task = project.tasks[name]
        if task.is_group:
            continue
        pending = [up for up in project.graph.link_upstream[name] if up in will_run]
        decision = decide(task, records.get(name), hasher, force=force, pending_upstream=pending)
        decisions[name] = decision
        if decision.stale:
            will_run.add(name)
    return decisions


from buildflow.model import Project  # noqa: E402
