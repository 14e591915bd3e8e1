"""The local output cache (SPEC §6): a stale task whose action was built before, in this
project or another, is restored instead of run; a damaged cache is a miss, never a wrong
output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import CHANGED_BACK, Project, bflow_env, run_bflow

from buildflow.fs import is_temp_file

pytestmark = pytest.mark.output_cache

FLOW = """
[tasks.shout]
foreach = "src/*.txt"
cmd = "echo {stem} >> runs.log && echo shouting {stem} && tr a-z A-Z < {item} > {output}"
outputs = ["build/{stem}.out"]

[tasks.join]
cmd = "echo join >> runs.log && cat {inputs} > {output}"
inputs = ["build/*.out"]
outputs = ["site.txt"]
"""

TOOL = """
[tasks.tool]
cmd = "echo tool >> runs.log && cp {input} {output} && chmod +x {output}"
inputs = ["tool.sh"]
outputs = ["bin/tool"]
"""


def started(project: Project, flow: str = FLOW) -> Project:
    project.flowfile(flow)
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    project.write("tool.sh", "#!/bin/sh\necho tool\n")
    return project


def events(project: Project, *args: str, env: dict[str, str] | None = None
           ) -> dict[str, list[str]]:
    """Task names by event of a `bflow --json` build, which must succeed."""
    result = project.bflow("--json", *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    found: dict[str, list[str]] = {}
    for event in map(json.loads, result.stdout.splitlines()):
        if "task" in event:
            found.setdefault(event["event"], []).append(event["task"])
    return found


def outputs(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted((root / "build").glob("*")) + [root / "site.txt"]}


def test_a_clean_build_restores_everything_and_the_next_build_does_nothing(
        project: Project) -> None:
    started(project)
    assert sorted(project.build()) == ["a", "b", "join"]
    before = outputs(project.root)
    assert project.bflow("clean").returncode == 0
    found = events(project)
    assert sorted(found["task_restored"]) == ["join", "shout:src/a.txt", "shout:src/b.txt"]
    assert "task_started" not in found and sorted(project.runs()) == ["a", "b", "join"]
    assert outputs(project.root) == before
    # Recorded as a run would be: nothing is stale, the fast path's proof included.
    assert project.bflow("status", "--check").returncode == 0
    assert project.build() == []
    assert project.build("--plain") == []


def test_restored_output_keeps_its_mode_and_its_log(project: Project) -> None:
    started(project, FLOW + TOOL + """
