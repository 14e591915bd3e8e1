"""The correctness property for `foreach`: as item files come and go, an incremental build
leaves exactly the files a clean build would, and runs exactly the instances that had to run.

A foreach task makes one output per item; optionally a second foreach runs over those outputs;
a join globs the last level and an output-less check globs the first. Removing an item must
remove its outputs down the chain before the globs are expanded (unless an output was edited
by hand, which is left in place and then seen by the globs, as the model predicts). The model
here knows nothing of bflow: it expands the globs over its own picture of the disk. Its clean
build, every instance run once over today's sources, is checked after every build; the
engine's, in a fresh directory, after each example's last edit.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from test_property import (FILTERS, PROPERTY_SETTINGS, Files, RealFiles, build_and_count,
                           contents, edit_file, scratch_project, write)

from buildflow import engine


# Two items whose names hold glob characters, which name those files and nothing else.
ITEMS = ["src/f0.txt", "src/f[1].txt", "src/f*2.txt", "src/f3.txt"]
COMMON = "src/common.txt"
BUILT = ("gen/", "gen2/", "site.txt")


@dataclass
class Step:
    """One task of the chain: a foreach (output pattern from the item's stem) or a plain one."""

    name: str
    filter: str
    glob: str                    # the foreach glob, or the plain task's input glob
    output: str | None           # with {stem} under foreach; None for a check
    foreach: bool
    extra: tuple[str, ...] = ()  # listed inputs besides the item

    def command(self) -> str:
        """The shell command: it logs its run and filters its inputs into its output."""
        sink = "{output}" if self.output else "/dev/null"
        tag = "{task}" if self.foreach else self.name
        return f"echo {tag} >> runs.log && cat {{inputs}} | {self.filter} > {sink}"

    def table(self, action: Callable[[Step], str]) -> str:
        text = f"\n[tasks.{self.name}]\ncmd = {json.dumps(action(self))}\n"
        if self.foreach:
            text += f"foreach = {json.dumps(self.glob)}\ninputs = {json.dumps(self.extra)}\n"
        else:
            text += f"inputs = {json.dumps([self.glob])}\n"
        return text + (f"outputs = {json.dumps([self.output])}\n" if self.output else "")


@dataclass
class Instance:
    name: str
    step: Step
    inputs: tuple[str, ...]
    output: str | None


@dataclass
class Model:
    """The files on disk and, per instance, what its last successful run saw and wrote."""

    steps: list[Step]
    files: dict[str, bytes] = field(default_factory=dict)
    records: dict[str, tuple[object, ...]] = field(default_factory=dict)
    action: Callable[[Step], str] = Step.command  # how the Flowfile writes a step's action

    def matches(self, glob: str, declared: list[str]) -> list[str]:
        return sorted({p for p in [*self.files, *declared] if fnmatch.fnmatchcase(p, glob)})

    def instances(self) -> list[Instance]:
        """Expand the Flowfile: foreach and input globs see files and declared outputs."""
        found: list[Instance] = []
        for step in self.steps:
            declared = [i.output for i in found if i.output]
            if not step.foreach:
                found.append(Instance(step.name, step, tuple(self.matches(step.glob, declared)),
                                      step.output))
                continue
            for item in self.matches(step.glob, declared):
                stem = Path(item).stem
                found.append(Instance(f"{step.name}:{item}", step, (item, *step.extra),
                                      step.output.format(stem=stem) if step.output else None))
        return found

    def prune(self) -> list[Instance]:
        """Remove unedited outputs no instance declares any more, until none is left."""
        while True:
            instances = self.instances()
            declared = {i.output for i in instances}
            removed = False
            for name, record in list(self.records.items()):
                path, data = record[3], record[4]
                if path is not None and path not in declared and self.files.get(path) == data:
                    del self.files[path]
                    removed = True
            live = {i.name for i in instances}
            self.records = {n: r for n, r in self.records.items() if n in live}
            if not removed:
                return instances

    def build(self) -> list[str]:
        ran = []
        for instance in self.prune():
            seen = (instance.step.filter, instance.inputs,
                    tuple(self.files[p] for p in instance.inputs))
            record = self.records.get(instance.name)
            current = self.files.get(instance.output) if instance.output else None
            # Every step declares its inputs (its glob), so none runs on every build, also
            # a check whose glob matches nothing now.
            if record is None or record[:3] != seen or current != record[4]:
                ran.append(instance.name)
                new = FILTERS[instance.step.filter](b"".join(seen[2]))
                if instance.output:
                    self.files[instance.output] = new
                self.records[instance.name] = (*seen, instance.output,
                                               new if instance.output else None)
        return ran

    def clean(self) -> dict[str, bytes]:
        """The files a build from nothing leaves: every instance run once over the sources."""
        sources = {p: data for p, data in self.files.items() if p.startswith("src/")}
        fresh = Model(self.steps, sources)
        fresh.build()
        return {p: data for p, data in fresh.files.items() if p.startswith(BUILT)}

    def leftovers(self) -> bool:
        declared = {i.output for i in self.instances()}
        return any(p.startswith(BUILT) and p not in declared for p in self.files)


@st.composite
def chains(draw: st.DrawFn) -> list[Step]:
    filters = st.sampled_from(sorted(FILTERS))
    steps = [Step("each", draw(filters), "src/f*.txt", "gen/{stem}.out", True,
                  (COMMON,) if draw(st.booleans()) else ())]
    if draw(st.booleans()):
        steps.append(Step("again", draw(filters), "gen/*.out", "gen2/{stem}.txt", True))
    steps.append(Step("join", draw(filters), steps[-1].output.replace("{stem}", "*"),
                      "site.txt", False))
    if draw(st.booleans()):
        steps.append(Step("check", "cat", "gen/*.out", None, False))
    return steps


EDITS = ("add_item", "add_item", "remove_item", "remove_item", "change", "touch",
         "delete_output", "edit_output", "command")


def apply_edit(draw: st.DrawFn, files: Files, model: Model) -> None:
    sources = sorted(p for p in model.files if p.startswith("src/"))
    items = [p for p in sources if p in ITEMS]
    outputs = sorted(p for p in model.files if p.startswith(BUILT))
    kind = draw(st.sampled_from(EDITS))
    if kind.endswith("output") and not outputs or kind == "remove_item" and not items:
        kind = "add_item"
    if kind == "add_item" or kind == "change":
        path = draw(st.sampled_from(ITEMS if kind == "add_item" else sources))
        write(files, model, path, draw(contents))
    elif kind == "remove_item":
        edit_file(draw, files, model, kind, items)
    elif kind == "touch":
        edit_file(draw, files, model, kind, sources + outputs)
    elif kind.endswith("output"):
        edit_file(draw, files, model, kind, outputs)
    else:
        draw(st.sampled_from(model.steps)).filter = draw(st.sampled_from(sorted(FILTERS)))
        files.rewrite("Flowfile", flowfile(model))


def flowfile(model: Model) -> bytes:
    text = '[settings]\nenv = { LC_ALL = "C" }\n' + \
        "".join(step.table(model.action) for step in model.steps)
    return text.encode()


def built(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.glob("**/*")) if p.is_file()
            and p.relative_to(root).as_posix().startswith(BUILT)}


