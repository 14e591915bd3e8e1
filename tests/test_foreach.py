"""`foreach`: items whose names hold glob characters, the globs that stand for every output an
instance can write (what a glob elsewhere may match once a build has found the instances), and
items found through chains of foreach tasks over each other's outputs."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buildflow import foreach, globbing
from buildflow.flowfile import TaskDecl
from buildflow.fs import LocalFileSystem
from conftest import Project, run_bflow

SEGMENTS = ["src", "sub", "a", "b.c", "x.tar.gz", "noext", "-dash"]
PLACEHOLDERS = ["{item}", "{dir}", "{rel}", "{relstem}", "{name}", "{stem}", "{ext}", "{task}"]
PIECES = st.sampled_from(["out", "o", ".", "-", *PLACEHOLDERS])


@st.composite
def items(draw: st.DrawFn) -> tuple[str, str]:
    """A matched path and the glob that matched it: the path's first directories, then `**/*`."""
    path = draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3))
    fixed = draw(st.integers(0, len(path) - 1))
    return "/".join(path), "/".join([*path[:fixed], "**", "*"])


@st.composite
def templates(draw: st.DrawFn) -> str:
    """An output template: segments of literals and placeholders, maybe a directory's."""
    segments = draw(st.lists(st.lists(PIECES, min_size=1, max_size=3).map("".join),
                             min_size=1, max_size=3))
    return "/".join(segments) + ("/" if draw(st.booleans()) else "")


@st.composite
def readers(draw: st.DrawFn, path: str) -> str:
    """A glob another task could read `path` through: the path with some segments made
    wildcards, or a run of them `**`."""
    shown: list[str] = []
    for segment in path.split("/"):
        choice = draw(st.sampled_from([segment, "*", "*" + segment[-1:], "**"]))
        if not (choice == "**" and shown[-1:] == ["**"]):
            shown.append(choice)
    return "/".join(shown)


@given(st.lists(templates(), min_size=1, max_size=2), items(), st.data())
def test_every_output_an_instance_writes_is_seen_by_its_output_globs(
        outputs: list[str], item: tuple[str, str], data: st.DataObject) -> None:
    # What another task reads, by name or by a glob, is known to come from the instances to
    # come (their foreach is over files a build writes) only if it may overlap these globs.
    decl = TaskDecl("t", ("true",), outputs=tuple(outputs), foreach=(item[1],))
    globs = foreach.output_globs(decl, {})
    written = foreach.output_paths(decl, foreach.instance_values({}, decl, item))
    for template, path in zip(outputs, written):
        if globbing.is_outside(path) or path in ("", "."):
            continue  # refused by the loader
        inside = path + "/f" if template.endswith("/") else path  # a directory's files
        reader = data.draw(st.one_of(st.just(inside), readers(inside)))
        if not globbing.is_glob(reader) or globbing.compile_glob(reader).match(inside):
            assert any(globbing.may_overlap(reader, glob) for glob in globs), \
                (template, item, reader, globs)


def test_an_output_that_climbs_out_of_its_item_is_seen_by_its_output_globs() -> None:
    """`{item}/..` is the item's directory, as many segments up as the item has: found by the
    property test above."""
    decl = TaskDecl("t", ("true",), outputs=("{item}/..",), foreach=("**/*",))
    written = foreach.output_paths(decl, foreach.instance_values({}, decl, ("src/src", "**/*")))
    assert written == ["src"]
    assert any(globbing.may_overlap("src", glob) for glob in foreach.output_globs(decl, {}))