[tasks.sealed]
cmd = "echo sealed >> runs.log && cp {input} {output} && chmod 440 {output}"
inputs = ["tool.sh"]
outputs = ["sealed.txt"]
""")
    project.build()
    built = {path: os.stat(project.root / path).st_mode & 0o777
             for path in ("bin/tool", "site.txt", "sealed.txt")}
    assert built["sealed.txt"] == 0o440
    assert project.bflow("clean").returncode == 0
    result = project.bflow("--plain")
    assert result.returncode == 0 and "restored tool" in result.stdout, result.stdout
    assert "restored sealed" in result.stdout
    assert "shouting a" in result.stdout  # the log is replayed
    assert {path: os.stat(project.root / path).st_mode & 0o777 for path in built} == built
    assert "shouting b" in project.bflow("log", "shout:src/b.txt").stdout
    assert project.runs().count("tool") == project.runs().count("sealed") == 1


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_switching_back_to_a_branch_restores_without_running_anything(project: Project) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                       cwd=project.root, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    started(project)
    project.write(".gitignore", "build/\n.bflow/\nruns.log\nsite.txt\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    git("checkout", "-q", "-b", "other")
    project.write("src/b.txt", "bee\n")
    git("commit", "-q", "-am", "change b")
    git("checkout", "-q", "main")
    assert sorted(project.build()) == ["a", "b", "join"]
    on_main = outputs(project.root)
    git("checkout", "-q", "other")
    assert sorted(project.build()) == ["b", "join"]
    git("checkout", "-q", "-")
    assert project.build() == []
    assert outputs(project.root) == on_main


def test_another_checkout_of_the_project_restores_from_the_same_cache(
        project: Project, tmp_path_factory: pytest.TempPathFactory) -> None:
    started(project)
    project.build()
    clone = Project(tmp_path_factory.mktemp("clone"))
    started(clone)
    assert clone.build() == []
    assert outputs(clone.root) == outputs(project.root)


def test_what_is_never_cached(project: Project) -> None:
    project.flowfile("""
        [tasks.off]
        cmd = "echo off >> runs.log && cp {input} {output}"
        inputs = ["in.txt"]
        outputs = ["out/off.txt"]
        cache = false

        [tasks.always]
        cmd = "echo always >> runs.log && cp {input} {output}"
        inputs = ["in.txt"]
        outputs = ["out/always.txt"]
        always = true

        [tasks.check]
        cmd = "echo check >> runs.log"
        inputs = ["in.txt"]

        [tasks.passed]
        cmd = "echo passed >> runs.log && echo all passed"
        inputs = ["in.txt"]
        cache = true
        """)
    project.write("in.txt", "1\n")
    assert sorted(project.build()) == ["always", "check", "off", "passed"]
    project.write("in.txt", "2\n")
    project.build()
    project.write("in.txt", "1\n")
    found = events(project)
    assert found["task_restored"] == ["passed"]
    assert sorted(found["task_finished"]) == ["always", "check", "off"]


def test_a_task_whose_output_is_a_link_is_run_not_restored_as_a_copy(project: Project) -> None:
    # A clean build makes `latest` a link; a copy restored in its place would not be one.
    project.flowfile("""
        [tasks.release]
        cmd = "echo release >> runs.log && cp {input} v1.txt && ln -sf v1.txt latest"
        inputs = ["in.txt"]
        outputs = ["v1.txt", "latest"]
        """)
    project.write("in.txt", "1\n")
    assert project.build() == ["release"]
    project.write("in.txt", "2\n")
    assert project.build() == ["release"]
    project.write("in.txt", "1\n")
    assert project.build() == ["release"]  # run, where a copy would have been restored
    assert (project.root / "latest").is_symlink() and project.read("latest") == "1\n"


def test_no_cache_and_bflow_cache_0_neither_restore_nor_store(project: Project) -> None:
    started(project)
    project.build("--no-cache")
    assert project.bflow("clean").returncode == 0
    assert sorted(project.build()) == ["a", "b", "join"]  # nothing was stored
    assert project.bflow("clean").returncode == 0
    assert sorted(project.build(env={"BFLOW_CACHE": "0"})) == ["a", "b", "join"]
    assert project.bflow("clean").returncode == 0
    assert sorted(project.build("--no-cache", "-j1")) == ["a", "b", "join"]
    assert project.bflow("clean").returncode == 0
    assert project.build() == []


def test_always_make_runs_every_command(project: Project) -> None:
    started(project)
    project.build()
    assert sorted(project.build("-B")) == ["a", "b", "join"]


def test_a_run_whose_input_changed_and_changed_back_is_not_stored(
        project: Project, tmp_path_factory: pytest.TempPathFactory) -> None:
    # The input edited and changed back while the command ran (`git stash`, `git stash
    # pop`): the output may be of the other content, which a twin project never had.
    projects = [project, Project(tmp_path_factory.mktemp("twin"))]
    for each in projects:
        each.flowfile(CHANGED_BACK)
        each.write("src.txt", "one\n")
    assert projects[0].build() == ["slow"]
    assert projects[1].build() == ["slow"]  # run, not restored


def test_a_depfile_input_that_changed_is_a_miss_even_on_a_clean_build(project: Project) -> None:
    project.flowfile("""
        [tasks.cc]
        cmd = "echo cc >> runs.log && printf 'x: inc.h\\\\n' > {depfile} && cat {input} inc.h > {output}"
        inputs = ["main.c"]
        outputs = ["main.o"]
        depfile = "main.d"
        """)
    project.write("main.c", "main\n")
    project.write_before_the_run("inc.h", "one\n")
    assert project.build() == ["cc"]
    project.write_before_the_run("inc.h", "two\n")
    assert project.build() == ["cc"]
    assert project.bflow("clean").returncode == 0
    project.write_before_the_run("inc.h", "one\n")
    assert project.build() == []  # both versions are kept, each under its depfile inputs
    assert project.read("main.o") == "main\none\n"
    assert project.read("main.d") == "x: inc.h\n"
    project.write_before_the_run("inc.h", "three\n")
    assert project.build() == ["cc"]
    assert project.read("main.o") == "main\nthree\n"
    project.write_before_the_run("inc.h", "one\n")
    assert project.build() == []
    assert project.bflow("status", "--check").returncode == 0


def test_branches_whose_headers_include_other_headers_each_restore_their_own(
        project: Project) -> None:
    """One manifest per action key named the header set of the last run stored: on branch B
    `a.h` includes `b.h`, and clean builds alternating A, B, A, B ran every time."""
    project.flowfile("""
        [tasks.cc]
        cmd = "echo cc >> runs.log && sh cc.sh"
        inputs = ["main.c", "cc.sh"]
        outputs = ["main.o"]
        depfile = "main.d"
        """)
    # a compiler of sorts: main.c, a.h and what a.h names, with a depfile of what it read
    project.write("cc.sh", "read inc < a.h; cat main.c a.h $inc > main.o; "
                           "echo \"main.o: main.c a.h $inc\" > main.d\n")
    project.write("main.c", "main\n")
    branches = {"A": {"a.h": "\n"}, "B": {"a.h": "b.h\n", "b.h": "bee\n"},
                "C": {"a.h": "c.h\n", "c.h": "sea\n"}}

    def check_out(branch: str) -> None:
        for path in ("a.h", "b.h", "c.h"):
            (project.root / path).unlink(missing_ok=True)
        for path, text in branches[branch].items():
            project.write_before_the_run(path, text)

    for branch in "ABC":
        check_out(branch)
        assert project.build() == ["cc"]
    for branch in "ABCAB":
        assert project.bflow("clean").returncode == 0
        check_out(branch)
        assert project.build() == [], branch  # restored, each with its own headers
        assert project.read("main.o") == "main\n" + "".join(branches[branch][p] for p in
                                                           sorted(branches[branch]))
        assert project.bflow("status", "--check").returncode == 0


def cache_files(directory: Path, kind: str) -> list[Path]:
    return sorted(p for p in (directory / kind).glob("*/*") if not is_temp_file(str(p)))


@pytest.mark.parametrize("kind", ["ac", "cas"])
def test_a_damaged_cache_file_is_a_miss_with_one_warning(
        project: Project, private_output_cache: Path, kind: str) -> None:
    started(project)
    project.build()
    for path in cache_files(private_output_cache, kind):
        path.write_bytes(path.read_bytes()[:-1] + b"#")
    assert project.bflow("clean").returncode == 0
    result = project.bflow("--plain", "-j1")
    assert result.returncode == 0, result.stderr
    assert sorted(project.runs()) == ["a", "a", "b", "b", "join", "join"]
    assert result.stderr.count("warning") == 1, result.stderr
    assert "runs instead" in result.stderr and str(private_output_cache) in result.stderr
    assert project.read("build/a.out") == "A\n"
    # The damaged files were replaced by the runs: the next clean build restores.
    assert project.bflow("clean").returncode == 0
    assert project.build() == []


def test_a_damaged_manifest_of_depfile_inputs_is_removed_as_said(
        project: Project, private_output_cache: Path) -> None:
    # it was said to be removed and left: every build warned again until a run replaced it
    project.flowfile("""
        [tasks.cc]
        cmd = "echo cc >> runs.log; test -z \\"$FAIL\\" && cat main.c > main.o && echo 'main.o: main.c inc.h' > main.d"
        inputs = ["main.c"]
        outputs = ["main.o"]
        depfile = "main.d"
        """)
    project.write("main.c", "main\n")
    project.write_before_the_run("inc.h", "one\n")
    assert project.build() == ["cc"]
    (manifest,) = [path for path in cache_files(private_output_cache, "ac")
                   if b"inc.h" in path.read_bytes()]
    manifest.write_bytes(manifest.read_bytes()[:5])
    assert project.bflow("clean").returncode == 0
    result = project.bflow("--plain", env={"FAIL": "1"})  # so no run replaces it
    assert result.returncode == 1
    assert f"output cache: entry {manifest}: " in result.stderr
    assert "(the damaged file was removed)" in result.stderr
    assert not manifest.exists()
    assert "warning" not in project.bflow("--plain", env={"FAIL": "1"}).stderr


def test_the_cache_stays_under_its_bound_dropping_the_least_recently_used(
        project: Project, private_output_cache: Path) -> None:
    project.flowfile("""
        [tasks.big]
        foreach = "src/*.txt"
        cmd = "echo {stem} >> runs.log && head -c 20000 /dev/zero | tr '\\\\0' {stem} > {output}"
        outputs = ["out/{stem}.bin"]
        """)
    env = {"BFLOW_CACHE_MAX": "50K"}
    for name in "abcdef":
        project.write(f"src/{name}.txt", name)
        project.build(env=env)
    size = sum(p.stat().st_size for p in private_output_cache.rglob("*") if p.is_file())
    assert size <= 50 * 1024
    assert project.bflow("clean").returncode == 0
    ran = project.build(env=env)
    assert "f" not in ran and "a" in ran  # the newest stayed, the oldest went


def test_the_store_is_walked_only_when_its_size_may_be_past_its_bound(
        project: Project, private_output_cache: Path) -> None:
    """An edit's build does not stat the user's whole cache: the size file says how big it
    is. Seen through what only a walk does: remove an hour-old temp file of a killed build."""
    project.flowfile("""
        [tasks.copy]
        foreach = "src/*.txt"
        cmd = "echo {stem} >> runs.log && cp {item} {output}"
        outputs = ["out/{stem}.txt"]
        """)

    def abandoned() -> Path:
        left = private_output_cache / "cas" / "00" / ".left-by-a-killed-build.tmp"
        left.parent.mkdir(parents=True, exist_ok=True)
        left.write_text("x" * 100)
        os.utime(left, (0, 0))
        return left

    project.write("src/a.txt", "a")
    left = abandoned()
    assert project.build(env={"BFLOW_CACHE_MAX": "1M"}) == ["a"]
    assert not left.exists()  # no size file yet: walked
    walked = (private_output_cache / "size").read_text()
    left = abandoned()
    project.write("src/b.txt", "b")
    assert project.build(env={"BFLOW_CACHE_MAX": "1M"}) == ["b"]
    assert left.exists()  # far under the bound: not walked
    assert (private_output_cache / "size").read_text().startswith(walked)
    project.write("src/c.txt", "c")
    assert project.build(env={"BFLOW_CACHE_MAX": "10"}) == ["c"]
    assert not left.exists()  # the sum passed the bound: walked and trimmed
    remaining = sum(p.stat().st_size for p in private_output_cache.rglob("*")
                    if p.is_file() and p.parent.parent.name in ("ac", "cas"))
    assert (private_output_cache / "size").read_text() == f"={remaining}\n"


def test_two_builds_share_the_local_cache_at_once(
        project: Project, tmp_path_factory: pytest.TempPathFactory) -> None:
    flow = """
        [tasks.copy]
        foreach = "src/*.txt"
        cmd = "echo {stem} >> runs.log && sleep 0.01 && tr a-z A-Z < {item} > {output}"
        outputs = ["out/{stem}.txt"]
        """
    projects = [project, Project(tmp_path_factory.mktemp("twin"))]
    for each in projects:
        each.flowfile(flow)
        for index in range(40):
            each.write(f"src/f{index}.txt", f"file {index}\n")
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [threading.Thread(target=lambda p=p: results.append(p.bflow("-j4")))
               for p in projects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert all("warning" not in r.stderr for r in results)
    for each in projects:
        assert each.read("out/f7.txt") == "FILE 7\n"
        assert each.bflow("clean").returncode == 0
        assert each.build() == []


def test_cache_stats_and_clear(project: Project, private_output_cache: Path) -> None:
    started(project)
    project.build()
    assert project.bflow("clean").returncode == 0
    project.build()
    stats = run_bflow("cache", "stats", cwd=project.root)
    assert stats.returncode == 0
    assert str(private_output_cache) in stats.stdout
    assert "entries:   3" in stats.stdout and "3 hits" in stats.stdout, stats.stdout
    assert run_bflow("cache", "clear", cwd=project.root).returncode == 0
    assert "entries:   0" in run_bflow("cache", "stats", cwd=project.root).stdout
    assert project.bflow("clean").returncode == 0
    assert sorted(project.build()) == ["a", "b", "join"]


def test_a_named_pipe_where_the_cache_keeps_its_size_is_a_warning_not_a_wait(
        project: Project, tmp_path: Path) -> None:
    # opened to append a line, it held the build's end for ever, waiting for a reader
    cache = tmp_path / "cache"
    cache.mkdir()
    os.mkfifo(cache / "size")
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log; echo a > {output}"\n'
                     'outputs = ["a.txt"]\n')
    result = run_bflow("--plain", cwd=project.root, env={"BFLOW_CACHE_DIR": str(cache)},
                       timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"warning: output cache: {cache / 'size'}: " in result.stderr
    assert project.runs() == ["a"]


ONE_TASK = '[tasks.a]\ncmd = "echo a >> runs.log; echo a > {output}"\noutputs = ["a.txt"]\n'


@pytest.mark.parametrize("kind", ["ac", "cas"])
@pytest.mark.parametrize("put", ["a named pipe", "a directory", "a link to /dev/zero"])
def test_what_is_no_file_where_the_cache_keeps_one_is_removed_and_a_miss(
        project: Project, tmp_path: Path, kind: str, put: str) -> None:
    """A named pipe held the build for ever, SIGTERM and Ctrl-C too; a link to /dev/zero read
    until memory ran out; a directory was a miss for good, which nothing repaired."""
    cache = tmp_path / "cache"
    env = {"BFLOW_CACHE_DIR": str(cache)}
    project.flowfile(ONE_TASK)
    assert project.build(env=env) == ["a"]
    (project.root / "a.txt").unlink()
    [stored] = (cache / kind).glob("*/*")
    stored.unlink()
    if put == "a named pipe":
        os.mkfifo(stored)
    elif put == "a directory":
        (stored / "inside").mkdir(parents=True)
    else:
        stored.symlink_to("/dev/zero")
    result = run_bflow("--plain", cwd=project.root, env=env, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.count("warning") == 1 and "is no regular file" in result.stderr
    assert project.runs() == ["a", "a"] and project.read("a.txt") == "a\n"
    assert stored.is_file() and not stored.is_symlink()  # stored again by the run
    (project.root / "a.txt").unlink()
    assert project.build("--plain", env=env) == []  # restored from it


def test_a_directory_in_the_store_leaves_the_rest_to_be_trimmed(project: Project,
                                                                 tmp_path: Path) -> None:
    """Trimming stopped at it with a warning at every build, and the store grew without
    bound."""
    cache = tmp_path / "cache"
    (cache / "cas" / "00" / ("00" * 32) / "inside").mkdir(parents=True)
    project.flowfile('[tasks.a]\ncmd = "head -c 20000 /dev/urandom > {output}"\n'
                     'outputs = ["a.bin"]\n')
    env = {"BFLOW_CACHE_DIR": str(cache), "BFLOW_CACHE_MAX": "30K"}
    for _ in range(4):
        result = run_bflow("-B", cwd=project.root, env=env)
        assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    size = sum(path.stat().st_size for path in cache.rglob("*") if path.is_file())
    assert size <= 30 * 1024
    assert not (cache / "cas" / "00" / ("00" * 32)).exists()


def test_stats_names_a_named_pipe_where_the_counts_are_kept(project: Project,
                                                           tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    os.mkfifo(cache / "counts")
    result = run_bflow("cache", "stats", cwd=project.root, env={"BFLOW_CACHE_DIR": str(cache)},
                       timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{cache / 'counts'}: " in result.stderr and "bflow cache clear" in result.stderr

@pytest.mark.parametrize("action", ["stats", "clear"])
def test_cache_commands_on_a_file_where_the_cache_goes_say_so(project: Project, tmp_path: Path,
                                                              action: str) -> None:
    # each was an internal error (exit 3); a build with it warns and goes on
    (tmp_path / "a-file").write_text("mine\n")
    result = run_bflow("cache", action, cwd=project.root,
                       env={"BFLOW_CACHE_DIR": str(tmp_path / "a-file")})
    assert result.returncode == 2, result.stderr
    assert "a-file: the output cache's directory is a file" in result.stderr
    assert (tmp_path / "a-file").read_text() == "mine\n"


def test_a_build_with_a_file_where_the_cache_goes_in_the_project_names_the_cache(
        project: Project) -> None:
    # a file inside the project named by BFLOW_CACHE_DIR was taken for an output's path:
    # "the output's path in the project could not be written"
    started(project)
    project.write("a-file", "mine\n")
    result = project.bflow("--plain", env={"BFLOW_CACHE_DIR": str(project.root / "a-file")})
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("warning") == 1, result.stderr
    assert "a-file, the output cache's directory, is a file; set BFLOW_CACHE_DIR to a " \
           "directory" in result.stderr, result.stderr
    assert (project.root / "a-file").read_text() == "mine\n"


def test_clear_while_builds_store_never_stops_half_way(project: Project, tmp_path: Path) -> None:
    """A build storing while `cache clear` removed `ac/` made it fail, "Directory not empty",
    the cache cleared only in part."""
    cache = tmp_path / "cache"
    stop = threading.Event()

    def store() -> None:  # as builds do: files appearing in the store's shards
        number = 0
        while not stop.is_set():
            shard = cache / "ac" / f"{number % 7:02d}"
            try:
                shard.mkdir(parents=True, exist_ok=True)
                (shard / f"entry{number}").write_bytes(b"x")
            except OSError:  # removed under it
                pass
            number += 1

    writer = threading.Thread(target=store)
    writer.start()
    try:
        for _ in range(15):
            result = run_bflow("cache", "clear", cwd=project.root,
                               env={"BFLOW_CACHE_DIR": str(cache)})
            assert result.returncode == 0, result.stderr
    finally:
        stop.set()
        writer.join()
    assert not list(cache.glob("ac.cleared-*"))  # nothing left aside
    # what a clear cut short (Ctrl-C, a kill) left aside goes with the next one
    (cache / "cas.cleared-999999" / "00").mkdir(parents=True)
    (cache / "cas.cleared-999999" / "00" / "blob").write_bytes(b"x")
    assert run_bflow("cache", "clear", cwd=project.root,
                     env={"BFLOW_CACHE_DIR": str(cache)}).returncode == 0
    assert not (cache / "cas.cleared-999999").exists()

def test_a_file_where_the_cache_keeps_a_directory_is_named_by_stats_and_cleared(
        project: Project, tmp_path: Path) -> None:
    # `ac` a file: stats was an internal error (exit 3), clear "cleared only in part"
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ac").write_text("stray\n")
    env = {"BFLOW_CACHE_DIR": str(cache)}
    result = run_bflow("cache", "stats", cwd=project.root, env=env)
    assert result.returncode == 2, result.stderr
    assert f"{cache / 'ac'}: a file where the output cache keeps a directory" in result.stderr
    result = run_bflow("cache", "clear", cwd=project.root, env=env)
    assert result.returncode == 0, result.stderr
    assert not (cache / "ac").exists()
    result = run_bflow("cache", "stats", cwd=project.root, env=env)
    assert result.returncode == 0 and "entries:   0" in result.stdout


@pytest.mark.parametrize("settings, message", [
    ('remote_cache = "https://me:secret@cache.example.com"', "does not belong in the Flowfile"),
    ('remote_cache = "https://me:se/cret@cache.example.com"', "does not belong in the Flowfile"),
    ('remote_cache = "cache.example.com"', "not an http:// or https:// URL"),
    ("remote_cache_upload = 1", "settings.remote_cache_upload: expected true or false"),
])
def test_remote_cache_settings_are_checked_at_load(project: Project, settings: str,
                                                   message: str) -> None:
    project.flowfile(f"[settings]\n{settings}\n\n[tasks.a]\ncmd = 'true'\n")
    result = project.bflow("validate")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "secret" not in result.stderr


def test_cache_key_must_be_a_boolean(project: Project) -> None:
    project.flowfile("[tasks.a]\ncmd = 'true'\ncache = 'no'\n")
    result = project.bflow("validate")
    assert result.returncode == 2 and "tasks.a.cache: expected true or false" in result.stderr


def test_an_output_with_a_name_as_long_as_the_disk_allows_is_restored(project: Project) -> None:
    name = "n" * 250  # its temp file beside it must not need a longer name
    project.flowfile(f"""
        [tasks.long]
        cmd = "echo long >> runs.log && echo data > {{output}}"
        outputs = ["out/{name}"]
        """)
    assert project.build() == ["long"]
    assert project.bflow("clean").returncode == 0
    result = project.bflow()
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    assert project.runs() == ["long"] and project.read(f"out/{name}") == "data\n"


@pytest.mark.parametrize("bound", ["abc", "-1M", "inf", "nan", "infG", "1i", "iB", "5GiiB"])
def test_a_bound_that_is_no_size_is_a_usage_error(project: Project, bound: str) -> None:
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log; echo a > a.txt"\n'
                     'outputs = ["a.txt"]\n')
    result = project.bflow(env={"BFLOW_CACHE_MAX": bound})
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"bflow: error: BFLOW_CACHE_MAX={bound!r}: expected a size such "
                             "as 500M, 5G or 5GiB\n")
    assert project.runs() == []


@pytest.mark.parametrize(("bound", "size"), [("1KiB", 1024), ("2MB", 2 << 20), ("3g", 3 << 30),
                                             ("1.5M", 3 << 19), ("100B", 100), ("1e3", 1000),
                                             (" 5gib ", 5 << 30)])
def test_a_bound_is_read_in_the_units_stats_shows(bound: str, size: int) -> None:
    """`cache stats` shows "1.0 GiB"; the same written back was refused."""
    from buildflow.cache.config import max_bytes

    assert max_bytes({"BFLOW_CACHE_MAX": bound}) == size


def test_an_output_path_a_restore_cannot_write_is_named_as_the_project_names_it(
        project: Project, private_output_cache: Path) -> None:
    """A directory where the output goes: the warning named the restore's hidden temp file
    (`o/.x.txt.PID-TID.tmp: Is a directory`), not the path to fix."""
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log; cat {input} > {output}"\n'
                     'inputs = ["a.txt"]\noutputs = ["o/x.txt"]\n')
    project.write("a.txt", "a\n")
    assert project.build() == ["a"]
    (project.root / "o" / "x.txt").unlink()
    (project.root / "o" / "x.txt").mkdir()
    result = project.bflow("--plain")
    assert result.returncode == 1  # the command meets the directory too, as without a cache
    assert f"output cache: {project.root / 'o' / 'x.txt'}: Is a directory; task 'a' runs " \
           "instead; the output's path in the project could not be written" in result.stderr
    assert ".tmp" not in result.stderr


def test_the_temp_file_of_a_restore_a_kill_cut_short_goes_with_the_next_build(
        project: Project) -> None:
    # a build killed (SIGKILL) while it restored out/big.bin left its temp file beside it
    # until `bflow clean`
    project.flowfile("""
        [tasks.big]
        cmd = "echo big >> runs.log && yes x | head -c 30000000 > {output}"
        inputs = ["in.txt"]
        outputs = ["out/big.bin"]
        """)
    project.write("in.txt", "1\n")
    assert project.build() == ["big"]
    out = project.root / "out"
    left: list[Path] = []
    for _ in range(5):  # the kill may come once the restore has ended: again
        (out / "big.bin").unlink(missing_ok=True)
        process = subprocess.Popen([sys.executable, "-m", "buildflow", "-q"], cwd=project.root,
                                   env=bflow_env(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        while process.poll() is None and not any(map(is_temp_file, os.listdir(out))):
            pass
        process.kill()
        process.wait(timeout=30)
        left = [path for path in out.iterdir() if is_temp_file(str(path))]
        if left:
            break
    assert left, "no build was killed while it restored"
    assert project.build() == []  # restored again, not run
    assert [path.name for path in out.iterdir()] == ["big.bin"]
    assert (out / "big.bin").stat().st_size == 30000000
