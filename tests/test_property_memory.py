"""The correctness property of `test_property`, on the disk in memory with a clock the test
moves: after any sequence of edits an incremental build runs exactly the tasks that had to run
and leaves every output equal to a clean build's.

The engine builds (the loader, the decision, the scheduler, the state, the logs, pruning) with
a runner that does in Python what `test_property`'s shell commands do. What the real disk can
only produce by chance, every example here can: an edit in the same clock tick as the build
before it, with the same size and on the same inode, which only the content can tell (the
racy-timestamp rule must catch it); a file dated into the future or the past; builds a
microsecond or a minute apart. With no process started, hundreds of examples take seconds.

Tasks also fail here, which `test_property` leaves out: while a flag file names it, a task
writes a broken output and exits 1; with `-k` the tasks downstream of it are skipped and the
rest run. Every build with no task failing must then leave exactly a clean build's outputs.
`test_property_foreach`'s property, items coming and going, runs here at any timing too.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field, replace
from typing import IO

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memfs import ROOT, MemoryFileSystem
from test_property import (DEPFILE_SOURCES, FILTERS, LINES, SOURCES, VALUES, Model, TaskSpec,
                           flowfile, graphs, overrides, real, write)
from test_property_foreach import BUILT, COMMON, ITEMS, Step, chains
from test_property_foreach import Model as ForeachModel
from test_property_foreach import apply_edit as apply_foreach_edit
from test_property_foreach import flowfile as foreach_flowfile

from buildflow import engine
from buildflow.model import Task
from buildflow.project import load
from buildflow.runner import RunResult
from buildflow.scheduler import Outcome

EXAMPLES = int(os.environ.get("BFLOW_PROPERTY_EXAMPLES", "45")) * 4
# Seconds between two steps; 0, the same tick, half the time. Files are seldom empty, so that
# many edits keep a file's size (b"a1" to b"b\n"): only its content then tells.
TICKS = [0.0, 0.0, 0.0, 0.000_001, 0.05, 1.0, 60.0]
filled = st.lists(st.sampled_from(LINES), min_size=1, max_size=3).map(b"".join)
EDITS = ("change", "same_size", "touch", "delete_output", "edit_output", "command",
         "add_glob", "remove_glob", "same_bytes", "var_cli", "var_file", "delete_depfile",
         "toggle_always", "toggle_failing")
BROKEN = b"broken\n"  # what a failing run leaves as its output


@dataclass
class FailingModel(Model):
    """The model, with tasks that fail while `failing` names them, and `-k`: a task whose
    upstream failed or was skipped is skipped, and keeps its record and output."""

    failing: set[str] = field(default_factory=set)

    def build(self) -> list[str]:
        ran: list[str] = []
        stopped: set[str] = set()  # failed or skipped
        producer = {task.output: task.name for task in self.tasks if task.has_output}
        for task in self.tasks:
            upstream = {producer.get(path) for path in self.inputs_of(task)} | set(task.deps)
            if upstream & stopped:
                stopped.add(task.name)
            elif self.must_run(task):
                ran.append(task.name)
                if task.name in self.failing:
                    stopped.add(task.name)
                    self.records.pop(task.name, None)
                    if task.has_output:
                        self.files[task.output] = BROKEN
                else:
                    self.run(task)
        return ran


def command(task: TaskSpec) -> str:
    """What the task's shell command does, as fields the runner reads."""
    fields = {"filter": task.filter, "depfile": " ".join(task.depfile),
              "deps": " ".join(task.deps), "var": "{V}" if task.uses_var else ""}
    return f"cmd = {json.dumps(';'.join(f'{k}={v}' for k, v in fields.items()))}\n"


class ModelRunner:
    """Runs a task as its fields say, on the disk in memory, and counts the runs."""

    def __init__(self, disk: MemoryFileSystem) -> None:
        self.disk = disk
        self.ran: list[str] = []
        self._lock = threading.Lock()

    def run(self, task: Task, root: str, env: object, log: IO[bytes]) -> RunResult:
        fields = dict(part.split("=", 1) for part in task.commands[0].split(";"))
        with self._lock:
            self.ran.append(task.name)
        if self.disk.stat(f"flags/{task.name}") is not None:
            for output in task.outputs:
                self.disk.rewrite(output, BROKEN)
            return RunResult(1)
        if any(self.disk.stat(f"out/{dep}.txt") is None for dep in fields.get("deps", "").split()):
            return RunResult(1)  # `test -e` of what it waits for
        named = fields.get("depfile", "").split()
        if named:
            self.disk.rewrite(task.depfile or "", f"x: {' '.join(named)}\n")
        data = b"".join(self.disk.read(path) for path in (*task.inputs, *named))
        if fields.get("var"):
            data += fields["var"].encode() + b"\n"
        if task.outputs:
            self.disk.rewrite(task.outputs[0], FILTERS[fields["filter"]](data))
        return RunResult(0)

    def stop_all(self) -> None:
        pass

    def close(self) -> None:
        pass


