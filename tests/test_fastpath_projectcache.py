"""The loaded-project cache never serves a stale graph: every change a fresh load would see is
seen, through the real `bflow` on real files. Runs are counted from the commands' log file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Project, settle

from buildflow.fastpath import proof as fastproof



FLOWFILE = """\
[tasks.copy]
foreach = "src/*.txt"
cmd = "cp {item} {output} && echo {stem} >> runs.log"
outputs = ["out/{stem}.out"]

[tasks.join]
cmd = "cat {inputs} > {output} && echo join >> runs.log"
inputs = ["src/*.txt"]
outputs = ["all.out"]
"""


def _cache(project: Project) -> Path:
    return project.root / ".bflow" / "flowcache"


def _setup(project: Project) -> None:
    project.flowfile(FLOWFILE)
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    settle(project.root / "src")
    assert project.bflow().returncode == 0
    assert sorted(project.runs()) == ["a", "b", "join"]
    assert project.bflow().returncode == 0  # the first build made the cache dir: now cached
    assert sorted(project.runs()) == ["a", "b", "join"]



def test_a_noop_build_is_served_from_the_cache(project: Project) -> None:
    _setup(project)
    assert _cache(project).exists()
    stamp = _cache(project).stat().st_mtime_ns
    assert project.build() == []
    assert _cache(project).stat().st_mtime_ns == stamp  # a hit rewrites nothing


def test_a_file_added_under_a_glob_is_seen(project: Project) -> None:
    _setup(project)
    project.write("src/c.txt", "c\n")
    assert sorted(project.build()) == ["c", "join"]
    assert project.read("all.out") == "a\nb\nc\n"


def test_a_file_removed_under_a_glob_is_seen(project: Project) -> None:
    _setup(project)
    (project.root / "src" / "b.txt").unlink()
    assert project.build() == ["join"]
    assert project.read("all.out") == "a\n"
    assert project.bflow("copy:src/b.txt").returncode == 2  # no such instance any more


def test_a_file_renamed_under_a_glob_is_seen(project: Project) -> None:
    _setup(project)
    os.rename(project.root / "src" / "b.txt", project.root / "src" / "z.txt")
    assert sorted(project.build()) == ["join", "z"]


def test_a_hidden_directory_added_where_a_glob_reaches_into_hidden_ones_is_seen(
        project: Project) -> None:
    project.flowfile("""
        [tasks.show]
        foreach = ".*/*.txt"
        cmd = "cat {item} > /dev/null && echo {item} >> runs.log"
        """)
    project.write(".a/x.txt", "a\n")
    settle(project.root / ".a" / "x.txt")
    assert project.build() == [".a/x.txt"]
    settle(project.root)  # the root is globbed, and the build wrote runs.log there
    assert project.build() == []  # the first build made the cache dir: now cached
    assert _cache(project).exists()
    project.write(".b/y.txt", "b\n")
    assert project.build() == [".b/y.txt"]


def test_a_matching_name_that_becomes_a_directory_is_seen(project: Project) -> None:
    _setup(project)
    (project.root / "src" / "b.txt").unlink()
    (project.root / "src" / "b.txt").mkdir()
    assert project.build() == ["join"]
    assert project.bflow("copy:src/b.txt").returncode == 2


def test_an_edited_flowfile_is_seen(project: Project) -> None:
    _setup(project)
    project.flowfile(FLOWFILE.replace("cp {item} {output}", "cat {item} {item} > {output}"))
    assert sorted(project.build()) == ["a", "b"]
    assert project.read("out/a.out") == "a\na\n"


def test_command_line_overrides_are_part_of_the_key(project: Project) -> None:
    project.flowfile("""\
        [vars]
        WORD = "one"

        [tasks.say]
        cmd = "echo {WORD} >> runs.log"
        inputs = ["in.txt"]
        outputs = []
        """)
    project.write("in.txt", "x\n")
    assert project.build() == ["one"]
    assert project.build() == []
    before = len(project.runs())
    assert project.bflow("WORD=two").returncode == 0
    assert project.runs()[before:] == ["two"]
    assert project.build() == ["one"]


def test_a_missing_literal_input_is_still_an_error(project: Project) -> None:
    project.flowfile("""\
        [tasks.use]
        cmd = "cat lone/in.txt > out.txt"
        inputs = ["lone/in.txt"]
        outputs = ["out.txt"]
        """)
    project.write("lone/in.txt", "x\n")
    settle(project.root / "lone")
    assert project.bflow().returncode == 0
    assert project.bflow().returncode == 0
    assert _cache(project).exists()
    (project.root / "lone" / "in.txt").unlink()
    result = project.bflow()
    assert result.returncode == 2
    assert "lone/in.txt" in result.stderr


def test_a_corrupt_cache_is_ignored(project: Project) -> None:
    from buildflow.frames import size_at

    _setup(project)
    entry = _cache(project).read_bytes()
    truncated = entry[:100]
    head_only = entry[:size_at(entry, 0)]  # cut where a frame ends: its tasks are missing
    for index, garbage in enumerate((b"", b"\x00not marshal at all", truncated, head_only)):
        _cache(project).write_bytes(garbage)
        project.write("src/c.txt", f"c{index}\n")
        assert sorted(project.build()) == ["c", "join"]
        (project.root / "src" / "c.txt").unlink()
        assert project.build() == ["join"]


def test_an_unreadable_cache_dir_entry_is_ignored(project: Project) -> None:
    _setup(project)
    _cache(project).unlink()
    _cache(project).mkdir()
    project.write("src/c.txt", "c\n")
    assert sorted(project.build()) == ["c", "join"]


def test_a_custom_cache_dir_holds_the_cache(project: Project) -> None:
    project.flowfile('[settings]\ncache_dir = "var/cache"\n\n' + FLOWFILE)
    project.write("src/a.txt", "a\n")
    settle(project.root / "src")
    assert sorted(project.build()) == ["a", "join"]
    assert project.build() == []  # the first build made the cache dir: now cached
    assert (project.root / "var" / "cache" / "flowcache").exists()
    assert not (project.root / ".bflow").exists()
    project.write("src/b.txt", "b\n")
    assert sorted(project.build()) == ["b", "join"]


def test_the_code_stamp_sees_every_source_file_of_bflow_and_no_bytecode(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit of bflow's own code (an editable install) must void every cached project."""
    import buildflow
    from buildflow.fastpath import identity

    package = tmp_path / "buildflow"
    (package / "reporters" / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "reporters" / "plain.py").write_text("x = 1\n")
    (package / "reporters" / "__pycache__" / "plain.py").write_text("not bflow's source\n")
    (package / "notes.txt").write_text("")
    monkeypatch.setattr(buildflow, "__file__", str(package / "__init__.py"))
    stamp = identity._code_stamp()
    assert [name for name, _, _ in stamp] == ["__init__.py", "reporters/plain.py"]
    (package / "reporters" / "plain.py").write_text("x = 22\n")
    assert identity._code_stamp() != stamp


