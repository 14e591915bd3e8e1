"""The correctness property: after any sequence of edits, an incremental build leaves every
output equal to a clean build's, and runs exactly the tasks that had to run.

The clean build is worked out after every build, by the model below running every task once
over today's sources, and made by the engine in a fresh directory after each example's last
edit (the example's first build is a real clean build too): the model's clean build is what
the engine's is checked against, so the engine's is not needed at every step.

Random DAGs over small files are built with the real `bflow`. Which tasks must run is worked
out here, independently of bflow, from the graph, the edits and the bytes each command would
write (so early cutoff is part of the expectation); runs are counted through a log the commands
append to. Tasks may read a var (overridden on the command line or edited in the Flowfile),
write a depfile naming extra inputs, wait for other tasks through `deps` (ordering only), be
`always = true`, write no output at all (a check), read a source through a symlinked
directory, or be a Python function (`py`) doing what its command would, whose module file may
be edited (every `py` task then runs: the file is part of its action, as all the vars are). Before each build, `-n` must name every task the build then runs, and give a reason
of its own to each task that runs whatever its upstream writes. Every bflow here runs with
BFLOW_VERIFY=1, so any shortcut that disagrees with the full decision fails the build.

The same property holds with the output cache on (a private one per example): then a task
that must run may be restored instead, so the tasks run and restored together are exactly
those that had to run, and the outputs still equal a clean build's made without the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from conftest import date_past_timestamp_slack, run_bflow
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildflow import engine

# Shell filters, each with the same function in Python; most are lossy, so a changed input
# often leaves the output byte-identical and cuts the rebuild off. Kept as source, since the
# module of the `py` tasks (PY_FUNCTION) holds them too.
FILTERS_SOURCE = """
FILTERS = {
    "cat": lambda data: data,
    "tr -d 0-9": lambda data: bytes(b for b in data if not 48 <= b <= 57),
    "wc -l": lambda data: b"%d\\n" % data.count(b"\\n"),
    "sort": lambda data: b"".join(sorted(data.splitlines(keepends=True))),
    "head -n 1": lambda data: b"".join(data.splitlines(keepends=True)[:1]),
}
"""
_namespace: dict[str, dict[str, Callable[[bytes], bytes]]] = {}
exec(FILTERS_SOURCE, _namespace)
FILTERS = _namespace["FILTERS"]
SOURCES = ["src/s0.txt", "src/s1.txt", "src/s2.txt"]
ALIAS = "alias"  # a symlink to src/: `alias/s2.txt` is src/s2.txt
ALIASED = f"{ALIAS}/s2.txt"
VERIFY = {"BFLOW_VERIFY": "1"}
DECISION = {**VERIFY, "BFLOW_CACHE": "0"}  # the decision alone: no task restored
DEPFILE_SOURCES = ["src/d0.txt", "src/d1.txt"]   # read by commands, named only by depfiles
GLOB = "src/g*.txt"
LINES = [b"a1\n", b"a2\n", b"b\n", b"7\n"]
VALUES = ["v0", "v1", "7", "8"]                  # "7" and "8" look alike through tr -d 0-9
# 45 examples draw each edit and each kind of task dozens of times; BFLOW_PROPERTY_EXAMPLES
# searches deeper (the README says how).
EXAMPLES = int(os.environ.get("BFLOW_PROPERTY_EXAMPLES", "45"))
PROPERTY_SETTINGS = settings(max_examples=EXAMPLES,
                             deadline=None, derandomize=bool(os.environ.get("CI")),
                             suppress_health_check=[HealthCheck.too_slow])


@dataclass
class TaskSpec:
    name: str
    inputs: list[str]          # sources and outputs of earlier tasks, in this order
    uses_glob: bool
    filter: str
    has_output: bool = True
    uses_var: bool = False
    depfile: tuple[str, ...] = ()   # files the command reads and names in its depfile
    deps: tuple[str, ...] = ()      # earlier tasks with outputs, for ordering only
    always: bool = False
    py: bool = False                # a Python function (PY_MODULE) instead of the command

    @property
    def output(self) -> str:
        return f"out/{self.name}.txt"

    @property
    def depfile_path(self) -> str:
        return f"dep/{self.name}.d"


@dataclass
class Model:
    """What is on disk, the var's value, and what each task's last run saw and wrote."""

    tasks: list[TaskSpec]
    files: dict[str, bytes]
    var_default: str = "v0"
    var_override: str | None = None
    records: dict[str, tuple[object, ...]] = field(default_factory=dict)
    module_edits: int = 0  # edits of PY_MODULE, the py tasks' module

    @property
    def var(self) -> str:
        return self.var_default if self.var_override is None else self.var_override

    def read(self, path: str) -> bytes:
        return self.files[real(path)]

    def inputs_of(self, task: TaskSpec) -> tuple[str, ...]:
        globbed = sorted(p for p in self.files if p.startswith("src/g")) if task.uses_glob else []
        return tuple(dict.fromkeys((*task.inputs, *globbed)))

    def action_of(self, task: TaskSpec) -> tuple[object, ...]:
        if task.py:  # its module's file and every var are part of a py task's action
            return "py", task.filter, task.uses_var, self.var, task.depfile, task.deps, \
                self.module_edits
        return task.filter, self.var if task.uses_var else None, task.depfile, task.deps

    def build(self) -> list[str]:
        """Run what must run, in order; return the names that ran."""
        ran = []
        for task in self.tasks:
            if self.must_run(task):
                ran.append(task.name)
                self.run(task)
        return ran

    def seen_by(self, task: TaskSpec) -> tuple[object, ...]:
        """What a run of `task` reads now: its action, its inputs and their bytes."""
        inputs = self.inputs_of(task)
        return self.action_of(task), inputs, tuple(self.read(path) for path in inputs)

    def must_run(self, task: TaskSpec) -> bool:
        record = self.records.get(task.name)
        output = self.files.get(task.output) if task.has_output else None
        return task.always or record is None or record[:3] != self.seen_by(task) or \
            output != record[4] or record[3] != tuple(self.files[path] for path in record[5])

    def run(self, task: TaskSpec) -> None:
        """What the task's command does, and the record its run leaves."""
        seen = self.seen_by(task)
        data = b"".join(self.read(p) for p in (*self.inputs_of(task), *task.depfile))
        if task.uses_var:
            data += self.var.encode() + b"\n"
        new = FILTERS[task.filter](data) if task.has_output else None
        if new is not None:
            self.files[task.output] = new
        named = tuple(self.files[path] for path in task.depfile)
        self.records[task.name] = (*seen, named, new, task.depfile)

    def clean(self) -> dict[str, bytes]:
        """The outputs of a build from nothing: every task run once over today's sources."""
        sources = {path: data for path, data in self.files.items() if path.startswith("src/")}
        fresh = Model(self.tasks, sources, self.var_default, self.var_override,
                      module_edits=self.module_edits)
        fresh.build()
        return {t.output: fresh.files[t.output] for t in self.tasks if t.has_output}