def test_items_are_found_through_a_chain_of_foreach_tasks_written_in_any_order(
        tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    for name in ("a.c", "b.c"):
        (tmp_path / "src" / name).write_text("x")
    to_s = TaskDecl("to_s", ("cc -S",), outputs=("build/{stem}.s",), foreach=("build/*.o",))
    to_o = TaskDecl("to_o", ("cc -c",), outputs=("build/{stem}.o",),
                    foreach=("src/*.c", "!src/b.c"))
    found = foreach.find_items([to_s, to_o], {}, globbing.DiskIndex(LocalFileSystem(str(tmp_path))))
    assert found == {"to_o": [("src/a.c", "src/*.c")], "to_s": [("build/a.o", "build/*.o")]}


def test_a_chain_of_foreach_tasks_matches_each_task_again_only_when_its_sources_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain of n foreach tasks settles in n rounds. Each round matched every task again
    against an index of every output made again for it, and worked out every instance's
    outputs again: time cubic in n (200 stages: 3.3 s, 400: 21 s), then, with one index a
    round, quadratic (400 stages of 5 files: 1.6 s to load). A task is matched again only when
    an output its globs match came or went, or its own items changed: a bounded number of
    times whatever the chain's length."""
    (tmp_path / "s0").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "s0" / f"{name}.txt").write_text("x")
    stages = [TaskDecl(f"t{k}", ("cp",), outputs=(f"s{k + 1}/{{stem}}.txt",),
                       foreach=(f"s{k}/*.txt",)) for k in range(30)]
    matched: list[str] = []
    instances: list[tuple[str, str]] = []
    match_items, instance_values = foreach.match_items, foreach.instance_values

    def matching(decl: TaskDecl, *args: Any) -> list[foreach.Item]:
        matched.append(decl.name)
        return match_items(decl, *args)

    def values(variables: Mapping[str, str], decl: TaskDecl,
               item: foreach.Item | None) -> dict[str, str]:
        instances.append((decl.name, item[0] if item else ""))
        return instance_values(variables, decl, item)

    monkeypatch.setattr(foreach, "match_items", matching)
    monkeypatch.setattr(foreach, "instance_values", values)
    found = foreach.find_items(stages[::-1], {}, globbing.DiskIndex(LocalFileSystem(str(tmp_path))))
    assert found["t29"] == [(f"s29/{name}.txt", "s29/*.txt") for name in ("a", "b", "c")]
    # each: once in the first round, once its sources are declared, once its items changed
    assert max(Counter(matched).values()) == 3
    assert len(instances) == len(set(instances)) == 30 * 3


DIRS = ["a", "b", "c"]
GLOBS = st.sampled_from(["a/*", "b/*", "c/*", "a/*.x", "b/*.y", "**/*.x", "*/*", "c/**",
                         "!a/0.x", "!b/*.y", "!c/1*"])
WRITES = st.sampled_from(["a/{stem}.x", "b/{stem}.y", "b/{name}.y", "c/{stem}", "a/{name}",
                          "c/{stem}.x", "b/{stem}"])


@st.composite
def foreach_graphs(draw: st.DrawFn) -> tuple[list[TaskDecl], list[str]]:
    """Plain and foreach tasks reading and writing three directories, some taking each other's
    outputs (or their own), some with `!` entries or a depfile; and the files on disk."""
    decls = [TaskDecl(f"p{k}", ("true",), outputs=(draw(st.sampled_from(
        ["a/1.x", "b/2.y", "c/3", "a/4"])),)) for k in range(draw(st.integers(0, 2)))]
    for k in range(draw(st.integers(1, 6))):
        decls.append(TaskDecl(
            f"f{k}", ("true",), outputs=tuple(draw(st.lists(WRITES, min_size=1, max_size=2))),
            foreach=tuple(draw(st.lists(GLOBS, min_size=1, max_size=3))),
            depfile="{item}.d" if draw(st.booleans()) else None))
    files = draw(st.lists(st.sampled_from([f"{d}/{n}" for d in DIRS
                                           for n in ("0.x", "1", "2.y", "3.x")]), unique=True))
    return draw(st.permutations(decls)), files


def every_task_every_round(decls: list[TaskDecl], disk: globbing.DiskIndex
                           ) -> dict[str, list[foreach.Item]]:
    """The items as the plain fixpoint finds them: every foreach task matched again each
    round against every output declared, until none changes."""
    looping = [decl for decl in decls if decl.foreach]
    plain: dict[str, str] = {}
    for decl in decls:
        if not decl.foreach:
            for path in foreach.output_paths(decl, foreach.instance_values({}, decl, None)):
                plain.setdefault(path, decl.name)
    found: dict[str, list[foreach.Item]] = {decl.name: [] for decl in looping}
    for _ in range(2 * len(looping) + 2):
        owners = dict(plain)
        for decl in looping:
            for item in found[decl.name]:
                for path in foreach.output_paths(decl, foreach.instance_values({}, decl, item)):
                    owners.setdefault(path, decl.name)
        declared = foreach.Declared(owners)
        again = {decl.name: foreach.match_items(
            decl, {}, disk, declared,
            [d for item in found[decl.name] if (d := foreach.depfile_path(decl, {}, item))])
            for decl in looping}
        if again == found:
            return again
        found = again
    raise foreach.Endless([])


@settings(deadline=None)  # a temporary directory of files per example: the disk's time
@given(foreach_graphs())
def test_items_found_by_matching_again_only_what_changed_are_the_plain_fixpoint_s(
        graph: tuple[list[TaskDecl], list[str]]) -> None:
    decls, files = graph
    with tempfile.TemporaryDirectory() as root:
        for name in files:
            (Path(root) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(root) / name).write_text("x")
        try:
            expected: object = every_task_every_round(
                decls, globbing.DiskIndex(LocalFileSystem(root)))
        except foreach.Endless:
            expected = foreach.Endless
        try:
            found: object = foreach.find_items(decls, {}, globbing.DiskIndex(LocalFileSystem(root)))
        except foreach.Endless:
            found = foreach.Endless
    assert found == expected