def test_an_entry_in_many_parts_loads_the_project_it_stored(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from buildflow.fastpath import projectcache
    from buildflow.project import load

    project.flowfile("".join(f'[tasks.t{n}]\ncmd = "true"\ninputs = ["src/{n}.txt"]\n'
                             f'outputs = ["out/{n}"]\n' for n in range(5)))
    for n in range(5):
        project.write(f"src/{n}.txt", f"{n}\n")
    (project.root / ".bflow").mkdir()
    settle(project.root / "src")
    monkeypatch.setattr(projectcache, "PART", 2)  # three parts of tasks
    flowfile = str(project.root / "Flowfile")
    stored = projectcache.load(flowfile, {}, load)
    served = projectcache.load(flowfile, {}, load)
    assert served.from_cache and not stored.from_cache
    assert projectcache.encode(served.project) == projectcache.encode(stored.project)
    assert len(served.project.tasks) == 5


def test_a_link_to_itself_under_a_globbed_directory_is_no_internal_error(
        project: Project) -> None:
    # the caches' listing asked it whether it is a directory, which raised ELOOP on every build
    project.write("src/a/x.txt", "x\n")
    (project.root / "src" / "a" / "self").symlink_to("self")
    project.flowfile("""
        [tasks.up]
        foreach = "src/**/*.txt"
        cmd = "cat {item} > {output}"
        outputs = ["build/{relstem}.up"]
        """)
    for _ in range(2):
        result = project.bflow()
        assert result.returncode == 0, result.stderr
    assert project.read("build/a/x.up") == "x\n"


COMPILE_AND_LINK = """\
[tasks.compile]
foreach = "src/**/*.c"
cmd = "cp {item} {output} && echo {stem} >> runs.log{extra}"
outputs = ["obj/{dir}/{stem}.o"]

[tasks.link]
cmd = "cat {inputs} > {output} && echo link >> runs.log"
inputs = ["obj/**/*.o"]
outputs = ["app"]
"""


def _compile_and_link(project: Project, extra: str = "") -> None:
    project.flowfile(COMPILE_AND_LINK.replace("{extra}", extra))
    project.write("src/a.c", "a\n")
    project.write("src/net/b.c", "b\n")
    settle(project.root / "src", project.root / "src" / "net")


def test_outputs_a_build_writes_where_a_glob_looks_leave_the_next_build_cached_and_proven(
        project: Project) -> None:
    """The first build's outputs changed the directories `obj/**` lists: the entry stored at
    the load no longer held, no proof was left, and the next build loaded the Flowfile in
    full (a 5,000-file project: 0.52 s against 0.05 s). Declared outputs change no glob's
    expansion, so the entry moves to the directories as the build left them."""
    _compile_and_link(project)
    assert sorted(project.build()) == ["a", "b", "link"]
    assert fastproof.check(file=None, cwd=str(project.root), targets=[], overrides={}) == 3
    # -n loads the moved entry, which BFLOW_VERIFY compares with a fresh load: the new
    # directories obj/src and obj/src/net are among those it reads (exit 3 when they were not)
    dry = project.bflow("-n")
    assert dry.returncode == 0 and "0 would run" in dry.stdout, dry.stdout + dry.stderr
    stamp = _cache(project).stat().st_mtime_ns
    assert project.build() == []
    assert _cache(project).stat().st_mtime_ns == stamp  # a hit rewrites nothing
    project.write("obj/src/net/by_hand.o", "x\n")  # where the moved entry lists, not a glob
    assert project.build() == ["link"]
    assert project.read("app") == "a\nb\nx\n"
    project.write("src/net/c.c", "c\n")  # a new source, whose output goes in obj/src/net
    settle(project.root / "src" / "net")
    assert sorted(project.build()) == ["c", "link"]
    assert fastproof.check(file=None, cwd=str(project.root), targets=[], overrides={}) == 4
    assert project.build() == []


def test_a_file_a_build_writes_that_no_task_declares_is_seen_by_the_next_load(
        project: Project) -> None:
    # A by-product the compile step leaves where the link's glob looks: the next load finds
    # it, so the entry cannot move past it.
    _compile_and_link(project, " && echo stray > obj/stray.o")
    assert sorted(project.build("-j1")) == ["a", "b", "link"]
    assert project.build() == ["link"]
    assert "stray" in project.read("app")
    assert project.build() == []


WITH_DEPFILES = """\
[tasks.compile]
foreach = "src/**/*.c"
cmd = "cp {item} {output} && echo '{output}: {item}' > obj/{dir}/{stem}.d && echo {stem} >> runs.log"
outputs = ["obj/{dir}/{stem}.o"]
depfile = "obj/{dir}/{stem}.d"

[tasks.link]
cmd = "cat {inputs} > {output} && echo link >> runs.log"
inputs = ["obj/**/*.o"]
outputs = ["app"]
"""


def test_a_depfile_no_glob_matches_leaves_the_next_build_cached_and_proven(
        project: Project) -> None:
    # `obj/**/*.o` cannot match `obj/src/a.d`: a fresh load finds what the cached one does.
    project.flowfile(WITH_DEPFILES)
    project.write("src/a.c", "a\n")
    project.write("src/net/b.c", "b\n")
    settle(project.root / "src", project.root / "src" / "net")
    assert sorted(project.build()) == ["a", "b", "link"]
    assert fastproof.check(file=None, cwd=str(project.root), targets=[], overrides={}) == 3
    assert project.build() == []


def test_a_depfile_a_glob_matches_is_seen_by_the_next_load(project: Project) -> None:
    # `obj/**` does match the depfiles, which the first build wrote after its load: the next
    # load finds them, and the listing runs again with them.
    project.flowfile(WITH_DEPFILES + """
[tasks.listing]
cmd = "echo {inputs} > {output} && echo listing >> runs.log"
inputs = ["obj/**"]
outputs = ["listing.txt"]
""")
    project.write("src/a.c", "a\n")
    settle(project.root / "src")
    assert sorted(project.build("-j1")) == ["a", "link", "listing"]
    assert project.build() == ["listing"]
    assert "obj/src/a.d" in project.read("listing.txt")
    assert project.build() == []


def test_an_input_named_as_it_is_that_a_build_removes_is_missed_by_the_next_load(
        project: Project) -> None:
    # No glob matches `src/config.h`, but a task names it: a fresh load refuses its absence.
    # (Checked without BFLOW_VERIFY, whose fresh load of each cached project says so too.)
    project.flowfile("""
        [tasks.compile]
        foreach = "src/*.c"
        cmd = "cp {item} {output} && rm -f src/config.h && echo {stem} >> runs.log"
        outputs = ["obj/{stem}.o"]
        [tasks.configure]
        cmd = "cp {input} {output} && echo configure >> runs.log"
        inputs = ["src/config.h"]
        outputs = ["config.out"]
        """)
    project.write("src/a.c", "a\n")
    project.write("src/config.h", "c\n")
    settle(project.root / "src")
    assert sorted(project.build("-j1", "configure")) == ["configure"]
    assert project.build("-j1", "compile") == ["a"]
    result = project.bflow("configure", env={"BFLOW_VERIFY": "0"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "src/config.h" in result.stdout + result.stderr
