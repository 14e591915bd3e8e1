"""decide(task) -> the reasons it must run (empty: up to date), per SPEC §2.

This is the only place staleness is decided: `build` acts on the reasons, `status` and `-n`
print the first, `explain` prints them all, and the fast path (`buildflow.fastpath`) keeps what
an up-to-date decision read so that it can tell, by stat alone, that nothing it read changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from itertools import zip_longest
from typing import NamedTuple

from buildflow.hashing import MISSING, UNKNOWN, text_digest
from buildflow.graph import Graph
from buildflow.model import Task
from buildflow.state import State, TaskRecord

ACTION_PARTS = ("commands", "env", "cwd", "shell", "depfile", "py", "py module", "vars",
                "order of paths", "name")


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
    INPUT_UNWRITTEN = "input its writer skips"
    DEPFILE_INPUT_CHANGED = "depfile input changed"
    OUTPUT_MISSING = "output missing"
    OUTPUT_CHANGED = "output changed"
    OUTPUT_NEW = "output not recorded"
    OUTPUT_DROPPED = "output no longer declared"
    UPSTREAM_PENDING = "upstream will run"
    AFTER = "known after"
    INSTANCES_AFTER = "instances known after"
    WHEN_AFTER = "condition known after"


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
            ReasonKind.INPUT_UNWRITTEN: f"input {self.subject} is missing: {self.old}, which "
                                        f"writes it, is skipped ({self.new})",
            ReasonKind.DEPFILE_INPUT_CHANGED: f"{self.subject} (from the depfile) changed",
            ReasonKind.OUTPUT_MISSING: f"output {self.subject} is missing",
            ReasonKind.OUTPUT_CHANGED: f"output {self.subject} was modified",
            ReasonKind.OUTPUT_NEW: f"output {self.subject} has no recorded hash",
            ReasonKind.OUTPUT_DROPPED: f"{self.subject} is no longer an output",
            ReasonKind.UPSTREAM_PENDING: f"task {self.subject} it depends on will run first",
            ReasonKind.AFTER: f"after {self.subject}: what it reads is known only once "
                              f"{self.subject} has run",
            ReasonKind.INSTANCES_AFTER: f"after {self.subject}: its instances are found "
                                        f"only once {self.subject} has run",
            ReasonKind.WHEN_AFTER: f"after {self.subject}: its `when` is checked only once "
                                   f"{self.subject} has run",
        }[self.kind]
        if (self.old or self.new) and self.kind is not ReasonKind.INPUT_UNWRITTEN:
            text += f" ({_short(self.old)} -> {_short(self.new)})"
        return text


def _short(digest: str) -> str:
    return digest[:12] if digest else "missing"


class Decision(NamedTuple):
    """What `decide` found: the reasons to run (none: up to date), and everything it read to
    find them. An up-to-date decision has read every file the task touches, so it is also the
    record a run would leave (`as_record`) and exactly what a cache of it must watch."""

    reasons: list[Reason]
    action: tuple[object, ...]
    input_hashes: dict[str, str]
    depfile_hashes: dict[str, str]
    output_hashes: dict[str, str]

    @property
    def stale(self) -> bool:
        return bool(self.reasons)

    @property
    def after(self) -> str:
        """The task that must run before this one can be decided ("" when it was decided)."""
        first = self.reasons[0] if self.reasons else None
        return first.subject if first is not None and first.kind in _AFTER_KINDS else ""

    def as_record(self, duration: float = 0.0) -> TaskRecord:
        """The record that says this decision: an up-to-date task's record compares equal in
        every field the decision reads."""
        return TaskRecord(self.action, self.input_hashes, self.depfile_hashes,
                          self.output_hashes, duration)


_AFTER_KINDS = (ReasonKind.AFTER, ReasonKind.INSTANCES_AFTER, ReasonKind.WHEN_AFTER)


def action_of(task: Task) -> tuple[object, ...]:
    """What the task does, in the parts `explain` can name; env is kept only as a digest. A
    `py` task's action adds its reference, its module file's content hash, its vars, the
    order of its inputs and outputs and its name (`ctx.name`), all of which its function is
    given (a command's vars, paths and `{task}` are already expanded in its commands); a
    command's has no such parts, so records made before `py` existed still match. A `py`
    task runs no shell, so its action holds none: `settings.shell` is the commands' alone."""
    env = text_digest(repr(task.env)) if task.env else ""
    if task.py:
        return (task.commands, env, task.cwd, "", task.depfile or "", task.py, task.py_code,
                text_digest(repr(task.vars)), text_digest(repr((task.inputs, task.outputs))),
                task.name)
    return (task.commands, env, task.cwd, task.shell, task.depfile or "")


def depfile_of(action: tuple[object, ...]) -> str:
    """The depfile path an `action_of` names ("" for none)."""
    return str(action[ACTION_PARTS.index("depfile")])


def decide(task: Task, record: TaskRecord | None, file_hash: Callable[[str], str], *,
           force: bool = False, pending_upstream: Iterable[str] = (),
           explain: bool = True) -> Decision:
    """Every reason `task` must run, in the order of SPEC §2's rules, with the hashes it read
    (taken here, before the command starts). `file_hash` gives a path's content hash (MISSING
    when absent): the hasher's on a build, the recorded ones when a proof is written. Without
    `explain` it stops at the first reason: a build needs only to know that one exists."""
    action = action_of(task)
    inputs = dict(zip(task.inputs, map(file_hash, task.inputs)))
    reasons = [Reason(ReasonKind.UPSTREAM_PENDING, name) for name in pending_upstream]
    if force:
        reasons.append(Reason(ReasonKind.FORCED))
    if task.always:
        reasons.append(Reason(ReasonKind.ALWAYS))
    if not task.inputs and not task.outputs and not task.declares_inputs:
        reasons.append(Reason(ReasonKind.NO_FILES))
    if record is None:
        reasons.append(Reason(ReasonKind.NEVER_RUN))
        reasons.extend(Reason(ReasonKind.INPUT_MISSING, p) for p, h in inputs.items()
                       if h == MISSING)
        return Decision(reasons, action, inputs, {}, {})
    if reasons and not explain:
        return Decision(reasons, action, inputs, {}, {})
    if record.action != action:
        reasons.extend(Reason(ReasonKind.ACTION_CHANGED, part) for part, old, new
                       in zip_longest(ACTION_PARTS, record.action, action) if old != new)
    if record.inputs != inputs or MISSING in inputs.values():
        reasons.extend(_input_reasons(record.inputs, inputs))
    if reasons and not explain:
        return Decision(reasons, action, inputs, {}, {})
    depfile: dict[str, str] = {}
    for path, old in record.depfile_inputs.items():
        digest = depfile[path] = file_hash(path)
        if digest != old or old == UNKNOWN:
            reasons.append(Reason(ReasonKind.DEPFILE_INPUT_CHANGED, path, old, digest))
            if not explain:
                return Decision(reasons, action, inputs, depfile, {})
    outputs: dict[str, str] = {}
    recorded = record.outputs
    for path in task.outputs:
        digest = outputs[path] = file_hash(path)
        old = recorded.get(path, MISSING)
        if digest == old and digest != MISSING:
            continue
        if digest == MISSING:
            reasons.append(Reason(ReasonKind.OUTPUT_MISSING, path))
        elif old == MISSING:
            reasons.append(Reason(ReasonKind.OUTPUT_NEW, path))
        else:
            reasons.append(Reason(ReasonKind.OUTPUT_CHANGED, path, old, digest))
        if not explain:
            break
    # An output its last run wrote that it no longer declares: the build removes it first
    # (`prune`), and only a run tells whether the command still writes it, as a clean build's
    # would. Every declared output is among the recorded ones once no reason was found.
    if (explain or not reasons) and len(recorded) > len(outputs):
        reasons.extend(Reason(ReasonKind.OUTPUT_DROPPED, path) for path in recorded
                       if path not in outputs)
    return Decision(reasons, action, inputs, depfile, outputs)


def missing_input(decision: Decision, producer_of: Callable[[str], str | None],
                  skipped: Callable[[str], str | None]) -> Reason | None:
    """Why a stale task cannot run (None when it can): an input it declares is not there
    once the tasks it needs are done, its writer skipped by `when` (`skipped` gives why, or
    None) or the file gone. Its command would read what a clean build never gives it, and no
    run of it would be up to date: the build fails it, as Make stops at a missing
    prerequisite, and `-n` and `status` say so where the writer's skip is known before."""
    path = next((path for path, digest in decision.input_hashes.items()
                 if digest == MISSING), None)
    if path is None:
        return None
    writer = producer_of(path)
    why = skipped(writer) if writer is not None else None
    return Reason(ReasonKind.INPUT_MISSING, path) if not why else \
        Reason(ReasonKind.INPUT_UNWRITTEN, path, writer or "", why)


def _input_reasons(recorded: dict[str, str], inputs: dict[str, str]) -> list[Reason]:
    reasons: list[Reason] = []
    for path, digest in inputs.items():
        old = recorded.get(path)
        if digest == MISSING:
            reasons.append(Reason(ReasonKind.INPUT_MISSING, path))
        elif old is None:
            reasons.append(Reason(ReasonKind.INPUT_ADDED, path))
        elif old != digest:
            reasons.append(Reason(ReasonKind.INPUT_CHANGED, path, old, digest))
    reasons.extend(Reason(ReasonKind.INPUT_REMOVED, p) for p in recorded if p not in inputs)
    return reasons


def recorded_depfile_links(graph: Graph, names: Sequence[str],
                           state: State) -> dict[str, list[str]]:
    """`Graph.depfile_links` from what each task's last depfile named, as the state holds it:
    a task that failed since still waits for the writers of what it named."""
    return graph.depfile_links(names, state.depfile_named)


_ON_DISK = ("exists", "cmd")  # the `when` keys whose answer a task run before may change


def survey(project: "Project", names: Iterable[str], state: State,
           file_hash: Callable[[str], str], *, force: bool = False,
           explain: bool = False,
           skipped: Callable[[Task], str] | None = None) -> dict[str, Decision]:
    """Decide every task in `names` (topological order) without running anything.

    A task whose upstream would run is reported stale for that reason, since its inputs will
    change; the real build decides it again once that upstream has finished. Its upstream are
    the tasks whose outputs it reads, and, as the build orders them, those that write what its
    last depfile named. A task whose globs match files written by a task that would run (its
    `known_after`) cannot be decided before they are written: it is "after" that task (an
    instance of a foreach over such files, after what its foreach is after), and so is the
    group standing for such a foreach's instances. A stale task that `skipped` gives a
    reason for (its `when` fails) will not run, so its readers do not wait for it; one whose
    `when` looks at the disk (`exists`, `cmd`) and waits for a task that would run, directly
    or through others (a group, a task its own `when` skips), is "after" that task, as the
    build checks the condition only once what it waits for has run.
    """
    names = list(names)
    decisions: dict[str, Decision] = {}
    will_run: set[str] = set()
    after: dict[str, str] = {}  # task -> the task it is after
    runs_before: dict[str, str] = {}  # task -> a task that would run before it, maybe far up
    records = state.tasks
    depfile_links = recorded_depfile_links(project.graph, names, state)
    if depfile_links:  # a writer after its reader in `names` must be decided first
        names = project.graph.topological(names, depfile_links)
    graph = project.graph
    for name in names:
        task = project.tasks[name]
        before = next((up if up in will_run else runs_before[up]
                       for up in (*graph.upstream[name], *depfile_links.get(name, ()))
                       if up in will_run or up in runs_before), None)
        if before is not None:
            runs_before[name] = before
        waits = [up for up in task.known_after if up in will_run]
        if waits:
            after[name] = after.get(waits[0], waits[0]) if waits[0] == task.base else waits[0]
            kind = ReasonKind.INSTANCES_AFTER if task.expands else ReasonKind.AFTER
            decisions[name] = Decision([Reason(kind, after[name])], action_of(task), {}, {}, {})
            will_run.add(name)
            continue
        if task.is_group:
            continue
        if skipped is not None and before is not None \
                and any(key in _ON_DISK for key, _ in task.when):
            decisions[name] = Decision([Reason(ReasonKind.WHEN_AFTER, before)],
                                       action_of(task), {}, {}, {})
            will_run.add(name)
            continue
        upstream = graph.link_upstream[name]
        if name in depfile_links:
            upstream = (*upstream, *depfile_links[name])
        pending = [up for up in upstream if up in will_run]
        decision = decide(task, records.get(name), file_hash, force=force,
                          pending_upstream=pending, explain=explain)
        decisions[name] = decision
        if decision.stale and not (skipped is not None and task.when and skipped(task)):
            will_run.add(name)
    return decisions


from buildflow.model import Project  # noqa: E402