def test_an_item_whose_name_holds_glob_characters_is_that_file_alone(project: Project) -> None:
    # `v[1]` is not the glob `v1`, nor `st*r` every `st...r`: each instance reads its own file,
    # and the headers beside it through a glob with its directory in it.
    project.flowfile("""
        [tasks.copy]
        foreach = "src/**/*.txt"
        cmd = "cat {inputs} > {output} && echo {name} >> runs.log"
        inputs = ["{dir}/*.h"]
        outputs = ["out/{name}"]
        """)
    for path in ("src/v[1].txt", "src/st*r.txt", "src/q?.txt", "src/v1.txt", "src/i[2]/x.txt",
                 "src/v1.h", "src/i[2]/x.h"):
        project.write(path, f"{path}\n")
    assert sorted(project.build()) == ["q?.txt", "st*r.txt", "v1.txt", "v[1].txt", "x.txt"]
    assert project.read("out/v[1].txt") == "src/v[1].txt\nsrc/v1.h\n"
    assert project.read("out/x.txt") == "src/i[2]/x.txt\nsrc/i[2]/x.h\n"
    project.write("src/v[1].txt", "edited\n")
    project.write("src/i[2]/x.h", "edited\n")
    project.write("src/stXr.txt", "new\n")  # matched by `st*r.txt`, read by no other instance
    assert sorted(project.build()) == ["stXr.txt", "v[1].txt", "x.txt"]
    assert project.read("out/v[1].txt") == "edited\nsrc/v1.h\n"
    assert project.read("out/x.txt") == "src/i[2]/x.txt\nedited\n"
    assert project.build() == []


def test_a_foreach_whose_outputs_its_glob_matches_never_takes_them_as_items(
        project: Project) -> None:
    # Thumbnails beside their images: on the next build, a.thumb.png is on disk and matches
    # `img/*.png`, but it is the task's own output, not an image to make a thumbnail of.
    project.flowfile("""
        [tasks.thumb]
        foreach = "img/*.png"
        cmd = "cp {item} {output} && echo {stem} >> runs.log"
        outputs = ["img/{stem}.thumb.png"]
        """)
    project.write("img/a.png", "a\n")
    assert project.build() == ["a"]
    assert project.build() == []
    project.write("img/b.png", "b\n")
    assert project.build() == ["b"]
    assert project.build() == []
    assert sorted(p.name for p in (project.root / "img").iterdir()) == \
        ["a.png", "a.thumb.png", "b.png", "b.thumb.png"]


@pytest.mark.parametrize("key", ['outputs = ["{item}"]', 'depfile = "{item}"'])
def test_a_foreach_writing_its_own_item_is_told_so(project: Project, key: str) -> None:
    # "never settle ... one more generation each round": the consequence, not the mistake
    project.flowfile(f'[tasks.a]\nforeach = "src/*.c"\ncmd = "cat {{item}}"\n{key}\n')
    project.write("src/a.c", "code\n")
    result = project.bflow()
    assert result.returncode == 2 and "never settle" not in result.stderr
    where = "outputs[0]" if key.startswith("outputs") else "depfile"
    assert f"tasks.a.{where}: '{{item}}' is the file the instance reads" in result.stderr
    assert project.read("src/a.c") == "code\n"


def test_foreach_tasks_that_take_each_other_s_outputs_without_end_are_an_error(
        project: Project) -> None:
    project.flowfile("""
        [tasks.bak]
        foreach = "src/*"
        cmd = "cp {item} {output} && echo bak >> runs.log"
        outputs = ["src/{name}.bak"]

        [tasks.zip]
        foreach = "src/*.bak"
        cmd = "gzip -c {item} > {output} && echo zip >> runs.log"
        outputs = ["src/{name}.gz"]
        """)
    project.write("src/a", "a\n")
    result = project.bflow()
    assert result.returncode == 2 and project.runs() == []
    assert "tasks.bak.foreach: the items of foreach tasks bak, zip never settle" in result.stderr
    text = project.read("Flowfile").replace('"src/*"', '["src/*", "!src/*.gz"]')
    project.write("Flowfile", text)
    assert sorted(project.build()) == ["bak", "zip"]
    assert project.build() == []


# File names as users have them: spaces, quotes, shell and glob characters, non-ASCII.
FILE_NAMES = st.text(st.sampled_from("ab. -'\"$`;&()[]{}*?\\#%é"), min_size=1, max_size=6).filter(
    lambda name: name not in (".", "..") and not name.startswith((".", "-")))
COPY_EACH = """
[tasks.list]
cmd = "printf '%s\\n' {inputs} > {output}"
inputs = ["src/*"]
outputs = ["list.txt"]

[tasks.copy]
foreach = "src/*"
cmd = "printf '%s\\n' {name} >> names.log && cat {item} > {output}"
outputs = ["out/{name}.copy"]
"""


