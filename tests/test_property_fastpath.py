"""The soundness of the no-op fast path: whenever `fastproof.check` says a build would run
nothing, a full build really runs nothing, and the outputs equal a clean build's.

The other property tests never reach the fast path: a proof is only written once the globbed
directories have been still for longer than the racy window, and they build too quickly after
making their files. Here each random project (explicit tasks from `test_property`, with vars
and depfiles, and optionally a foreach) is built, left to settle, and built again so a proof is
written; then it is edited in ways that keep every directory listing the same, so the proof
stays worth checking: content edits of the same or another size, touches that keep the
content, same-size edits with the old mtime put back on a file whose mtime is in the future
(where only re-hashing can tell), edited or deleted outputs, a var changed on the command line
or in the Flowfile, a build with another value of the var in between (its records void the
proof even where its outputs come out the same), and other Flowfile changes. After each edit the proof is asked, then the
truth is found by removing the proof and running the real `bflow`, counting the commands' runs;
when the proof holds, sometimes in a copy instead, so that the next edit meets the proof as the
check refreshed it (a touched file's new stat, a file still too recent to trust).

A check that believed nothing would pass vacuously, so the proof must hold right after the
settled build, and across the run it must both hold and fail after some edits.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from conftest import settle
from hypothesis import given, settings
from hypothesis import strategies as st
from test_property import (ALIAS, DEPFILE_SOURCES, EXAMPLES, FILTERS, LINES, PROPERTY_SETTINGS,
                           PY_FUNCTION, PY_MODULE, SOURCES, VALUES, Model, TaskSpec,
                           build_and_count, flowfile, graphs, overrides, scratch_project)
from test_fastpath_proof import drop_proofs

from buildflow import engine
from buildflow.fastpath import proof as fastproof


GLOBBED = ["src/g0.txt", "src/g1.txt"]   # matched by test_property's GLOB
ITEMS = ["src/f0.txt", "src/f1.txt"]     # the foreach's items
FUTURE_NS = 3600 * 10**9                 # an mtime the hash can never be safely after
# Each example waits out the racy window once and runs a subprocess per edit: a few times
# the cost of one of test_property's examples, so fewer of them.
SETTINGS = settings(PROPERTY_SETTINGS, max_examples=max(1, EXAMPLES // 3))


@dataclass
class Each:
    """A foreach over ITEMS: each instance reads its item and `extra`, through a filter."""

    filter: str
    extra: tuple[str, ...]
    uses_var: bool

    def table(self) -> str:
        read = "(cat {inputs}; echo {V})" if self.uses_var else "cat {inputs}"
        cmd = f"echo {{task}} >> runs.log && {read} | {self.filter} > {{output}}"
        return (f'\n[tasks.each]\nforeach = "src/f*.txt"\ncmd = {json.dumps(cmd)}\n'
                f'inputs = {json.dumps(self.extra)}\noutputs = ["out/each-{{stem}}.txt"]\n')


@dataclass
class Spec:
    """The Flowfile: test_property's tasks and var, the foreach, and comments added by edits."""

    model: Model
    each: Each | None
    comments: int = 0

    def flowfile(self) -> str:
        return flowfile(self.model) + (self.each.table() if self.each else "") + \
            "# edited\n" * self.comments


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    tasks = [replace(task, always=False) for task in draw(graphs())]  # always: no proof
    each = draw(st.none() | st.builds(
        Each, st.sampled_from(sorted(FILTERS)),
        st.lists(st.sampled_from(SOURCES), max_size=2, unique=True).map(tuple), st.booleans()))
    return Spec(Model(tasks, {}, var_default=draw(st.sampled_from(VALUES))), each)


lines = st.lists(st.sampled_from(LINES), min_size=1, max_size=3).map(b"".join)
EDITS = ("same_size", "resize", "touch", "racy", "racy", "delete_output", "var_cli", "flowfile",
         "other_build")
CONTENT_EDITS = ("same_size", "resize", "resize", "touch", "racy", "delete_output")


def same_size(draw: st.DrawFn, data: bytes) -> bytes:
    """Other bytes of the same length (`data` is not empty)."""
    at = draw(st.integers(0, len(data) - 1))
    new = draw(st.sampled_from([b for b in b"0123456789ab\n" if b != data[at]]))
    return data[:at] + bytes([new]) + data[at + 1:]


def resized(draw: st.DrawFn, data: bytes) -> bytes:
    if data and draw(st.booleans()):
        return data[:-1]
    return data + draw(st.sampled_from(LINES))


