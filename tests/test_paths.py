"""Awkward paths: shell metacharacters, newlines and non-UTF-8 bytes in file names, symlinked
inputs, inputs outside the root, outputs that would leave it, and task names that are not safe
file names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import Project, run_bflow

WEIRD = ["a b.txt", "q'uote\".txt", "dollar$HOME.txt", "star*.txt", "new\nline.txt",
         "semi;touch pwned.txt", "-dash.txt"]


def test_weird_file_names_build_and_stay_up_to_date(project: Project) -> None:
    project.flowfile("""
    [tasks.copy]
    foreach = "src/*.txt"
    cmd = "echo ran >> runs.log && cp {item} {output}"
    outputs = ["build/{name}.out"]

    [tasks.join]
    cmd = "cat {inputs} > {output}"
    inputs = ["build/*.out"]
    outputs = ["all.out"]
    """)
    sources = [os.fsencode(name) for name in WEIRD] + [b"bad\xff\xfe.txt"]
    (project.root / "src").mkdir()
    for name in sources:
        (project.root / "src").joinpath(os.fsdecode(name)).write_bytes(name + b"\n")
    first = project.bflow("--json")
    assert first.returncode == 0, first.stderr
    events = [json.loads(line) for line in first.stdout.splitlines()]
    assert events[-1]["event"] == "build_finished" and events[-1]["exit_status"] == 0
    assert len(project.runs()) == len(sources)
    for name in sources:
        out = project.root / "build" / os.fsdecode(name + b".out")
        assert out.read_bytes() == name + b"\n"
    assert not (project.root / "pwned.txt").exists()  # quoted, never run as shell syntax
    again = project.bflow("--plain")
    assert again.returncode == 0 and len(project.runs()) == len(sources)
    assert "Traceback" not in again.stderr
    # The non-UTF-8 task's name is printable and its saved output readable by name.
    log = project.bflow("log", os.fsdecode(b"copy:src/bad\xff\xfe.txt"))
    assert log.returncode == 0


LINK_COPY = """
[tasks.copy]
cmd = "echo ran >> runs.log && cat {input} > {output}"
inputs = ["link.txt"]
outputs = ["out.txt"]
"""


def test_symlinked_input_hashes_its_target(project: Project) -> None:
    project.flowfile(LINK_COPY)
    project.write("one.txt", "one\n")
    project.write("same.txt", "one\n")
    (project.root / "link.txt").symlink_to("one.txt")
    project.bflow()
    project.write("one.txt", "changed\n")
    project.bflow()
    assert project.read("out.txt") == "changed\n" and len(project.runs()) == 2
    (project.root / "link.txt").unlink()
    (project.root / "link.txt").symlink_to("same.txt")
    project.write("same.txt", "changed\n")
    project.bflow()
    assert len(project.runs()) == 2  # another link, same content: up to date


def test_dangling_symlink_input_is_a_clear_error(project: Project) -> None:
    project.flowfile(LINK_COPY)
    (project.root / "link.txt").symlink_to("nowhere.txt")
    result = project.bflow()
    assert result.returncode == 2
    assert "tasks.copy.inputs[0]" in result.stderr and "nowhere.txt" in result.stderr
    assert "does not exist" in result.stderr and project.runs() == []



def test_a_dangling_symlink_a_glob_matches_is_an_input_as_it_is(project: Project) -> None:
    """An installed tree's `lib/libx.so -> /usr/lib/libx.so.1` leads nowhere until it is
    installed; `tar` packs it as a link. It was hashed as missing, so its reader ran at every
    build; its content is now where it leads."""
    project.flowfile('[tasks.pack]\ncmd = "tar -cf pkg.tar stage && echo pack >> runs.log"\n'
                     'inputs = ["stage/**"]\noutputs = ["pkg.tar"]\n')
    project.write("stage/lib/libx.so.1", "x\n")
    (project.root / "stage/lib/libx.so").symlink_to("/nowhere/libx.so.1")
    assert project.build() == ["pack"]
    assert project.build() == []
    (project.root / "stage/lib/libx.so").unlink()
    (project.root / "stage/lib/libx.so").symlink_to("/nowhere/libx.so.2")
    assert project.build() == ["pack"]
    assert project.build() == []
    (project.root / "stage/lib/libx.so").unlink()  # a link that leads somewhere, then nowhere
    (project.root / "stage/lib/libx.so").symlink_to("libx.so.1")
    assert project.build() == ["pack"]
    (project.root / "stage/lib/libx.so.1").unlink()  # its stat entry said it changed, always
    assert project.build() == ["pack"]
    assert project.build() == []


def test_unsafe_task_names_get_their_own_logs(project: Project) -> None:
    project.flowfile("""
    [tasks."x/../../../../../escape"]
    cmd = "echo first"

    [tasks."x/_/_/_/_/_/escape"]
    cmd = "echo second"

    [tasks."x_.._escape"]
    cmd = "echo third"
    """)
    assert project.bflow().returncode == 0
    logs = project.root / ".bflow" / "logs"
    assert len(list(logs.iterdir())) == 3
    created = {p for p in project.root.rglob("*") if p.is_file()}
    assert created - set(logs.iterdir()) == {project.root / "Flowfile",
                                             project.root / ".bflow" / ".gitignore",
                                             project.root / ".bflow" / "state",
                                             project.root / ".bflow" / "lock",
                                             project.root / ".bflow" / "flowcache",
                                             project.root / ".bflow" / "history"}
    for ancestor in project.root.parents[:4]:
        assert not list(ancestor.glob("escape*"))
    for name, text in [("x/../../../../../escape", "first"), ("x/_/_/_/_/_/escape", "second"),
                       ("x_.._escape", "third")]:
        result = project.bflow("log", name)
        assert result.returncode == 0 and result.stdout == f"{text}\n"


CWD_FLOW = """
    [tasks.t]
    cwd = "work"
    cmd = "echo t >> {RUNS}; cat {input} ../h.h > o.txt; echo 'o.txt: ../h.h' > t.d"
    inputs = ["a.txt"]
    outputs = ["work/o.txt"]
    depfile = "work/t.d"
    """


def _symlinked_cwd_project(project: Project) -> None:
    """The Flowfile above, and what the command's own `..` reaches from `lib/real` beside
    the files that rebasing by the text of `work` would read instead."""
    project.flowfile(CWD_FLOW + f'    [vars]\n    RUNS = "{project.root / "runs.log"}"\n')
    (project.root / "lib" / "real").mkdir(parents=True)
    project.write("a.txt", "root\n")
    project.write("lib/a.txt", "decoy\n")  # `../a.txt` from lib/real
    project.write("lib/h.h", "h1\n")  # `../h.h` from lib/real
    project.write("h.h", "not read\n")  # `../h.h` from a directory `work`


def test_a_symlinked_cwd_rebases_paths_from_where_it_leads(project: Project) -> None:
    _symlinked_cwd_project(project)
    (project.root / "work").symlink_to("lib/real")
    assert project.bflow().returncode == 0
    assert project.read("work/o.txt") == "root\nh1\n"
    project.write("a.txt", "edited\n")
    assert project.bflow().returncode == 0
    assert project.read("work/o.txt") == "edited\nh1\n"
    project.write("lib/h.h", "h2\n")  # named by the depfile, read through the link
    assert project.bflow().returncode == 0
    assert project.read("work/o.txt") == "edited\nh2\n"
    assert project.bflow().returncode == 0
    assert project.runs() == ["t", "t", "t"]


def test_a_cwd_that_becomes_a_symlink_is_seen_by_the_caches(project: Project) -> None:
    _symlinked_cwd_project(project)
    (project.root / "work").mkdir()
    assert project.bflow().returncode == 0
    assert project.read("work/o.txt") == "root\nnot read\n"
    assert project.bflow().returncode == 0  # a no-op: the project cached, a proof left
    for name in ("o.txt", "t.d"):  # the outputs as they were, now through a link
        (project.root / "work" / name).rename(project.root / "lib" / "real" / name)
    (project.root / "work").rmdir()
    (project.root / "work").symlink_to("lib/real")
    assert project.bflow().returncode == 0
    assert project.read("work/o.txt") == "root\nh1\n"  # ../../a.txt and ../h.h from lib/real
    assert project.runs() == ["t", "t"]


def test_paths_outside_the_root_beside_a_directory_output(project: Project) -> None:
    # an input, a depfile's header (as gcc -MD names /usr/include/...) or a target outside
    # the root: with a directory output in the project, bflow spun forever looking for the
    # task whose directory holds it
    header = project.root.parent / "system.h"
    header.write_text("#define X 1\n")
    project.flowfile(f"""
        [tasks.site]
        cmd = "echo site >> runs.log && mkdir -p site && echo hi > site/index.html"
        outputs = ["site/"]
        [tasks.cc]
        cmd = "echo cc >> runs.log && cat {header} > {{output}} && echo '{{output}}: {header}' > {{depfile}}"
        outputs = ["o.txt"]
        depfile = "o.d"
        """)
    assert sorted(project.build()) == ["cc", "site"]
    assert project.build() == []
    assert project.bflow("status", timeout=20).returncode == 0
    header.write_text("#define X 2\n")
    assert project.build() == ["cc"]
    project.flowfile(project.read("Flowfile") + f'[tasks.read]\ncmd = "echo read >> runs.log"\n'
                                                f'inputs = ["{header}"]\n')
    assert project.build() == ["read"]
    unknown = project.bflow(str(header), timeout=20)
    assert unknown.returncode == 2 and "unknown target" in unknown.stderr


def test_an_output_path_is_taken_from_where_the_user_stands_first(project: Project) -> None:
    # from sub/, ./out/x.txt named the root's out/x.txt: clean deleted the wrong file
    project.flowfile("""
        [tasks.root_out]
        cmd = "echo root_out >> runs.log && mkdir -p out && echo r > out/x.txt"
        outputs = ["out/x.txt"]
        [tasks.sub_out]
        cmd = "echo sub_out >> runs.log && mkdir -p sub/out && echo s > sub/out/x.txt"
        outputs = ["sub/out/x.txt"]
        """)
    assert sorted(project.build()) == ["root_out", "sub_out"]
    sub = project.root / "sub"
    assert "would run sub_out: " in run_bflow("-n", "-B", "./out/x.txt", cwd=sub).stdout
    assert run_bflow("clean", "./out/x.txt", cwd=sub).returncode == 0
    assert not (sub / "out/x.txt").exists() and project.read("out/x.txt") == "r\n"
    assert "would run root_out: " in run_bflow("-n", "-B", "../out/x.txt", cwd=sub).stdout


def test_an_output_path_through_a_symlinked_directory_is_a_target(project: Project,
                                                                  tmp_path: Path) -> None:
    # the user in the project through a link ($PWD/out/a.txt), or naming it through one:
    # "unknown target", since the root is the real path
    project.flowfile('[tasks.gen]\ncmd = "echo gen >> runs.log && mkdir -p out && echo hi > '
                     'out/a.txt"\noutputs = ["out/a.txt"]\n')
    link = tmp_path / "link"
    link.symlink_to(project.root)
    for target, cwd in ((str(link / "out/a.txt"), link), ("link/out/a.txt", tmp_path)):
        result = run_bflow("-f", str(link / "Flowfile"), "-n", target, cwd=cwd)
        assert result.returncode == 0 and "would run gen: " in result.stdout, result.stderr
