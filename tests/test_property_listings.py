"""The project cache moved to the listings a build left serves only the project a fresh load
would give: after any sequence of edits, a build with the caches runs exactly the commands a
build that loads the Flowfile in full runs, and leaves the same files.

A build that writes outputs where a glob looks (a `foreach` over `src/**/*.c` writing
`obj/{dir}/{stem}.o`, a link step reading `obj/**/*.o`) changes the listings the project was
loaded from; when all a globbed directory gained or lost are files some task declares, or
files no glob matches and no task names, the entry moves to the listings the build left
(`Basis.moved`), and the next build is served from it or from the proof. A wrong move serves a stale project: a glob that should now match a
file does not, and a build does nothing, or runs with the wrong inputs. So the projects here
write where their globs look: a foreach (flat or nested outputs), sometimes a second one over
its outputs, link steps globbing them (`obj/*.o`, `obj/**/*.o`, `obj/*`, `obj/**`), commands
that also leave an undeclared by-product or a depfile in a globbed directory. Between builds:
sources added, removed or renamed (in new directories too), files and dangling links written
by hand where the globs look (in new directories too) and removed again, outputs deleted,
directories removed, sources edited, or nothing.

The truth is a twin of the project, edited the same way, whose project cache and proofs are
deleted before each of its builds (and before a `bflow -n`, compared too before some builds).
After each build, the project the cache would serve must also equal a fresh load's, as
BFLOW_VERIFY=1 (on in half the examples) checks at each load the cache serves. The
directories are left to settle before most builds (else neither cache is stored: the
racy-timestamp rule), and the run must see entries moved and then served, so the property
cannot hold vacuously.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conftest import run_bflow, settle
from hypothesis import given, settings
from hypothesis import strategies as st
from test_property import EXAMPLES, PROPERTY_SETTINGS, scratch_project

from buildflow.errors import EXIT_BUG, FatalError
from buildflow.fastpath import proof as fastproof
from buildflow.fastpath import projectcache
from buildflow.fastpath.formats import PROJECT_CACHE_FILE, PROOF_FILE
from buildflow.project import load

# Each example builds twice per step and waits out the racy window before most builds: about
# twice the cost of one of test_property's examples, so half as many (22: about 15 s).
SETTINGS = settings(PROPERTY_SETTINGS, max_examples=max(1, EXAMPLES // 2))

LEVEL_ONE = [  # the foreach over the sources, and where it writes
    ("src/*.c", "obj/{stem}.o"),
    ("src/**/*.c", "obj/{dir}/{stem}.o"),
    ("src/**/*.c", "obj/{relstem}.o"),
]
# Written by the foreach's command, declared by none; "obj/tmp/" an empty directory.
BY_PRODUCTS = ["obj/by-{stem}.txt", "obj/by/{stem}.o", "inc/{stem}.h", "obj/tmp/"]
LEVEL_TWO = ["{dir}/{stem}.s", "gen/{relstem}.s"]  # a foreach over the first one's outputs
LEVEL_TWO_ITEMS = ["obj/*.o", "obj/**/*.o"]
GLOBS = ["obj/*.o", "obj/**/*.o", "obj/*", "obj/**", "inc/*.h"]
GLOBS_TWO = ["gen/**/*.s", "obj/**/*.s"]
STEMS = ["a", "b", "c"]
SOURCE_DIRS = ["src", "src/sub", "src/net", "src/sub/deep"]
HAND_DIRS = ["obj", "obj/new", "obj/new/deeper", "obj/src", "obj/src/sub", "obj/by", "obj/sub",
             "gen", "gen/new", "inc"]
HAND_NAMES = ["x.o", "a.o", "b.s", "note.txt", ".hid.o", "y.h"]
GLOBBED = ("src", "obj", "gen", "inc")  # the trees the globs look in
BUILT = ("obj", "gen", "inc", "out")
LINES = ["one\n", "two\n", "3\n"]
# Edits that change a listing, and (edit, nothing) those that leave a moved entry to be used.
STEPS = ("add", "add", "remove", "rename", "edit", "edit", "by_hand", "by_hand", "link", "mkdir",
         "unhand", "delete_output", "remove_dir", "nothing", "nothing", "nothing")
TARGETS = [[], [], [], [], ["link0"], ["compile"]]


@dataclass
class Layout:
    """The Flowfile: a foreach compiling the sources, maybe a second foreach over its outputs,
    and plain tasks globbing them."""

    level_one: tuple[str, str]
    by_product: str | None
    depfile: bool
    level_two: tuple[str, str] | None
    links: list[list[str]]

    def flowfile(self) -> str:
        foreach, output = self.level_one
        cmd = "echo {task} >> runs.log && cat {item} > {output}"
        if self.depfile:
            cmd += " && printf '%s: %s\\n' {output} {item} > {depfile}"
        path = self.by_product
        if path and path.endswith("/"):
            cmd += f" && mkdir -p {path}"
        elif path:  # written once: no reader that does not wait for it sees it change
            cmd += f" && mkdir -p {os.path.dirname(path)} && " \
                   f"(test -e {path} || echo {{stem}} > {path})"
        text = (f'[settings]\nenv = {{ LC_ALL = "C" }}\n\n[tasks.compile]\n'
                f"foreach = {json.dumps(foreach)}\ncmd = {json.dumps(cmd)}\n"
                f"outputs = {json.dumps([output])}\n")
        if self.depfile:
            text += f"depfile = {json.dumps(output.removesuffix('.o') + '.d')}\n"
        if self.level_two:
            items, written = self.level_two
            cmd = "echo {task} >> runs.log && (echo {item}; cat {item}) > {output}"
            text += (f"\n[tasks.second]\nforeach = {json.dumps(items)}\n"
                     f"cmd = {json.dumps(cmd)}\noutputs = {json.dumps([written])}\n")
        for index, globs in enumerate(self.links):
            cmd = f"echo link{index} >> runs.log && echo {{inputs}} > {{output}} && " \
                  "cat {inputs} >> {output}"
            text += (f"\n[tasks.link{index}]\ncmd = {json.dumps(cmd)}\n"
                     f"inputs = {json.dumps(globs)}\noutputs = [\"out/link{index}.txt\"]\n")
        return text


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    level_two = draw(st.none() | st.tuples(st.sampled_from(LEVEL_TWO_ITEMS),
                                           st.sampled_from(LEVEL_TWO)))
    pool = GLOBS + (GLOBS_TWO if level_two else [])
    globs = st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True).map(
        lambda found: found + (["!obj/**/*.d"] if "obj/**" in found else []))
    # A by-product or a depfile where a glob looks keeps the entry from moving: most examples
    # have neither, so entries move and are served often.
    by_product = draw(st.sampled_from([None] * 2 * len(BY_PRODUCTS) + BY_PRODUCTS))
    return Layout(draw(st.sampled_from(LEVEL_ONE)), by_product, draw(st.integers(0, 3)) == 3,
                  level_two, draw(st.lists(globs, min_size=1, max_size=2)))


class Twins:
    """The project and its twin, edited alike; and what was written in them by hand."""

    def __init__(self, root: Path, twin: Path) -> None:
        self.roots = (root, twin)
        self.by_hand: list[str] = []  # files and links written by hand where globs look

    def do(self, action: Callable[[Path], object]) -> None:
        for root in self.roots:
            action(root)

    def write(self, path: str, data: str) -> None:
        def write(root: Path) -> None:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(data)
        self.do(write)

    def existing(self, top: tuple[str, ...], files: bool = True) -> list[str]:
        """The files (or the directories) under the directories `top` of the project."""
        root = self.roots[0]
        found = []
        for name in top:
            for path in sorted((root / name).rglob("*")) if (root / name).is_dir() else ():
                if (path.is_file() or path.is_symlink()) if files else \
                        path.is_dir() and not path.is_symlink():
                    found.append(path.relative_to(root).as_posix())
            if not files and (root / name).is_dir():
                found.append(name)
        return found


source_paths = st.builds("{}/{}.c".format, st.sampled_from(SOURCE_DIRS), st.sampled_from(STEMS))


def apply_step(draw: st.DrawFn, twins: Twins) -> str:
    """Make one random edit in both projects; say what it was."""
    sources = [p for p in twins.existing(("src",)) if p.endswith(".c")]
    kind = draw(st.sampled_from(STEPS))
    if kind in ("remove", "rename", "edit") and not sources:
        kind = "add"
    if kind == "unhand" and not twins.by_hand:
        kind = "by_hand"
    if kind == "delete_output" and not twins.existing(BUILT) or \
            kind == "remove_dir" and not twins.existing(GLOBBED, files=False):
        kind = "nothing"
    if kind in ("add", "edit"):
        path = draw(source_paths) if kind == "add" else draw(st.sampled_from(sources))
        data = "".join(draw(st.lists(st.sampled_from(LINES), min_size=1, max_size=2)))
        twins.write(path, data)
        return f"{kind} {path}: {data!r}"
    if kind == "remove":
        path = draw(st.sampled_from(sources))
        twins.do(lambda root: (root / path).unlink())
        return f"remove {path}"
    if kind == "rename":
        path, new = draw(st.sampled_from(sources)), draw(source_paths)

        def rename(root: Path) -> None:
            (root / new).parent.mkdir(parents=True, exist_ok=True)
            (root / path).rename(root / new)
        twins.do(rename)
        return f"rename {path} {new}"
    if kind == "mkdir":
        path = draw(st.sampled_from(HAND_DIRS)) + "/empty"
        twins.do(lambda root: (root / path).mkdir(parents=True, exist_ok=True))
        return f"mkdir -p {path}"
    if kind in ("by_hand", "link"):
        path = f"{draw(st.sampled_from(HAND_DIRS))}/" + \
            (draw(st.sampled_from(["dead.o", "dead.h"])) if kind == "link"
             else draw(st.sampled_from(HAND_NAMES)))
        if path in twins.by_hand or any(os.path.lexists(root / path) for root in twins.roots):
            kind = "nothing"
        elif kind == "link":
            def link(root: Path) -> None:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).symlink_to("missing")
            twins.do(link)
            twins.by_hand.append(path)
            return f"dangling link {path}"
        else:
            twins.write(path, "by hand\n")
            twins.by_hand.append(path)
            return f"write {path} by hand"
    if kind == "unhand":
        path = draw(st.sampled_from(twins.by_hand))
        twins.by_hand.remove(path)
        twins.do(lambda root: (root / path).unlink(missing_ok=True))
        return f"remove {path}, written by hand"
    if kind == "delete_output":
        path = draw(st.sampled_from(twins.existing(BUILT)))
        twins.do(lambda root: (root / path).unlink())
        return f"delete {path}"
    if kind == "remove_dir":
        path = draw(st.sampled_from(twins.existing(GLOBBED, files=False)))
        twins.do(lambda root: shutil.rmtree(root / path))
        twins.by_hand = [p for p in twins.by_hand if not p.startswith(path + "/")]
        return f"rm -r {path}"
    return "nothing"


def files_of(root: Path) -> dict[str, object]:
    """Every file, link and directory in the project but the caches and the run log."""
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] == ".bflow" or rel == "runs.log":
            continue
        found[rel] = (os.readlink(path),) if path.is_symlink() else \
            None if path.is_dir() else path.read_bytes()
    return found


def names_under_globs(root: Path) -> set[str]:
    return {rel for rel in files_of(root) if rel.split("/")[0] in GLOBBED}


def build(root: Path, targets: list[str], env: dict[str, str]) -> tuple[int, list[str], str]:
    """`bflow -j 2 TARGETS`: its exit status, the commands that ran, counted by their side
    effect (each appends its task's name to runs.log), and what it said on stderr."""
    log = root / "runs.log"
    before = len(log.read_text().split()) if log.exists() else 0
    result = run_bflow("-j", "2", "--plain", *targets, cwd=root, env=env)
    ran = sorted(log.read_text().split()[before:] if log.exists() else [])
    return result.returncode, ran, result.stderr


def dry_run(root: Path, targets: list[str], env: dict[str, str]
            ) -> tuple[int, list[object], str]:
    """`bflow -n --json TARGETS`: its exit status, what it says of each task (whether it would
    run, why, and the commands, with the inputs the globs found), and its stderr."""
    result = run_bflow("-n", "--json", *targets, cwd=root, env=env)
    events = [event for event in map(json.loads, result.stdout.splitlines())
              if event["event"] == "task_skipped"]
    return result.returncode, sorted(events, key=lambda event: event["task"]), result.stderr


def drop_caches(root: Path) -> None:
    """Leave the next build to load the Flowfile in full: no project cache, no proof."""
    for name in (PROJECT_CACHE_FILE, PROOF_FILE):
        for path in (root / ".bflow").glob(name + "*"):
            path.unlink()


def way(root: Path, targets: list[str]) -> str:
    """How the next build in `root` would take its project: by the proof (nothing or a few
    tasks to build), from the project cache, or loading the Flowfile."""
    proof = fastproof.open_proof(file=None, cwd=str(root), targets=targets, overrides={})
    if proof is not None:
        try:
            changed = proof.changes()
        finally:
            proof.close()
        if changed is not None:
            return "incremental" if changed else "proven"
    return "cached" if entry_holds(root) else "loaded"


def entry_holds(root: Path) -> bool:
    return projectcache.cached(str(root / "Flowfile"), {}) is not None


def unlike_a_fresh_load(root: Path) -> str:
    """How the project the cache would serve now differs from a fresh load's ("" when it does
    not, or when no entry holds): the cache's promise, which the builds rely on. Asked where
    bflow runs, since the warnings name the Flowfile from there."""
    here = os.getcwd()
    os.chdir(root)  # (contextlib.chdir is Python 3.11's)
    try:
        cached = projectcache.cached("Flowfile", {})
        if cached is None:
            return ""
        try:
            fresh = projectcache.encode(load("Flowfile"))
        except FatalError as error:
            return f"a fresh load fails: {error}"
    finally:
        os.chdir(here)
    served = projectcache.encode(cached)
    return "; ".join(f"{key}: served {served[key]!r}, loaded {fresh.get(key)!r}"
                     for key in served if served[key] != fresh.get(key))


def settle_trees(root: Path) -> None:
    settle(*(path for name in GLOBBED if (root / name).is_dir()
             for path in [root / name, *(root / name).rglob("*")]
             if path.is_dir() and not path.is_symlink()))


def test_a_moved_project_cache_builds_what_a_full_load_builds() -> None:
    """After each edit, `bflow` (and sometimes `bflow -n` before it) with its caches says and
    runs what it does in the twin without them, and leaves the same files."""
    tally: Counter[str] = Counter()

    @SETTINGS
    @given(st.data())
    def run(data: st.DataObject) -> None:
        with scratch_project() as (scratch, root):
            twin = scratch / "twin"
            twin.mkdir()
            twins = Twins(root, twin)
            layout = data.draw(layouts())
            verify = data.draw(st.booleans(), label="BFLOW_VERIFY")
            env = {"BFLOW_CACHE": "0", "BFLOW_VERIFY": "1" if verify else "0"}
            twins.write("Flowfile", layout.flowfile())
            first = f"src/{data.draw(st.sampled_from(STEMS))}.c"  # an item of every foreach
            for path in dict.fromkeys([first, *data.draw(st.lists(source_paths, max_size=2))]):
                twins.write(path, "one\n")
            steps: list[str] = ["first build"]
            moved_before = False
            moves = 0
            for number in range(data.draw(st.integers(3, 7))):
                if number:
                    steps.append(apply_step(data.draw, twins))
                # The first build is settled: its move (the entry stored after a clean) is
                # the one most builds meet.
                if not number or data.draw(st.sampled_from([True] * 4 + [False]), label="settle"):
                    settle_trees(root)
                targets = data.draw(st.sampled_from(TARGETS), label="targets")
                steps[-1] += f", then bflow {' '.join(targets)}"
                context = "\n".join(steps) + f"\n\n{layout.flowfile()}"
                if data.draw(st.integers(0, 2), label="dry run first") == 0:
                    status, said, stderr = dry_run(root, targets, env)
                    drop_caches(twin)
                    assert status != EXIT_BUG and (status, said) == \
                        dry_run(twin, targets, env)[:2], f"bflow -n: {context}\n{stderr}"
                how = way(root, targets)
                listed = names_under_globs(root)
                status, ran, stderr = build(root, targets, env)
                drop_caches(twin)
                twin_status, twin_ran, _ = build(twin, targets, env)
                context = f"the build took its project {how}: {context}\n{stderr}"
                assert status != EXIT_BUG and (status, ran) == (twin_status, twin_ran), context
                assert files_of(root) == files_of(twin), context
                assert not (unlike := unlike_a_fresh_load(root)), f"{unlike}\nafter {context}"
                tally[how] += 1
                if moved_before and how != "loaded":
                    tally["served after a move"] += 1
                moved_before = how in ("cached", "loaded") and \
                    names_under_globs(root) != listed and entry_holds(root)
                moves += moved_before
            tally["examples"] += 1
            tally["examples with a move"] += bool(moves)

    run()
    assert tally["served after a move"] and \
        tally["examples with a move"] * 5 >= tally["examples"], tally
