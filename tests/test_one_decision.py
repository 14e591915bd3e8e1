"""One decision (SPEC §2): `build`, its fast path, `status`, `explain` and `-n` agree, and the
checks made at load hold on every build. Each test is a case where they once disagreed; runs
are counted from the log file the commands append to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Project, bflow_env, run_bflow, settle

from buildflow.fastpath import proof as fastproof



def _proof_holds(project: Project) -> bool:
    return fastproof.check(file=None, cwd=str(project.root), targets=[],
                           overrides={}) is not None


def _stale(project: Project) -> list[str]:
    """The tasks `status` lists, by name."""
    result = project.bflow("status")
    assert result.returncode == 0, result.stderr
    return sorted(line.split(": ", 1)[0] for line in result.stdout.splitlines()
                  if not line.startswith("bflow:"))


def _would_run(project: Project) -> list[str]:
    """The tasks `-n` says would run, by name."""
    result = project.bflow("-n", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    return sorted(e["task"] for e in events if e["event"] == "task_skipped"
                  and e.get("reason", "").startswith("would run"))


DEPFILE_FROM_ANOTHER_TASK = """\
[tasks.gen]
cmd = "cp gen.in gen.h && echo gen >> runs.log"
inputs = ["gen.in"]
outputs = ["gen.h"]