def clean_build(root: Path, scratch: Path) -> dict[str, bytes]:
    fresh = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copytree(root / "src", fresh / "src")
    shutil.copy(root / "Flowfile", fresh / "Flowfile")
    assert engine.build(engine.load(fresh / "Flowfile"), jobs=2, cache=False).exit_status == 0
    return built(fresh)


def check_build(root: Path, model: Model, scratch: Path, last: bool = False) -> None:
    """Build, and check what ran and what is on disk; after an example's `last` edit, also
    against the engine's clean build. Outputs edited by hand and then left undeclared stay,
    where a clean build has none."""
    ran = build_and_count(root)
    assert sorted(ran) == sorted(model.build())
    on_disk = built(root)
    assert on_disk == {p: d for p, d in model.files.items() if p.startswith(BUILT)}
    if not model.leftovers():
        assert on_disk == model.clean()
        if last:
            assert on_disk == clean_build(root, scratch)


@PROPERTY_SETTINGS
@given(st.data())
def test_foreach_items_coming_and_going_match_a_clean_build(data: st.DataObject) -> None:
    with scratch_project() as (scratch, root):
        model = Model(data.draw(chains()))
        files = RealFiles(root)
        write(files, model, COMMON, data.draw(contents))
        for path in data.draw(st.lists(st.sampled_from(ITEMS), max_size=3, unique=True)):
            write(files, model, path, data.draw(contents))
        files.rewrite("Flowfile", flowfile(model))
        check_build(root, model, scratch)
        builds = data.draw(st.integers(1, 4))
        for build in range(builds):
            for _ in range(data.draw(st.integers(1, 2))):
                apply_edit(data.draw, files, model)
            check_build(root, model, scratch, last=build == builds - 1)