def build(disk: MemoryFileSystem, model: Model,
          failing: bool = False) -> tuple[list[str], set[str], set[str]]:
    """A build with `-k` of the project on `disk`, which fails when `failing` says so: the
    tasks it ran, and before it, what `-n` said: the tasks with a reason of their own to
    run, and all it named."""
    project = load(f"{ROOT}/Flowfile", overrides(model), fs=disk)
    dry = engine.build(project, dry_run=True)
    named = {name for name, done in dry.tasks.items() if done.outcome is Outcome.SKIPPED}
    own = {name for name in named if dry.tasks[name].reason.startswith("would run: ")
           and not dry.tasks[name].reason.endswith("will run first")}
    runner = ModelRunner(disk)
    result = engine.build(project, jobs=2, runner=runner, cache=False, keep_going=True)
    assert result.exit_status == (1 if failing else 0), \
        {n: r.reason for n, r in result.tasks.items()}
    return runner.ran, own, named


def outputs(disk: MemoryFileSystem, model: Model) -> dict[str, bytes]:
    """The tasks' outputs on the disk; one a failing upstream keeps from being made is not."""
    return {t.output: disk.read(t.output) for t in model.tasks
            if t.has_output and disk.stat(t.output) is not None}


def clean_build(disk: MemoryFileSystem, model: Model) -> dict[str, bytes]:
    """The engine's build of the same sources and Flowfile on a fresh disk."""
    fresh = MemoryFileSystem()
    for path, (data, _, _) in disk.files.items():
        if path.startswith("src/") or path == "Flowfile":
            fresh.write(path, data)
    fresh.tick(1)
    build(fresh, model)
    return outputs(fresh, model)


def apply_edit(draw: st.DrawFn, disk: MemoryFileSystem, model: FailingModel) -> None:
    produced = [t.output for t in model.tasks if t.has_output and t.output in model.files]
    sources = sorted(p for p in model.files if p.startswith("src/"))
    kind = draw(st.sampled_from(EDITS))
    if kind.endswith("output") and not produced:
        kind = "touch"
    if kind in ("change", "add_glob"):
        path = draw(st.sampled_from(sources)) if kind == "change" else \
            f"src/g{draw(st.integers(0, 3))}.txt"
        write(disk, model, path, draw(filled))
    elif kind == "edit_output":
        path = draw(st.sampled_from(produced))
        write(disk, model, path, model.files[path] + b"edited\n")
    elif kind in ("same_bytes", "same_size"):  # same_size: other bytes, which only a hash sees
        path = draw(st.sampled_from(sources + produced))
        old = model.files[path]
        write(disk, model, path, old if kind == "same_bytes" else bytes(b ^ 1 for b in old))
    elif kind == "touch":
        path = draw(st.sampled_from(sources + produced))
        # Not a depfile input into the future: it would look written during every run of
        # its task, which then runs on every build (a documented exception).
        shift = draw(st.integers(1, 10**11)) * (-1 if path in DEPFILE_SOURCES else 1)
        disk.rewrite(path, model.files[path], mtime_ns=disk.clock_ns + shift)
    elif kind in ("delete_output", "remove_glob"):
        paths = produced if kind == "delete_output" else \
            [p for p in sources if p.startswith("src/g")]
        if paths:
            path = draw(st.sampled_from(paths))
            disk.remove(path)
            del model.files[path]
    elif kind == "var_cli":
        model.var_override = draw(st.sampled_from([None, *VALUES]))
    elif kind == "toggle_failing":
        name = draw(st.sampled_from([task.name for task in model.tasks]))
        model.failing ^= {name}
        if name in model.failing:
            disk.write(f"flags/{name}", "")
        else:
            disk.remove(f"flags/{name}")
    elif kind == "delete_depfile":
        depfiles = [t.depfile_path for t in model.tasks if disk.stat(t.depfile_path)]
        if depfiles:
            disk.remove(draw(st.sampled_from(depfiles)))
    else:
        if kind == "var_file":
            model.var_default = draw(st.sampled_from(VALUES))
        elif kind == "command":
            draw(st.sampled_from(model.tasks)).filter = draw(st.sampled_from(sorted(FILTERS)))
        else:
            task = draw(st.sampled_from(model.tasks))
            task.always = not task.always
        disk.rewrite("Flowfile", flowfile(model, command))