[tasks.use]
cmd = "cat use.c gen.h > use.o && printf 'use.o: gen.h\\\\n' > use.d && echo use >> runs.log"
inputs = ["use.c"]
outputs = ["use.o"]
depfile = "use.d"
"""


@pytest.mark.parametrize("writer", ["first", "last"])
def test_a_depfile_input_written_by_another_task_rebuilds_its_reader(project: Project,
                                                                     writer: str) -> None:
    # `use` knows of gen.h only from its depfile: no edge links it to `gen`, which writes it.
    # Once the depfile names it, where `gen` stands in the Flowfile changes nothing.
    gen, use = DEPFILE_FROM_ANOTHER_TASK.split("\n\n")
    project.flowfile(DEPFILE_FROM_ANOTHER_TASK if writer == "first" else f"{use}\n{gen}\n")
    project.write("gen.in", "one\n")
    project.write("use.c", "use\n")
    if writer == "first":
        assert project.build("-j1") == ["gen", "use"]
    else:  # nothing tells the first build that `use` reads gen.h, as with Make
        assert project.build("gen") == ["gen"]
        assert project.build() == ["use"]
    assert project.build() == []
    assert _proof_holds(project)
    graph = json.loads(project.bflow("graph", "--format", "json").stdout)
    assert graph["edges"] == [{"from": "gen", "to": "use"}]  # as the build orders them
    project.write("gen.in", "two\n")
    assert _stale(project) == ["gen", "use"]
    assert _would_run(project) == ["gen", "use"]
    assert project.build("-j2") == ["gen", "use"]  # through the proof
    assert project.read("use.o") == "use\ntwo\n"
    assert project.build() == []
    assert _stale(project) == []
    project.write("gen.in", "three\n")
    os.remove(project.root / ".bflow" / fastproof.FILE_NAME)  # the full way orders it too
    assert project.build("-j2") == ["gen", "use"]
    assert project.read("use.o") == "use\nthree\n"
    assert project.build() == []


def test_a_task_that_failed_still_waits_for_what_its_last_depfile_named(
        project: Project) -> None:
    # `use` stands first: only its last depfile orders it after `gen`. A failed run drops
    # its record, not that knowledge (as Ninja's deps log keeps a failed edge's deps).
    gen, use = DEPFILE_FROM_ANOTHER_TASK.split("\n\n")
    project.flowfile(f"{use.replace('cat use.c', 'grep -qv FAIL use.c && cat use.c')}\n{gen}\n")
    project.write("gen.in", "one\n")
    project.write("use.c", "use\n")
    assert project.build("gen") == ["gen"]
    assert project.build() == ["use"]
    project.write("use.c", "FAIL\n")
    project.write("gen.in", "two\n")
    assert project.build("-j1", status=1) == ["gen"]  # and `use` failed after it
    project.write("use.c", "use\n")
    project.write("gen.in", "three\n")
    assert _stale(project) == ["gen", "use"]
    assert _would_run(project) == ["gen", "use"]
    assert project.build("-j1") == ["gen", "use"]
    assert project.read("use.o") == "use\nthree\n"
    assert project.build() == []



@pytest.mark.parametrize("entered", ["by its path", "through a symlink"])
def test_a_depfile_naming_a_generated_header_by_an_absolute_path_orders_its_reader(
        tmp_path: Path, entered: str) -> None:
    """Compilers given `-I$PWD/inc` (and CMake's) write absolute paths, and a shell entered
    through a symlink spells the root as the link: either names the file `gen` writes, so
    `use` still waits for `gen` and is rebuilt with it. It read the old header while `gen`
    wrote the new one, a build too early."""
    project = Project(tmp_path / "real")
    project.flowfile("""
        [tasks.use]
        cmd = 'cat use.c gen.h > use.o && printf "use.o: %s/gen.h\\n" "$PWD" > use.d && echo use >> runs.log'
        inputs = ["use.c"]
        outputs = ["use.o"]
        depfile = "use.d"

        [tasks.gen]
        cmd = "sleep 0.2 && cp gen.in gen.h && echo gen >> runs.log"
        inputs = ["gen.in"]
        outputs = ["gen.h"]
        """)
    entry = project.root
    if entered == "through a symlink":
        entry = tmp_path / "link"
        entry.symlink_to(project.root)

    def build(*args: str) -> list[str]:
        before = len(project.runs())
        result = run_bflow(*args, cwd=entry, env={"PWD": str(entry)})
        assert result.returncode == 0, result.stdout + result.stderr
        return project.runs()[before:]

    project.write("gen.in", "one\n")
    project.write("use.c", "use\n")
    assert build("gen") == ["gen"]
    assert build() == ["use"]
    assert str(entry) in project.read("use.d")
    assert build() == []
    project.write("gen.in", "two\n")
    assert build("-j2") == ["gen", "use"]
    assert project.read("use.o") == "use\ntwo\n"
    assert build() == []


# A task that reads inc/x.h, says so (read.flag), and waits for `go` before it writes the
# depfile naming the header: a test changes the header in between.
PAUSED_READER = """
[tasks.cc]
cmd = "cat src/a.c inc/x.h > {output}; : > read.flag; while [ ! -e go ]; do sleep 0.01; done; echo '{output}: inc/x.h' > {depfile}; echo cc >> runs.log"
inputs = ["src/a.c"]
outputs = ["out/a.o"]
depfile = "out/a.d"
"""


@pytest.mark.parametrize("how", ["an older file renamed onto it", "rewritten and dated back"])
def test_a_depfile_input_replaced_during_the_run_by_an_older_dated_file_is_a_change(
        project: Project, how: str) -> None:
    """The header the command had read was replaced while it ran by a file dated before the
    run (`mv prepared.h x.h`, `cp -p`, `tar x`): recorded with its new content, the task was
    up to date on the old one for every build after."""
    project.flowfile(PAUSED_READER)
    project.write("src/a.c", "a\n")
    project.write("inc/x.h", "one\n")
    project.write("go", "")
    assert project.build() == ["cc"]  # the depfile names inc/x.h from now on
    (project.root / "read.flag").unlink()
    project.write("prepared.h", "two\n")  # before the next build starts
    os.utime(project.root / "prepared.h", (1_600_000_000, 1_600_000_000))
    (project.root / "go").unlink()
    project.write("src/a.c", "a2\n")
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"],
                               cwd=project.root, env=bflow_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    flag = project.root / "read.flag"
    deadline = time.monotonic() + 60
    while not flag.exists():  # the command has read the header
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    if how == "an older file renamed onto it":
        os.replace(project.root / "prepared.h", project.root / "inc" / "x.h")
    else:
        project.write("inc/x.h", "two\n")
        os.utime(project.root / "inc" / "x.h", (1_600_000_000, 1_600_000_000))
    project.write("go", "")
    assert process.wait(60) == 0
    assert project.read("out/a.o") == "a2\none\n"  # what the command read
    assert project.build() == ["cc"] and project.read("out/a.o") == "a2\ntwo\n"
    assert project.build() == []


def test_a_depfile_input_read_through_a_link_retargeted_since_is_a_change(
        project: Project) -> None:
    """`incl/h.h` with `incl -> A` was recorded as `A/h.h` alone: `ln -sfn B incl` changed
    what the command reads there, and the task stayed up to date on A's header."""
    project.write("A/h.h", "from A\n")
    project.write("B/h.h", "from B\n")
    (project.root / "incl").symlink_to("A")
    project.flowfile("""
        [tasks.use]
        cmd = 'cat incl/h.h > use.o && echo "use.o: incl/h.h" > use.d && echo use >> runs.log'
        outputs = ["use.o"]
        depfile = "use.d"
        """)
    assert project.build() == ["use"]
    assert project.build() == []
    (project.root / "incl").unlink()
    (project.root / "incl").symlink_to("B")
    assert _would_run(project) == ["use"]
    assert project.build() == ["use"] and project.read("use.o") == "from B\n"
    assert project.build() == []


@pytest.mark.parametrize("spelled", ["incl/gen.h", "l/../inc/gen.h"])
def test_a_depfile_naming_a_generated_header_through_a_symlinked_directory_orders_its_reader(
        project: Project, spelled: str) -> None:
    """`-Iincl` with `incl -> inc` names `inc/gen.h`, which `gen` writes, so `use` waits for
    it: it ran beside `gen`, on the old header. A `..` climbs from where a link before it
    leads (`l -> lib/real`, so `l/../inc` is `lib/inc`), as the compiler's open did, where
    bflow climbed the text and watched another file."""
    project.write("lib/real/.keep", "")
    (project.root / "incl").symlink_to("inc")
    (project.root / "l").symlink_to("lib/real")
    header = "inc/gen.h" if spelled.startswith("incl") else "lib/inc/gen.h"
    project.write("inc/gen.h", "decoy\n")
    project.flowfile(f"""
        [tasks.use]
        cmd = 'cat use.c {spelled} > use.o && echo "use.o: {spelled}" > use.d && echo use >> runs.log'
        inputs = ["use.c"]
        outputs = ["use.o"]
        depfile = "use.d"
        [tasks.gen]
        cmd = "sleep 0.2 && cp gen.in {header} && echo gen >> runs.log"
        inputs = ["gen.in"]
        outputs = ["{header}"]
        """)
    project.write("gen.in", "one\n")
    project.write("use.c", "use\n")
    assert project.build("gen") == ["gen"]
    assert project.build() == ["use"]
    assert project.build() == []
    project.write("gen.in", "two\n")
    assert _would_run(project) == ["gen", "use"]
    assert project.build("-j2") == ["gen", "use"]
    assert project.read("use.o") == "use\ntwo\n"
    assert project.build() == []
    if header != "inc/gen.h":
        project.write("inc/gen.h", "another decoy\n")
        assert project.build() == []

OUT_OF_BUILD = """\
[tasks.copy]
cmd = "cp in.txt build/out.txt && echo copy >> runs.log"
inputs = ["in.txt"]
outputs = ["build/out.txt"]
"""


@pytest.mark.parametrize("caches", ["kept", "deleted"])
def test_an_output_directory_turned_into_a_link_out_of_the_root_stops_every_build(
        tmp_path: Path, caches: str) -> None:
    project = Project(tmp_path / "root")
    project.flowfile(OUT_OF_BUILD)
    project.write("in.txt", "x\n")
    settle(project.root / "in.txt")
    assert project.build() == ["copy"]
    assert project.build() == []
    assert _proof_holds(project)
    outside = tmp_path / "outside"
    outside.mkdir()
    (project.root / "build" / "out.txt").unlink()
    (project.root / "build").rmdir()
    (project.root / "build").symlink_to(outside)
    if caches == "deleted":
        for name in ("uptodate", "uptodate.project", "flowcache"):
            (project.root / ".bflow" / name).unlink()
    result = project.bflow()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "build/out.txt" in result.stderr and "symlink" in result.stderr
    assert list(outside.iterdir()) == []
    assert project.bflow("status").returncode == 2


DANGLING = """\
[tasks.copy]
cmd = "cat {inputs} > out.txt && echo copy >> runs.log"
inputs = ["in.txt", "src/a.txt", "src/*.c"]
outputs = ["out.txt"]
"""


@pytest.mark.parametrize("path", ["in.txt", "src/a.txt"])
def test_an_input_replaced_by_a_dangling_link_is_the_load_error(project: Project,
                                                               path: str) -> None:
    project.flowfile(DANGLING)
    project.write("in.txt", "in\n")
    project.write("src/a.txt", "a\n")
    project.write("src/b.c", "b\n")
    settle(project.root / "in.txt", project.root / "src", project.root / "src" / "a.txt")
    assert project.build() == ["copy"]
    assert project.build() == []
    assert _proof_holds(project)
    (project.root / path).unlink()
    (project.root / path).symlink_to(project.root / "nowhere")
    result = project.bflow()
    assert result.returncode == 2, result.stdout + result.stderr
    assert path in result.stderr and "does not exist" in result.stderr
    assert project.runs() == ["copy"]


TWO_LONE_INPUTS = """\
[tasks.a]
cmd = "cat a.txt > a.out && echo a >> runs.log"
inputs = ["a.txt"]
outputs = ["a.out"]

[tasks.b]
cmd = "cat b.txt > b.out && echo b >> runs.log"
inputs = ["b.txt"]
outputs = ["b.out"]
"""


@pytest.mark.parametrize("replaced", ["a.txt", "b.txt"])
@pytest.mark.parametrize("by", ["directory", "dangling link", "nothing"])
def test_a_lone_input_that_is_no_file_now_is_the_load_error_whatever_the_target(
        project: Project, replaced: str, by: str) -> None:
    """The proof of `bflow a` stats a.txt with a's outputs, and checks b.txt (an input of a
    task outside the target) on its own: either way a fresh load's error wins."""
    project.flowfile(TWO_LONE_INPUTS)
    project.write("a.txt", "a\n")
    project.write("b.txt", "b\n")
    settle(project.root / "a.txt", project.root / "b.txt")
    assert project.build("a") == ["a"]
    assert project.build("a") == []
    target = project.root / replaced
    target.unlink()
    if by == "directory":
        target.mkdir()
    elif by == "dangling link":
        target.symlink_to(project.root / "nowhere")
    result = project.bflow("a")
    assert result.returncode == 2, result.stdout + result.stderr
    assert replaced in result.stderr
    assert project.runs() == ["a"]


def test_a_state_log_rewritten_with_the_same_size_and_inode_voids_the_proof(
        project: Project) -> None:
    from buildflow.state import State

    project.flowfile('[tasks.copy]\ncmd = "cp in.txt out.txt && echo copy >> runs.log"\n'
                     'inputs = ["in.txt"]\noutputs = ["out.txt"]\n')
    project.write("in.txt", "x\n")
    settle(project.root / "in.txt")
    assert project.build() == ["copy"]
    settle(project.root / "out.txt")
    (project.root / ".bflow" / fastproof.FILE_NAME).unlink()
    assert project.build() == []  # the full way keeps out.txt's hash, now its stat is trusted
    log = project.root / ".bflow" / "state"
    State(log).load().compact()  # a log of one snapshot, as a long one is rewritten
    snapshot = log.stat().st_size
    assert project.build() == []
    assert _proof_holds(project)
    assert log.stat().st_size == snapshot
    # Another snapshot of the same length: the record says the task ran another command.
    state = State(log).load()
    record = state.tasks["copy"]
    commands = tuple(c.replace("cp ", "ln ") for c in record.action[0])
    state.tasks["copy"] = record._replace(action=(commands, *record.action[1:]))
    twin = project.root / "twin-state"
    state.path = str(twin)
    state.compact()
    before = log.stat()
    assert twin.stat().st_size == before.st_size
    with open(log, "r+b") as handle:  # in place: the same inode
        handle.write(twin.read_bytes())
    os.utime(log, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (log.stat().st_ino, log.stat().st_size) == (before.st_ino, before.st_size)
    assert _stale(project) == ["copy"]
    assert project.build() == ["copy"]
    assert project.build() == []


def test_a_depfile_input_written_just_before_its_task_starts_does_not_run_it_twice(
        project: Project) -> None:
    # `hdr` writes a.h (undeclared) a few ms before `cc` starts: before the run, not during it.
    project.flowfile('[tasks.hdr]\ncmd = "cp h.in a.h && sleep 0.02 && echo hdr >> runs.log"\n'
                     'inputs = ["h.in"]\n\n'
                     '[tasks.cc]\ncmd = "cat a.c a.h > a.o && printf \'a.o: a.h\\\\n\' > a.d'
                     ' && echo cc >> runs.log"\ninputs = ["a.c"]\noutputs = ["a.o"]\n'
                     'depfile = "a.d"\ndeps = ["hdr"]\n')
    project.write("a.c", "c\n")
    project.write("h.in", "h\n")
    assert project.build() == ["hdr", "cc"]  # at once, as a script or a CI step runs it
    assert project.build() == []
    project.write("a.h", "h1\n")  # edited, and built at once
    assert project.build() == ["cc"]
    assert project.build() == []
    project.write("a.h", "h2\n")
    assert project.build() == ["cc"]
    assert project.read("a.o") == "c\nh2\n"
    assert project.build() == []


GLOBBED = """\
[tasks.join]
cmd = "cat {inputs} > all.txt && echo join >> runs.log"
inputs = ["src/*.txt"]
outputs = ["all.txt"]
"""


def test_a_file_added_under_a_glob_with_the_directory_mtime_set_back_is_seen(
        project: Project) -> None:
    project.flowfile(GLOBBED)
    project.write("src/a.txt", "a\n")
    settle(project.root / "src", project.root / "src" / "a.txt")
    assert project.build() == ["join"]
    assert project.build() == []
    assert _proof_holds(project)
    src = project.root / "src"
    before = src.stat()
    project.write("src/b.txt", "b\n")  # as `tar x` or `rsync -a` leave it
    os.utime(project.root / "src" / "b.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    os.utime(src, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert _stale(project) == ["join"]
    assert project.build() == ["join"]
    assert project.read("all.txt") == "a\nb\n"
    assert project.build() == []


FOREACH_AND_AGGREGATE = """\
[tasks.up]
foreach = "src/*.txt"
cmd = "tr a-z A-Z < {item} > {output} && echo up >> runs.log"
outputs = ["out/{stem}.up"]

[tasks.all]
cmd = "cat {inputs} > all.txt && echo all >> runs.log"
inputs = ["out/*.up"]
outputs = ["all.txt"]
"""


def test_a_deleted_foreach_source_is_stale_for_status_explain_and_dry_run(
        project: Project) -> None:
    project.flowfile(FOREACH_AND_AGGREGATE)
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    assert project.build() == ["up", "up", "all"]
    assert project.build() == []
    (project.root / "src" / "b.txt").unlink()
    assert _stale(project) == ["all"]
    assert _would_run(project) == ["all"]
    assert project.bflow("status", "--check").returncode == 1
    explained = project.bflow("explain", "all")
    assert "stale" in explained.stdout and "out/b.up" in explained.stdout, explained.stdout
    assert (project.root / "out" / "b.up").exists()  # asking removed nothing
    assert project.build() == ["all"]
    assert project.read("all.txt") == "A\n"
    assert project.bflow("status", "--check").returncode == 0


def test_a_depfile_naming_an_output_the_build_removes_first_is_stale_for_status_and_dry_run(
        project: Project) -> None:
    # `g` dropped from the Flowfile: the build removes out/g, then runs `d`, whose depfile
    # named it; status and -n, which take that file as gone for globs only, said up to date
    project.write("g.src", "g1\n")
    project.write("list", "out/g\n")
    project.flowfile("""
        [tasks.d]
        cmd = "echo d >> runs.log; cat $(cat {input}) > {output} && echo \\"{output}: $(cat {input})\\" > {depfile}"
        inputs = ["list"]
        outputs = ["out/d"]
        depfile = "out/d.d"
        [tasks.g]
        cmd = "cp {input} {output}"
        inputs = ["g.src"]
        outputs = ["out/g"]
        """)
    assert project.bflow("g").returncode == 0
    assert project.build() == ["d"]
    project.flowfile(project.read("Flowfile").split("[tasks.g]")[0])
    assert _stale(project) == ["d"]
    assert _would_run(project) == ["d"]
    assert (project.root / "out" / "g").exists()  # asking removed nothing
    assert project.build(status=1) == ["d"]  # out/g is gone: its `cat` fails


def test_under_verify_a_project_cache_that_lies_stops_the_build_naming_both(
        project: Project) -> None:
    from buildflow.frames import decode_at, encode, size_at

    project.flowfile(OUT_OF_BUILD)
    project.write("in.txt", "x\n")
    assert project.build() == ["copy"]
    assert project.build() == []
    cache = project.root / ".bflow" / "flowcache"
    entry = cache.read_bytes()
    head = size_at(entry, 0)  # the key, the basis and the project; its tasks follow
    tasks = decode_at(entry, head)
    tasks[0] = (*tasks[0][:2], ("cp in.txt build/out.txt && echo forged >> runs.log",),
                *tasks[0][3:])
    cache.write_bytes(entry[:head] + encode(tasks))
    (project.root / ".bflow" / fastproof.FILE_NAME).unlink()
    result = project.bflow("status", env={"BFLOW_VERIFY": "1"})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "BFLOW_VERIFY" in result.stderr and "copy" in result.stderr
    assert project.runs() == ["copy"]


def test_under_verify_builds_of_every_kind_agree_with_the_full_decision(
        project: Project) -> None:
    verify = {"BFLOW_VERIFY": "1"}
    project.flowfile(FOREACH_AND_AGGREGATE)
    for name in "abc":
        project.write(f"src/{name}.txt", f"{name}\n")
    settle(project.root / "src")
    assert sorted(project.build(env=verify)) == ["all", "up", "up", "up"]
    assert project.build(env=verify) == []  # the full way, leaving the proof
    assert project.build(env=verify) == []  # the proof: nothing to do
    project.write("src/b.txt", "B!\n")
    assert project.build(env=verify) == ["up", "all"]  # the proof: just what b reaches
    assert project.read("all.txt") == "A\nB!\nC\n"
    assert project.build(env=verify) == []
