"""The correctness property: after any sequence of edits, an incremental build leaves every
output equal to a clean build's, and runs exactly the tasks that had to run.

Random DAGs over small files are built with the real `bflow`. Which tasks must run is worked
out here, independently of bflow, from the graph, the edits and the bytes each command would
write (so early cutoff is part of the expectation); runs are counted through a log the commands
append to.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import run_bflow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildflow import engine

# Shell filters, each with the same function in Python; most are lossy, so a changed input
# often leaves the output byte-identical and cuts the rebuild off.
FILTERS = {
    "cat": lambda data: data,
    "tr -d 0-9": lambda data: bytes(b for b in data if not 48 <= b <= 57),
    "wc -l": lambda data: b"%d\n" % data.count(b"\n"),
    "sort": lambda data: b"".join(sorted(data.splitlines(keepends=True))),
    "head -n 1": lambda data: b"".join(data.splitlines(keepends=True)[:1]),
}
SOURCES = ["src/s0.txt", "src/s1.txt", "src/s2.txt"]
GLOB = "src/g*.txt"
LINES = [b"a1\n", b"a2\n", b"b\n", b"7\n"]
PROPERTY_SETTINGS = settings(max_examples=int(os.environ.get("BFLOW_PROPERTY_EXAMPLES", "45")),
                             deadline=None, derandomize=bool(os.environ.get("CI")),
                             suppress_health_check=[HealthCheck.too_slow])


@dataclass
class TaskSpec:
    name: str
    inputs: list[str]          # sources and outputs of earlier tasks, in this order
    uses_glob: bool
    filter: str
    has_output: bool = True

    @property
    def output(self) -> str:
        return f"out/{self.name}.txt"


@dataclass
class Model:
    """What is on disk, and what each task's last run saw and wrote."""

    tasks: list[TaskSpec]
    files: dict[str, bytes]
    records: dict[str, tuple[str, tuple[str, ...], tuple[bytes, ...], bytes | None]] = \
        field(default_factory=dict)

    def inputs_of(self, task: TaskSpec) -> tuple[str, ...]:
        globbed = sorted(p for p in self.files if p.startswith("src/g")) if task.uses_glob else []
        return (*task.inputs, *globbed)

    def build(self) -> list[str]:
        """Run what must run, in order; return the names that ran."""
        ran = []
        for task in self.tasks:
            inputs = self.inputs_of(task)
            contents = tuple(self.files[path] for path in inputs)
            record = self.records.get(task.name)
            output = self.files.get(task.output) if task.has_output else None
            if record is None or record[:3] != (task.filter, inputs, contents) or \
                    output != record[3]:
                ran.append(task.name)
                new = FILTERS[task.filter](b"".join(contents)) if task.has_output else None
                if new is not None:
                    self.files[task.output] = new
                self.records[task.name] = (task.filter, inputs, contents, new)
        return ran


def flowfile(tasks: list[TaskSpec]) -> str:
    text = '[settings]\nenv = { LC_ALL = "C" }\n'
    for task in tasks:
        inputs = [*task.inputs, *([GLOB] if task.uses_glob else [])]
        sink = "{output}" if task.has_output else "/dev/null"
        text += (f"\n[tasks.{task.name}]\n"
                 f'cmd = "echo {task.name} >> runs.log && cat {{inputs}} | {task.filter} > {sink}"\n'
                 f"inputs = {inputs!r}\n".replace("'", '"'))
        if task.has_output:
            text += f'outputs = ["{task.output}"]\n'
    return text


@st.composite
def graphs(draw: st.DrawFn) -> list[TaskSpec]:
    count = draw(st.integers(2, 5))
    tasks: list[TaskSpec] = []
    for index in range(count):
        upstream = [t.output for t in tasks if t.has_output]
        inputs = draw(st.lists(st.sampled_from(SOURCES + upstream), min_size=1, max_size=3,
                               unique=True))
        last = index == count - 1
        tasks.append(TaskSpec(f"t{index}", inputs, draw(st.booleans()),
                              draw(st.sampled_from(sorted(FILTERS))),
                              has_output=not last or draw(st.booleans())))
    return tasks