def check_build(disk: MemoryFileSystem, model: FailingModel) -> None:
    # A depfile input written in the tick a task starts in may have been written while it
    # ran: it runs again next time (documented). Its edits come a tick before, as a user's do.
    if any(disk.files[p][1] >= disk.clock_ns for p in DEPFILE_SOURCES):
        disk.tick(0.000_001)
    expected = model.build()
    ran, own, named = build(disk, model, failing=bool(model.failing & set(expected)))
    assert sorted(ran) == sorted(expected)
    assert outputs(disk, model) == {t.output: model.files[t.output] for t in model.tasks
                                    if t.has_output and t.output in model.files}
    if not model.failing:  # -n knows nothing of failures to come
        assert own <= set(ran) <= named, (own, ran, named)
        assert outputs(disk, model) == model.clean()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_incremental_builds_in_memory_equal_clean_builds_at_any_timing(
        data: st.DataObject) -> None:
    # No symlinks and no Python tasks in memory: `test_property` has both, on the real disk.
    tasks = [replace(task, py=False, inputs=list(dict.fromkeys(map(real, task.inputs))))
             for task in data.draw(graphs())]
    model = FailingModel(tasks, {})
    disk = MemoryFileSystem()
    for path in SOURCES + DEPFILE_SOURCES:
        model.files[path] = data.draw(filled)
        disk.write(path, model.files[path])
    disk.write("Flowfile", flowfile(model, command))
    check_build(disk, model)
    for _ in range(data.draw(st.integers(1, 5))):
        for _ in range(data.draw(st.integers(1, 2))):
            disk.tick(data.draw(st.sampled_from(TICKS), label="tick before an edit"))
            apply_edit(data.draw, disk, model)
        disk.tick(data.draw(st.sampled_from(TICKS), label="tick before a build"))
        check_build(disk, model)
    for name in model.failing:
        disk.remove(f"flags/{name}")
    model.failing.clear()
    check_build(disk, model)
    assert outputs(disk, model) == clean_build(disk, model)


# --- foreach: items coming and going, and the tasks over what they write --------------------

def step_command(step: Step) -> str:
    """What a step's shell command does (`Step.command`), as the runner's fields."""
    return f"filter={step.filter}"


def built(disk: MemoryFileSystem) -> dict[str, bytes]:
    return {path: data for path, (data, _, _) in disk.files.items() if path.startswith(BUILT)}


def foreach_build(disk: MemoryFileSystem) -> list[str]:
    runner = ModelRunner(disk)
    project = load(f"{ROOT}/Flowfile", fs=disk)
    assert engine.build(project, jobs=2, runner=runner, cache=False).exit_status == 0
    return runner.ran


@settings(max_examples=EXAMPLES, deadline=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_foreach_items_coming_and_going_in_memory_match_a_clean_build(
        data: st.DataObject) -> None:
    """`test_property_foreach`'s property (outputs of items gone are pruned before the globs
    see them; a foreach over another's outputs expanded once they are written), at any
    timing."""
    model = ForeachModel(data.draw(chains()), action=step_command)
    disk = MemoryFileSystem()
    write(disk, model, COMMON, data.draw(filled))
    for path in data.draw(st.lists(st.sampled_from(ITEMS), max_size=3, unique=True)):
        write(disk, model, path, data.draw(filled))
    disk.rewrite("Flowfile", foreach_flowfile(model))
    for step in range(data.draw(st.integers(1, 5)) + 1):
        if step:
            for _ in range(data.draw(st.integers(1, 2))):
                disk.tick(data.draw(st.sampled_from(TICKS), label="tick before an edit"))
                apply_foreach_edit(data.draw, disk, model)
            disk.tick(data.draw(st.sampled_from(TICKS), label="tick before a build"))
        assert sorted(foreach_build(disk)) == sorted(model.build())
        assert built(disk) == {p: d for p, d in model.files.items() if p.startswith(BUILT)}
        if not model.leftovers():
            assert built(disk) == model.clean()
    fresh = MemoryFileSystem()
    for path, (content, _, _) in disk.files.items():
        if path.startswith("src/") or path == "Flowfile":
            fresh.write(path, content)
    foreach_build(fresh)
    if not model.leftovers():
        assert built(disk) == built(fresh)