def real(path: str) -> str:
    """The path under src/ that a path through the symlinked directory reads."""
    return "src/" + path[len(ALIAS) + 1:] if path.startswith(ALIAS + "/") else path


def command(task: TaskSpec) -> str:
    parts = [f"echo {task.name} >> runs.log"]
    parts += [f"test -e out/{dep}.txt" for dep in task.deps]
    if task.depfile:
        parts.append(f"printf 'x: {' '.join(task.depfile)}\\n' > {{depfile}}")
    read = " ".join(("cat {inputs}", *task.depfile))
    if task.uses_var:
        read = f"({read}; echo {{V}})"
    sink = "{output}" if task.has_output else "/dev/null"
    return " && ".join(parts) + f" && {read} | {task.filter} > {sink}"


# What `command` does, as a `py` task's function; the task's env says which filter and files.
PY_MODULE = "tools/filters.py"
PY_FUNCTION = "import os\n" + FILTERS_SOURCE + """

def run(ctx):
    with open("runs.log", "a") as runs:
        runs.write(ctx.name + "\\n")
    for dep in ctx.env["DEPS"].split():
        assert os.path.exists(f"out/{dep}.txt"), dep
    named = ctx.env["DEPFILE"].split()
    if named:
        with open(ctx.depfile, "w") as depfile:
            depfile.write("x: " + " ".join(named) + "\\n")
    data = b""
    for path in (*ctx.inputs, *named):
        with open(path, "rb") as handle:
            data += handle.read()
    if ctx.env["USES_VAR"]:
        data += ctx.vars["V"].encode() + b"\\n"
    with open(ctx.outputs[0] if ctx.outputs else os.devnull, "wb") as out:
        out.write(FILTERS[ctx.env["FILTER"]](data))
"""