def apply_edit(draw: st.DrawFn, root: Path, spec: Spec, kinds: tuple[str, ...] = EDITS) -> str:
    """Make one edit that leaves every directory listing as it was; return its kind."""
    outputs = sorted(p.relative_to(root).as_posix() for p in (root / "out").iterdir())
    files = sorted(p.relative_to(root).as_posix() for p in (root / "src").iterdir()) + outputs
    kind = draw(st.sampled_from(kinds))
    if kind == "delete_output" and not outputs:
        kind = "touch"
    now = time.time_ns()
    if kind == "racy":
        future = [p for p in files if os.stat(root / p).st_mtime_ns > now and
                  os.path.getsize(root / p) > 0]
        if not future:  # make one: the next build records a stat it cannot trust
            path = draw(st.sampled_from([p for p in files if os.path.getsize(root / p) > 0]))
            os.utime(root / path, ns=(now + FUTURE_NS, now + FUTURE_NS))
            return "touch into the future"
        target = root / draw(st.sampled_from(future))
        before = os.stat(target)
        target.write_bytes(same_size(draw, target.read_bytes()))
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = os.stat(target)
        assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
            (before.st_size, before.st_mtime_ns, before.st_ino)  # only the hash can tell
        return kind
    if kind in ("same_size", "resize"):
        target = root / draw(st.sampled_from(files))
        data = target.read_bytes()
        if kind == "same_size" and not data:
            kind = "resize"
        target.write_bytes(same_size(draw, data) if kind == "same_size" else resized(draw, data))
    elif kind == "touch":
        later = now + draw(st.sampled_from([0, FUTURE_NS]))
        os.utime(root / draw(st.sampled_from(files)), ns=(later, later))
    elif kind == "delete_output":
        (root / draw(st.sampled_from(outputs))).unlink()
    elif kind == "var_cli":
        spec.model.var_override = draw(st.sampled_from([None, *VALUES]))
    elif kind == "other_build":  # records written by a build with another value of the var
        build_and_count(root, f"V={draw(st.sampled_from(VALUES))}")
    else:
        change = draw(st.sampled_from(["var", "filter", "comment", "module"]))
        if change == "module":  # the py tasks' module: part of their action, not of a listing
            (root / PY_MODULE).write_text(PY_FUNCTION + f"# edited at {time.time_ns()}\n")
        elif change == "var":
            spec.model.var_default = draw(st.sampled_from(VALUES))
        elif change == "filter":
            filtered: list[TaskSpec | Each] = [*spec.model.tasks, *filter(None, [spec.each])]
            draw(st.sampled_from(filtered)).filter = draw(st.sampled_from(sorted(FILTERS)))
        else:
            spec.comments += 1
        (root / "Flowfile").write_text(spec.flowfile())
    return kind


def built(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "out").iterdir())}