contents = st.lists(st.sampled_from(LINES), max_size=3).map(b"".join)
EDITS = ("change", "touch", "delete_output", "edit_output", "command", "add_glob",
         "remove_glob", "same_bytes")


def write(root: Path, model: Model, path: str, data: bytes) -> None:
    model.files[path] = data
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(data)


def apply_edit(draw: st.DrawFn, root: Path, model: Model) -> None:
    outputs = [t.output for t in model.tasks if t.has_output and t.output in model.files]
    sources = sorted(p for p in model.files if p.startswith("src/"))
    kind = draw(st.sampled_from(EDITS))
    if kind.endswith("output") and not outputs:
        kind = "touch"
    if kind == "change":
        write(root, model, draw(st.sampled_from(sources)), draw(contents))
    elif kind == "same_bytes":
        path = draw(st.sampled_from(sources + outputs))
        write(root, model, path, model.files[path])
    elif kind == "touch":
        path = root / draw(st.sampled_from(sources + outputs))
        later = time.time_ns() + draw(st.integers(1, 10**10))
        os.utime(path, ns=(later, later))
    elif kind == "delete_output":
        path = draw(st.sampled_from(outputs))
        (root / path).unlink()
        del model.files[path]
    elif kind == "edit_output":
        path = draw(st.sampled_from(outputs))
        write(root, model, path, model.files[path] + b"edited\n")
    elif kind == "command":
        task = draw(st.sampled_from(model.tasks))
        task.filter = draw(st.sampled_from(sorted(FILTERS)))
        (root / "Flowfile").write_text(flowfile(model.tasks))
    elif kind == "add_glob":
        write(root, model, f"src/g{draw(st.integers(0, 3))}.txt", draw(contents))
    else:
        globbed = [p for p in sources if p.startswith("src/g")]
        if globbed:
            path = draw(st.sampled_from(globbed))
            (root / path).unlink()
            del model.files[path]


def clean_build(root: Path, model: Model, scratch: Path) -> dict[str, bytes]:
    """Build the same sources and Flowfile from nothing in a fresh directory."""
    fresh = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copy(root / "Flowfile", fresh / "Flowfile")
    for path in model.files:
        if path.startswith("src/"):
            (fresh / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / path, fresh / path)
    result = engine.build(engine.load(fresh / "Flowfile"), jobs=2)
    assert result.exit_status == 0
    return {t.output: (fresh / t.output).read_bytes() for t in model.tasks if t.has_output}


def check_build(root: Path, model: Model, scratch: Path) -> None:
    before = len((root / "runs.log").read_text().split()) if (root / "runs.log").exists() else 0
    result = run_bflow("-j", "2", cwd=root)
    assert result.returncode == 0, result.stderr
    ran = (root / "runs.log").read_text().split()[before:]
    assert sorted(ran) == sorted(model.build())
    on_disk = {t.output: (root / t.output).read_bytes() for t in model.tasks if t.has_output}
    assert on_disk == clean_build(root, model, scratch)
    assert on_disk == {path: model.files[path] for path in on_disk}


@PROPERTY_SETTINGS
@given(st.data())
def test_incremental_build_equals_clean_build_and_runs_exactly_what_changed(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        root = scratch / "project"
        root.mkdir()
        model = Model(data.draw(graphs()), {})
        for path in SOURCES:
            write(root, model, path, data.draw(contents))
        (root / "Flowfile").write_text(flowfile(model.tasks))
        check_build(root, model, scratch)
        for _ in range(data.draw(st.integers(1, 4))):
            for _ in range(data.draw(st.integers(1, 2))):
                apply_edit(data.draw, root, model)
            check_build(root, model, scratch)