def action_keys(task: TaskSpec) -> str:
    """The task's `cmd`, or its `py` and the env that tells the function what to do."""
    if not task.py:
        return f"cmd = {json.dumps(command(task))}\n"
    env = {"FILTER": task.filter, "DEPFILE": " ".join(task.depfile),
           "DEPS": " ".join(task.deps), "USES_VAR": "1" if task.uses_var else ""}
    return 'py = "tools.filters:run"\nenv = { ' + \
        ", ".join(f"{k} = {json.dumps(v)}" for k, v in env.items()) + " }\n"


def flowfile(model: Model, action: Callable[[TaskSpec], str] = action_keys) -> str:
    """The model's Flowfile, each task's action written by `action`."""
    text = f'[settings]\nenv = {{ LC_ALL = "C" }}\n\n[vars]\nV = "{model.var_default}"\n'
    for task in model.tasks:
        inputs = [*task.inputs, *([GLOB] if task.uses_glob else [])]
        text += (f"\n[tasks.{task.name}]\n{action(task)}"
                 f"inputs = {json.dumps(inputs)}\n")
        if task.has_output:
            text += f'outputs = ["{task.output}"]\n'
        if task.depfile:
            text += f'depfile = "{task.depfile_path}"\n'
        if task.deps:
            text += f"deps = {json.dumps(task.deps)}\n"
        if task.always:
            text += "always = true\n"
    return text


@st.composite
def graphs(draw: st.DrawFn) -> list[TaskSpec]:
    count = draw(st.integers(2, 5))
    tasks: list[TaskSpec] = []
    for index in range(count):
        producers = [t for t in tasks if t.has_output]
        inputs = draw(st.lists(st.sampled_from(SOURCES + [ALIASED]
                                               + [t.output for t in producers]),
                               min_size=1, max_size=3, unique=True))
        deps = draw(st.lists(st.sampled_from([t.name for t in producers]), max_size=1)
                    if producers else st.just([]))
        tasks.append(TaskSpec(
            f"t{index}", inputs, draw(st.booleans()), draw(st.sampled_from(sorted(FILTERS))),
            has_output=index < count - 1 or draw(st.booleans()),
            uses_var=draw(st.booleans()),
            depfile=tuple(draw(st.lists(st.sampled_from(DEPFILE_SOURCES), max_size=2,
                                        unique=True))),
            deps=tuple(deps), always=draw(st.integers(0, 5)) == 0,
            py=draw(st.integers(0, 2)) == 0))
    return tasks


contents = st.lists(st.sampled_from(LINES), max_size=3).map(b"".join)
EDITS = ("change", "touch", "delete_output", "edit_output", "command", "add_glob",
         "remove_glob", "same_bytes", "var_cli", "var_file", "delete_depfile", "toggle_always",
         "toggle_py", "edit_module")


class Disk(Protocol):
    files: dict[str, bytes]


class Files(Protocol):
    """Where an example's files are: the real disk (`RealFiles`) or one in memory."""

    def rewrite(self, path: str, data: bytes) -> None: ...

    def touch(self, path: str, mtime_ns: int) -> None: ...

    def remove(self, path: str) -> object: ...

    def now_ns(self) -> int: ...


class RealFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def rewrite(self, path: str, data: bytes) -> None:
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        (self.root / path).write_bytes(data)

    def touch(self, path: str, mtime_ns: int) -> None:
        os.utime(self.root / path, ns=(mtime_ns, mtime_ns))

    def remove(self, path: str) -> None:
        (self.root / path).unlink()

    def now_ns(self) -> int:
        return time.time_ns()


def write(files: Files, model: Disk, path: str, data: bytes) -> None:
    model.files[path] = data
    files.rewrite(path, data)


def edit_file(draw: st.DrawFn, files: Files, model: Disk, kind: str, paths: list[str]) -> None:
    """Touch one of `paths`, append to it ("edit_output"), or else delete it."""
    path = draw(st.sampled_from(paths))
    if kind == "touch":
        shift = draw(st.integers(1, 10**10))
        # A depfile input dated in the future looks written during every run of its task,
        # which then runs on every build (a documented exception the model leaves out).
        files.touch(path, files.now_ns() + (-shift if path in DEPFILE_SOURCES else shift))
    elif kind == "edit_output":
        write(files, model, path, model.files[path] + b"edited\n")
    else:
        files.remove(path)
        del model.files[path]


def apply_edit(draw: st.DrawFn, root: Path, model: Model) -> None:
    files = RealFiles(root)
    outputs = [t.output for t in model.tasks if t.has_output and t.output in model.files]
    sources = sorted(p for p in model.files if p.startswith("src/"))
    depfiles = [t.depfile_path for t in model.tasks if (root / t.depfile_path).exists()]
    kind = draw(st.sampled_from(EDITS))
    if kind.endswith("output") and not outputs:
        kind = "touch"
    if kind == "change":
        write(files, model, draw(st.sampled_from(sources)), draw(contents))
    elif kind == "same_bytes":
        path = draw(st.sampled_from(sources + outputs))
        write(files, model, path, model.files[path])
    elif kind == "touch":
        edit_file(draw, files, model, kind, sources + outputs)
    elif kind.endswith("output"):
        edit_file(draw, files, model, kind, outputs)
    elif kind == "add_glob":
        write(files, model, f"src/g{draw(st.integers(0, 3))}.txt", draw(contents))
    elif kind == "remove_glob":
        globbed = [p for p in sources if p.startswith("src/g")]
        if globbed:
            edit_file(draw, files, model, kind, globbed)
    elif kind == "var_cli":
        model.var_override = draw(st.sampled_from([None, *VALUES]))
    elif kind == "delete_depfile":
        if depfiles:
            (root / draw(st.sampled_from(depfiles))).unlink()
    elif kind == "edit_module":
        model.module_edits += 1
        (root / PY_MODULE).write_text(PY_FUNCTION + f"# edit {model.module_edits}\n")
    else:
        if kind == "var_file":
            model.var_default = draw(st.sampled_from(VALUES))
        elif kind == "command":
            task = draw(st.sampled_from(model.tasks))
            task.filter = draw(st.sampled_from(sorted(FILTERS)))
        elif kind == "toggle_py":
            task = draw(st.sampled_from(model.tasks))
            task.py = not task.py
        else:
            task = draw(st.sampled_from(model.tasks))
            task.always = not task.always
        (root / "Flowfile").write_text(flowfile(model))


def overrides(model: Model) -> dict[str, str]:
    return {} if model.var_override is None else {"V": model.var_override}


def clean_build(root: Path, model: Model, scratch: Path) -> dict[str, bytes]:
    """Build the same sources and Flowfile from nothing in a fresh directory."""
    fresh = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copy(root / "Flowfile", fresh / "Flowfile")
    shutil.copytree(root / "tools", fresh / "tools")
    (fresh / ALIAS).symlink_to("src")
    for path in model.files:
        if path.startswith("src/"):
            (fresh / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / path, fresh / path)
    result = engine.build(engine.load(fresh / "Flowfile", overrides(model)), jobs=2, cache=False)
    assert result.exit_status == 0
    return {t.output: (fresh / t.output).read_bytes() for t in model.tasks if t.has_output}