class CleanBuilds:
    """Outputs of a clean build of the current sources, Flowfile and overrides, in a fresh
    directory; remembered, since most edits leave all three as they were."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.seen: dict[tuple[object, ...], dict[str, bytes]] = {}

    def outputs(self, root: Path, spec: Spec) -> dict[str, bytes]:
        sources = tuple((p.name, p.read_bytes()) for p in sorted((root / "src").iterdir()))
        assigned = overrides(spec.model)
        key = ((root / "Flowfile").read_bytes(), (root / PY_MODULE).read_bytes(), sources,
               tuple(sorted(assigned.items())))
        if key not in self.seen:
            fresh = Path(tempfile.mkdtemp(dir=self.scratch))
            shutil.copytree(root / "src", fresh / "src")
            shutil.copytree(root / "tools", fresh / "tools")
            (fresh / ALIAS).symlink_to("src")
            shutil.copy(root / "Flowfile", fresh / "Flowfile")
            result = engine.build(engine.load(fresh / "Flowfile", assigned), jobs=2, cache=False)
            assert result.exit_status == 0
            self.seen[key] = built(fresh)
        return self.seen[key]


def proof_holds(root: Path, spec: Spec) -> bool:
    return fastproof.check(file=None, cwd=str(root), targets=[],
                          overrides=overrides(spec.model)) is not None


def full_build(root: Path, spec: Spec) -> list[str]:
    """The truth: what `bflow` runs with the proof out of the way (it writes a new one)."""
    drop_proofs(root)
    return build_and_count(root, *(f"{k}={v}" for k, v in overrides(spec.model).items()))


def full_build_of_a_copy(root: Path, scratch: Path, spec: Spec) -> list[str]:
    """The truth, leaving the project and its proof (maybe refreshed by the check) as they
    are for the next edit: what `bflow` runs in a copy, where new inodes make it hash every
    file and check it against the records."""
    copy = Path(tempfile.mkdtemp(dir=scratch)) / "copy"
    shutil.copytree(root, copy, symlinks=True)
    drop_proofs(copy)
    return build_and_count(copy, *(f"{k}={v}" for k, v in overrides(spec.model).items()))


def built_and_settled(data: st.DataObject, root: Path) -> Spec:
    """A random project in `root`, built once and left until its directories are still for
    longer than the racy window: else the project cache, and so the proof, is not stored."""
    spec = data.draw(specs())
    (root / "src").mkdir()
    (root / ALIAS).symlink_to("src")
    for source in SOURCES + DEPFILE_SOURCES + GLOBBED + ITEMS:
        (root / source).write_bytes(data.draw(lines))
    (root / "out").mkdir()
    (root / "tools").mkdir()
    (root / PY_MODULE).write_text(PY_FUNCTION)
    (root / "Flowfile").write_text(spec.flowfile())
    build_and_count(root)
    settle(root / "src")
    return spec


def test_a_proof_that_holds_means_a_full_build_runs_nothing() -> None:
    tally: Counter[tuple[str, bool]] = Counter()  # (edit, whether the proof held after it)

    @SETTINGS
    @given(st.data())
    def run(data: st.DataObject) -> None:
        with scratch_project() as (scratch, root):
            spec = built_and_settled(data, root)
            files = sorted(p for p in root.glob("*/*") if p.parent.name in ("src", "out"))
            for path in data.draw(st.lists(st.sampled_from(files), max_size=3, unique=True)):
                future = time.time_ns() + FUTURE_NS  # ready for a racy edit
                os.utime(path, ns=(future, future))
            assert full_build(root, spec) == []
            assert proof_holds(root, spec), "a settled no-op build left no proof that holds"
            clean = CleanBuilds(scratch)
            for _ in range(data.draw(st.integers(3, 7))):
                kind = apply_edit(data.draw, root, spec)
                holds = proof_holds(root, spec)
                # Drawn whether the proof holds or not: it may hold or not as the clock's
                # ticks fell, and a replay of the same choices must draw the same values.
                from_a_copy = data.draw(st.booleans(), label="truth from a copy")
                if holds and from_a_copy:
                    ran = full_build_of_a_copy(root, scratch, spec)
                else:
                    ran = full_build(root, spec)
                assert not holds or ran == [], f"the proof held after {kind}, yet {ran} ran"
                assert built(root) == clean.outputs(root, spec)
                tally[kind, holds] += 1

    run()
    outcomes = {holds for _, holds in tally}
    assert outcomes == {True, False}, f"the proof never {'failed' if True in outcomes else 'held'}"


def test_an_incremental_build_runs_what_a_full_build_runs() -> None:
    """After edits that leave the proof's project and records standing, the fast path builds
    just what the changed files reach (`incremental`). It must run exactly the commands the
    full build runs on the same tree, and leave the same outputs as a clean build."""
    tally: Counter[str] = Counter()

    @SETTINGS
    @given(st.data())
    def run(data: st.DataObject) -> None:
        with scratch_project() as (scratch, root):
            spec = built_and_settled(data, root)
            assert full_build(root, spec) == []
            clean = CleanBuilds(scratch)
            args = [f"{k}={v}" for k, v in overrides(spec.model).items()]
            for _ in range(data.draw(st.integers(2, 5))):
                kind = apply_edit(data.draw, root, spec, kinds=CONTENT_EDITS)
                proof = fastproof.open_proof(file=None, cwd=str(root), targets=[],
                                            overrides=overrides(spec.model))
                changed = proof.changes() if proof is not None else None
                if proof is not None:
                    proof.close()
                twin = Path(tempfile.mkdtemp(dir=scratch)) / "twin"
                shutil.copytree(root, twin, symlinks=True)
                drop_proofs(twin)
                fast = build_and_count(root, *args)
                full = build_and_count(twin, *args)
                assert sorted(fast) == sorted(full), f"after {kind}: {fast} vs {full}"
                assert built(root) == built(twin) == clean.outputs(root, spec)
                way = "incremental" if changed else "no-op" if changed == set() else "full"
                tally[way] += 1

    run()
    assert tally["incremental"], tally