@settings(max_examples=15, deadline=None)
@given(st.lists(FILE_NAMES, min_size=1, max_size=5, unique=True), st.data())
def test_any_file_name_reaches_its_commands_whole_and_rebuilds_alone(
        names: list[str], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as directory:
        project = Project(Path(directory))
        project.flowfile(COPY_EACH)
        for name in names:
            project.write(f"src/{name}", f"{name}\n")

        def build_and_check() -> list[str]:
            """Build; the names of the instances that ran, counted by what they logged."""
            log = project.root / "names.log"
            logged = log.read_text().splitlines() if log.exists() else []
            assert project.bflow().returncode == 0
            assert project.read("list.txt") == "".join(f"src/{n}\n" for n in sorted(names))
            for name in names:
                assert project.read(f"out/{name}.copy") == project.read(f"src/{name}")
            return sorted(log.read_text().splitlines()[len(logged):])

        assert build_and_check() == sorted(names)
        edited = data.draw(st.lists(st.sampled_from(names), unique=True))
        for name in edited:
            project.write(f"src/{name}", "edited\n")
        assert build_and_check() == sorted(edited)
        assert run_bflow("status", "--check", cwd=project.root).returncode == 0


def test_a_foreach_that_matches_no_file_yet_is_a_target_that_builds_nothing(
        project: Project) -> None:
    # As `deps` may name it, so may the command line and `settings.default`: Make builds an
    # empty `$(OBJS)` with nothing to do, and a go-task `for` over no source runs nothing.
    project.flowfile("""
        [settings]
        default = ["compile"]
        [tasks.compile]
        foreach = "src/*.c"
        cmd = "echo {item} >> runs.log; cp {item} {item}.o"
        outputs = ["{item}.o"]
        [tasks.other]
        cmd = "echo other >> runs.log"
    """)
    for args in (("compile",), ("compile",), ()):  # the second load is the project cache's
        result = project.bflow(*args)
        assert (result.returncode, result.stderr) == (0, "")
    assert project.runs() == []
    assert project.bflow("list").stdout == \
        "other\ncompile  [no instances: its foreach matches no file]\n"
    assert project.bflow("explain", "compile").stdout == \
        "compile: no instances: its foreach matches no file\n"
    assert project.bflow("compiel").stderr.startswith(
        "bflow: error: unknown target 'compiel': not a task, a TASK:ITEM instance or a declared "
        "output (did you mean 'compile'?)")
    project.write("src/a.c", "int a;\n")
    assert project.build("compile") == ["src/a.c"]
    assert project.build("compile") == []


def test_a_foreach_never_takes_the_depfiles_its_instances_write_as_items(
        project: Project) -> None:
    # as it never takes its outputs: each build made an instance of the last one's depfile
    project.flowfile("""
        [tasks.cc]
        foreach = "src/*"
        cmd = "echo {item} >> runs.log; cp {item} out.{name}; echo 'out.{name}: {item}' > {item}.d"
        outputs = ["out.{name}"]
        depfile = "{item}.d"
    """)
    project.write("src/a.c", "a\n")
    assert project.build() == ["src/a.c"]
    assert project.build() == []
    project.write("src/b.c", "b\n")
    assert project.build() == ["src/b.c"]
    assert project.build() == []
    assert sorted(p.name for p in (project.root / "src").iterdir()) == \
        ["a.c", "a.c.d", "b.c", "b.c.d"]


def test_dir_of_an_item_at_the_top_is_the_root_in_paths_too(project: Project) -> None:
    """`{dir}` of `a.c` was `.` in a command but empty in paths: `"{dir}/*.h"` read `/*.h`
    (the root's `a.h` no input, so editing it rebuilt nothing), and `"{dir}/{stem}.o"` was
    refused as outside the root."""
    project.write("a.c", "1\n")
    project.write("a.h", "h\n")
    project.write("s/b.c", "2\n")
    project.write("s/b.h", "h2\n")
    project.flowfile("""
        [tasks.each]
        foreach = "**/*.c"
        inputs = ["{dir}/*.h"]
        cmd = "echo '{task} {dir}' >> runs.log; cat {inputs} > {output}"
        outputs = ["{dir}/{stem}.o"]
        """)
    project.build()
    assert sorted(project.read("runs.log").splitlines()) == ["each:a.c .", "each:s/b.c s"]
    assert project.read("a.o") == "1\nh\n" and project.read("s/b.o") == "2\nh2\n"
    project.write("a.h", "h changed\n")
    project.build()
    assert project.read("runs.log").splitlines()[-1] == "each:a.c ."
    assert project.read("a.o") == "1\nh changed\n"