@contextmanager
def scratch_project() -> Iterator[tuple[Path, Path]]:
    """A scratch directory for clean builds, holding the project directory."""
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        (scratch / "project").mkdir()
        yield scratch, scratch / "project"


def build_and_count(root: Path, *args: str, env: dict[str, str] = DECISION) -> list[str]:
    """Run `bflow -j 2 ARGS` and return the names the commands appended to runs.log, and
    those of the tasks it restored from the output cache."""
    log = root / "runs.log"
    before = len(log.read_text().split()) if log.exists() else 0
    result = run_bflow("-j", "2", "--plain", *args, cwd=root, env=env)
    assert result.returncode == 0, result.stderr
    restored = [line.split()[1] for line in result.stdout.splitlines()
                if line.startswith("restored ")]
    return log.read_text().split()[before:] + restored


def dry_run(root: Path, env: dict[str, str], *args: str) -> tuple[set[str], set[str]]:
    """What `bflow -n ARGS` says would run: the tasks with a reason of their own, and all it
    names (also those that run only if what their upstream writes differs)."""
    result = run_bflow("-n", "--json", *args, cwd=root, env=env)
    assert result.returncode == 0, result.stderr
    reasons = {event["task"]: event["reason"].removeprefix("would run: ")
               for event in map(json.loads, result.stdout.splitlines())
               if event["event"] == "task_skipped" and event["reason"].startswith("would run")}
    own = {name for name, reason in reasons.items() if not reason.endswith("will run first")}
    return own, set(reasons)


def check_build(root: Path, model: Model, scratch: Path, env: dict[str, str],
                last: bool = False) -> None:
    """Build, and check what ran and what is on disk; after an example's `last` edit, also
    against the engine's clean build."""
    for path in DEPFILE_SOURCES:
        if (root / path).exists():
            date_past_timestamp_slack(root / path)
    assignments = [f"{name}={value}" for name, value in overrides(model).items()]
    own, named = dry_run(root, env, *assignments)
    ran = build_and_count(root, *assignments, env=env)
    assert sorted(ran) == sorted(model.build())
    assert own <= set(ran) <= named, (own, ran, named)
    on_disk = {t.output: (root / t.output).read_bytes() for t in model.tasks if t.has_output}
    assert on_disk == {path: model.files[path] for path in on_disk} == model.clean()
    if last:
        assert on_disk == clean_build(root, model, scratch)


def check_edits(data: st.DataObject, scratch: Path, root: Path, env: dict[str, str]) -> None:
    model = Model(data.draw(graphs()), {})
    (root / ALIAS).symlink_to("src")
    for path in SOURCES + DEPFILE_SOURCES:
        write(RealFiles(root), model, path, data.draw(contents))
    (root / "tools").mkdir()
    (root / PY_MODULE).write_text(PY_FUNCTION)
    (root / "Flowfile").write_text(flowfile(model))
    check_build(root, model, scratch, env)
    builds = data.draw(st.integers(1, 4))
    for build in range(builds):
        for _ in range(data.draw(st.integers(1, 2))):
            apply_edit(data.draw, root, model)
        check_build(root, model, scratch, env, last=build == builds - 1)


@PROPERTY_SETTINGS
@given(st.data())
def test_incremental_build_equals_clean_build_and_runs_exactly_what_changed(data: st.DataObject) -> None:
    with scratch_project() as (scratch, root):
        check_edits(data, scratch, root, DECISION)


@pytest.mark.output_cache
@PROPERTY_SETTINGS
@given(st.data())
def test_with_the_output_cache_the_tasks_run_or_restored_are_what_changed(
        data: st.DataObject) -> None:
    with scratch_project() as (scratch, root):
        check_edits(data, scratch, root, {**VERIFY, "BFLOW_CACHE_DIR": str(scratch / "cache")})
