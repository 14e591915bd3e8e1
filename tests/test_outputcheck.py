"""`bflow status --outputs`: the generated files git tracks compared with what a build of a copy
of the tracked files gives, through the real `bflow` in real git repositories."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Project, git, run_bflow

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

FLOW = """
[tasks.shout]
cmd = "tr a-z A-Z < {input} > {output}"
inputs = ["src.txt"]
outputs = ["gen/shout.txt"]

[tasks.count]
cmd = "wc -c < {input} > {output}"
inputs = ["gen/shout.txt"]
outputs = ["gen/count.txt"]

[tasks.site]
cmd = "rm -rf site && mkdir site && cp {input} site/index.txt"
inputs = ["src.txt"]
outputs = ["site/"]

[tasks.scratch]
cmd = "cp {input} {output}"
inputs = ["src.txt"]
outputs = ["tmp/scratch.txt"]
"""


def repository_of(repository: Path, name: str, text: str) -> Path:
    """A new repository at `repository` with one commit of the file `name` (a submodule's)."""
    repository.mkdir()
    (repository / name).write_text(text)
    git(repository, "init", "-q", "-b", "main")
    git(repository, "add", ".")
    git(repository, "commit", "-q", "-m", name)
    return repository



@pytest.fixture
def repo(project: Project) -> Project:
    """Built and committed; `tmp/` ignored along with the cache dir."""
    project.flowfile(FLOW)
    project.write("src.txt", "hello\n")
    project.write(".gitignore", ".bflow/\ntmp/\n")
    project.build()
    git(project.root, "init", "-q", "-b", "main")
    git(project.root, "add", ".")
    git(project.root, "commit", "-q", "-m", "built")
    return project


def tree_digest(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file() and ".git" not in path.parts}


def test_committed_outputs_as_a_build_gives_them_pass_without_records(repo: Project) -> None:
    shutil.rmtree(repo.root / ".bflow")
    result = repo.bflow("status", "--check", "--outputs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "bflow: all 3 outputs match what a build gives\n"  # tmp/ ignored
    assert not (repo.root / ".bflow").exists()
    ignored = repo.bflow("status", "--check", "--outputs", "scratch")  # "all 0 outputs match"
    assert (ignored.returncode, ignored.stdout) == (0, "bflow: no output to compare (none that "
                                                       "git tracks or a build makes is not "
                                                       "ignored)\n"), ignored.stderr


def test_each_output_that_is_not_what_a_build_gives_is_named_with_its_fix(
        repo: Project) -> None:
    repo.write("src.txt", "hello, world\n")
    git(repo.root, "rm", "-q", "gen/count.txt")
    repo.write("site/old.txt", "a build no longer makes this\n")
    repo.flowfile(FLOW + '\n[tasks.extra]\ncmd = "echo x > {output}"\noutputs = ["extra.txt"]\n')
    git(repo.root, "add", "src.txt", "site/old.txt", "Flowfile")
    result = repo.bflow("status", "--check", "--outputs")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "extra.txt: a build makes it, but git does not track it "
        "(run bflow, then git add it, or list it in .gitignore)",
        "gen/count.txt: a build makes it, but git does not track it "
        "(run bflow, then git add it, or list it in .gitignore)",
        "gen/shout.txt: differs from what a build gives (run bflow, then git add it)",
        "site/index.txt: differs from what a build gives (run bflow, then git add it)",
        "site/old.txt: git tracks it, but a build does not make it (git rm it)",
    ]
    assert repo.bflow("status", "--outputs").returncode == 0  # without --check, only a report


def test_it_writes_nothing_into_the_project_not_even_the_records(repo: Project) -> None:
    repo.write("src.txt", "changed\n")
    git(repo.root, "add", "src.txt")
    before = tree_digest(repo.root)
    assert repo.bflow("status", "--check", "--outputs").returncode == 1
    assert tree_digest(repo.root) == before


@pytest.mark.output_cache
def test_the_check_neither_reads_nor_writes_the_user_s_output_cache(
        project: Project, private_output_cache: Path) -> None:
    """The copy's build stored into the user's output cache, a write outside its temporary
    directory, and restored from it what a build on the disk had stored: a command reading a
    file it does not declare (`notes.txt`, edited but not staged) passed a commit whose
    clone's build gives another output."""
    project.flowfile("""
        [tasks.gen]
        cmd = "cat {input} notes.txt > {output}"
        inputs = ["src.txt"]
        outputs = ["out.txt"]
        [tasks.upper]
        cmd = "tr a-z A-Z < {input} > {output}"
        inputs = ["src.txt"]
        outputs = ["upper.txt"]
        """)
    project.write("src.txt", "hello\n")
    project.write("notes.txt", "v1\n")
    project.write(".gitignore", ".bflow/\n")
    project.build(env={"BFLOW_CACHE": "0"})
    git(project.root, "init", "-q", "-b", "main")
    git(project.root, "add", ".")
    git(project.root, "commit", "-q", "-m", "built")
    project.write("notes.txt", "v2\n")
    project.build("-B", "gen")  # stored in the cache, and staged: "hello v2"
    git(project.root, "add", "out.txt")
    before = tree_digest(private_output_cache)
    assert any(path.startswith("ac/") for path in before)
    result = project.bflow("status", "--check", "--outputs")
    assert tree_digest(private_output_cache) == before
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == "out.txt: differs from what a build gives (run bflow, then git " \
                            "add it)\n"


def test_targets_select_what_is_built_and_compared(repo: Project) -> None:
    repo.write("src.txt", "changed\n")
    (repo.root / "gen/shout.txt").write_text("CHANGED\n")
    git(repo.root, "add", "src.txt", "gen/shout.txt")
    result = repo.bflow("status", "--check", "--outputs", "count")
    assert result.returncode == 1
    assert result.stdout == ("gen/count.txt: differs from what a build gives "
                             "(run bflow, then git add it)\n")
    from_a_subdirectory = run_bflow("status", "--check", "--outputs", "shout.txt",
                                    cwd=repo.root / "gen")
    assert from_a_subdirectory.returncode == 0, from_a_subdirectory.stderr
    assert from_a_subdirectory.stdout == "bflow: 1 output matches what a build gives\n"


def test_a_conflict_is_named_as_one_with_its_fix(repo: Project) -> None:
    """An unmerged Flowfile was said not to be tracked (git add Flowfile), and an unmerged
    output to be made by a build and not tracked (or to be listed in .gitignore)."""
    git(repo.root, "checkout", "-q", "-b", "other")
    for branch, text in (("other", "another one\n"), ("main", "mine\n")):
        git(repo.root, "checkout", "-q", branch)
        repo.write("src.txt", text)
        repo.flowfile(FLOW + f"# {branch}\n")
        repo.build()
        git(repo.root, "commit", "-q", "-am", branch)
    with pytest.raises(subprocess.CalledProcessError):  # stopped by the conflicts
        git(repo.root, "merge", "-q", "other")
    result = repo.bflow("status", "--check", "--outputs")
    assert result.returncode == 2
    assert result.stderr == (f"bflow: error: {repo.root.resolve() / 'Flowfile'}: unmerged in "
                             "git's index (in conflict), and bflow status --outputs builds a "
                             "copy of what the index holds (resolve the conflict, then git add "
                             "Flowfile)\n")
    git(repo.root, "checkout", "-q", "--theirs", "Flowfile", "src.txt")
    git(repo.root, "add", "Flowfile", "src.txt")
    result = repo.bflow("status", "--check", "--outputs")
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"{path}: unmerged in git's index (in conflict): resolve the conflict (run bflow, then "
        "git add it)" for path in ("gen/count.txt", "gen/shout.txt", "site/index.txt")]
    repo.build()
    git(repo.root, "add", "gen", "site")
    result = repo.bflow("status", "--check", "--outputs")
    assert result.stdout == "bflow: all 3 outputs match what a build gives\n", result.stderr


def test_an_unmerged_input_is_named_as_in_conflict_with_its_fix(project: Project) -> None:
    """An input the index holds unmerged, which `git checkout-index` leaves out of the copy,
    was said to be on no disk (git add what is missing), and one a glob or a foreach matches
    was left out of its matches, silently: the check went on without it."""
    project.flowfile("""
        [tasks.shout]
        cmd = "tr a-z A-Z < {input} > {output}"
        inputs = ["src.txt"]
        outputs = ["shout.txt"]
        [tasks.notes]
        cmd = "cat {inputs} > {output}"
        inputs = ["notes/*.txt", "!notes/draft.txt"]
        outputs = ["notes.txt"]
        [tasks.page]
        foreach = "pages/*.txt"
        cmd = "cp {item} {output}"
        outputs = ["out/{name}"]
        """)
    for path in ("src.txt", "notes/a.txt", "notes/b.txt", "notes/draft.txt"):
        project.write(path, "base\n")
    committed(project)
    git(project.root, "checkout", "-q", "-b", "other")
    for branch in ("other", "main"):  # each edits the inputs, and adds pages/ in its own way
        git(project.root, "checkout", "-q", branch)
        for path in ("src.txt", "notes/b.txt", "notes/draft.txt", "pages/new.txt"):
            project.write(path, f"{branch}\n")
        git(project.root, "add", ".")
        git(project.root, "commit", "-q", "-m", branch)
    with pytest.raises(subprocess.CalledProcessError):  # stopped by the conflicts
        git(project.root, "merge", "-q", "other")

    def in_conflict(path: str, task: str) -> str:
        return (f"bflow: error: Flowfile: input '{path}' of task '{task}' is unmerged in git's "
                "index (in conflict), and bflow status --outputs builds a copy of what the "
                f"index holds (resolve the conflict, then git add {path})")

    result = project.bflow("status", "--check", "--outputs")
    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines() == [  # not notes/draft.txt, which no task reads
        in_conflict("notes/b.txt", "notes"), in_conflict("pages/new.txt", "page:pages/new.txt"),
        in_conflict("src.txt", "shout")]
    git(project.root, "checkout", "-q", "--theirs", "src.txt")
    git(project.root, "add", "src.txt")
    result = project.bflow("status", "--check", "--outputs")
    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines() == [
        in_conflict("notes/b.txt", "notes"), in_conflict("pages/new.txt", "page:pages/new.txt")]
    result = project.bflow("status", "--check", "--outputs", "shout")  # reads none of them
    assert (result.returncode, result.stderr) == (1, ""), result.stderr
    assert result.stdout == "shout.txt: differs from what a build gives (run bflow, then git " \
                            "add it)\n"
    git(project.root, "checkout", "-q", "--theirs", "notes/b.txt", "pages/new.txt")
    git(project.root, "add", "notes/b.txt", "pages/new.txt")
    result = project.bflow("status", "--check", "--outputs")  # no task reads what is left
    assert (result.returncode, result.stderr) == (1, ""), result.stderr
    assert result.stdout.splitlines() == [
        "notes.txt: differs from what a build gives (run bflow, then git add it)",
        "out/new.txt: a build makes it, but git does not track it (run bflow, then git add "
        "it, or list it in .gitignore)",
        "shout.txt: differs from what a build gives (run bflow, then git add it)"]


def test_a_task_that_fails_in_the_copy_fails_the_check_naming_it(repo: Project) -> None:
    repo.flowfile(FLOW + '\n[tasks.broken]\ncmd = "echo no such tool >&2; exit 3"\n'
                  'outputs = ["broken.txt"]\n')
    git(repo.root, "add", "Flowfile")
    result = repo.bflow("status", "--outputs")
    assert result.returncode == 1
    assert result.stdout.startswith(
        "broken: failed in a build of a copy of what git's index holds: exit 3\n  no such tool\n")


def test_it_builds_what_git_tracks_not_untracked_files(project: Project) -> None:
    project.flowfile("""
        [tasks.all]
        cmd = "cat {inputs} > {output}"
        inputs = ["notes/*.txt"]
        outputs = ["all.txt"]
        """)
    project.write("notes/a.txt", "a\n")
    project.build()
    git(project.root, "init", "-q")
    git(project.root, "add", "Flowfile", "notes", "all.txt")
    project.write("notes/b.txt", "b\n")  # a build here would take it in; the commit would not
    assert project.bflow("status", "--check", "--outputs").returncode == 0
    git(project.root, "add", "notes/b.txt")
    result = project.bflow("status", "--check", "--outputs")
    assert result.returncode == 1
    assert result.stdout.startswith("all.txt: differs from what a build gives")


def test_outside_git_or_with_an_untracked_flowfile_it_says_what_to_do(project: Project) -> None:
    project.flowfile(FLOW)
    project.write("src.txt", "hello\n")
    root = project.root.resolve()
    outside = project.bflow("status", "--outputs",
                            env={"GIT_CEILING_DIRECTORIES": str(root.parent)})
    assert outside.returncode == 2
    assert f"{root}: git rev-parse: fatal: not a git repository" in outside.stderr
    assert "run it in a git work tree" in outside.stderr
    git(project.root, "init", "-q")
    untracked = project.bflow("status", "--outputs")
    assert untracked.returncode == 2
    assert f"{root / 'Flowfile'}: git does not track it" in untracked.stderr
    assert "(git add Flowfile)" in untracked.stderr


def test_the_project_is_found_where_the_index_holds_its_flowfile(tmp_path: Path) -> None:
    """The Flowfile was looked for on the disk: one deleted but not staged, or left out by a
    sparse checkout, made the check of apps/web check the project above it (its stale output
    passed) or find none (`-f`, exit 2), where a clone of the index builds apps/web."""
    mono = Project(tmp_path / "mono")
    mono.write(".gitignore", ".bflow/\n")
    mono.flowfile('[tasks.top]\ncmd = "echo top > {output}"\noutputs = ["top.txt"]\n')
    mono.write("apps/web/Flowfile", FLOW)
    mono.write("apps/web/src.txt", "hello\n")
    mono.write("apps/web/.gitignore", "tmp/\n")
    web = Project(mono.root / "apps" / "web")
    mono.build()
    web.build()
    git(mono.root, "init", "-q", "-b", "main")
    git(mono.root, "add", ".")
    git(mono.root, "commit", "-q", "-m", "built")
    web.write("src.txt", "changed\n")
    git(mono.root, "add", "apps/web/src.txt")  # and not its outputs: the check fails on them
    stale = "gen/count.txt: differs from what a build gives"

    def checks_web() -> None:
        for cwd, args in ((web.root, ()), (mono.root, ("-C", "apps/web")),
                          (mono.root, ("-f", "apps/web/Flowfile"))):
            result = run_bflow(*args, "status", "--check", "--outputs", cwd=cwd)
            assert result.returncode == 1 and stale in result.stdout, \
                result.stdout + result.stderr

    (web.root / "Flowfile").unlink()
    checks_web()
    git(mono.root, "checkout", "-q", "apps/web/Flowfile")
    git(mono.root, "sparse-checkout", "set", "--no-cone", "/*", "!/apps/web/Flowfile")
    assert not (web.root / "Flowfile").exists()
    checks_web()
    git(mono.root, "sparse-checkout", "set", "apps/api")  # apps/web left out altogether
    shutil.rmtree(web.root)  # with its ignored records, which git leaves
    gone = run_bflow("-f", "apps/web/Flowfile", "status", "--outputs", cwd=mono.root)
    assert gone.returncode == 2
    assert f"{(web.root).resolve()}: no such directory, and bflow status --outputs runs git " \
           "in the project's directory (a sparse checkout leaves it out: git sparse-checkout " \
           "add it)" in gone.stderr
    git(mono.root, "sparse-checkout", "disable")
    api = Project(mono.root / "apps" / "api")  # new, not added: not the project above
    api.flowfile('[tasks.api]\ncmd = "echo api > {output}"\noutputs = ["api.txt"]\n')
    for cwd, args in ((api.root, ()), (mono.root, ("-f", "apps/api/Flowfile"))):
        untracked = run_bflow(*args, "status", "--outputs", cwd=cwd)
        assert untracked.returncode == 2
        assert f"{(api.root / 'Flowfile').resolve()}: git does not track it" in untracked.stderr
        assert "(git add Flowfile)" in untracked.stderr


def test_a_project_in_a_monorepo_reads_its_inputs_from_beside_its_root(tmp_path: Path) -> None:
    mono = Project(tmp_path / "mono")
    mono.write("common/conf.txt", "v1\n")
    mono.write("common/header.h", "#define V 1\n")
    mono.write(".gitignore", ".bflow/\n")
    mono.write("apps/web/Flowfile", """
[tasks.gen]
cmd = "cat {input} ../../common/header.h > {output}"
inputs = ["../../common/conf.txt"]
outputs = ["gen.txt"]
""")
    web = Project(mono.root / "apps" / "web")
    web.build()
    git(mono.root, "init", "-q", "-b", "main")
    git(mono.root, "add", ".")
    git(mono.root, "commit", "-q", "-m", "built")
    clone = Project(tmp_path / "clone")
    git(tmp_path, "clone", "-q", str(mono.root), str(clone.root))
    result = run_bflow("status", "--check", "--outputs", cwd=clone.root / "apps" / "web")
    assert result.returncode == 0, result.stdout + result.stderr
    for path, text in (("common/conf.txt", "v2\n"), ("common/header.h", "#define V 2\n")):
        git(clone.root, "checkout", "-q", ".")
        clone.write(path, text)  # an input, and a file the command reads beside its inputs
        result = run_bflow("status", "--check", "--outputs", cwd=clone.root / "apps" / "web")
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout.startswith("gen.txt: differs from what a build gives")


@pytest.mark.parametrize("through", ["the cache dir", "an output"])
def test_a_symlink_git_tracks_leading_out_of_the_project_is_never_written_through(
        tmp_path: Path, through: str) -> None:
    # the copy's build followed it into the real repository: it wrote the project's records
    # (a cache_dir linked to ../state), or overwrote the file an output linked to (an edit of
    # common/conf.txt not committed, lost)
    mono = Project(tmp_path / "mono")
    mono.write("common/conf.txt", "my work\n")
    mono.write("apps/web/src.txt", "v1\n")
    mono.write(".gitignore", "apps/state/\n")
    settings = '[settings]\ncache_dir = "st"\n' if through == "the cache dir" else ""
    output = "out.txt" if through == "the cache dir" else "out/res"
    mono.write("apps/web/Flowfile", f"""{settings}
[tasks.g]
cmd = "cp {{input}} {{output}}"
inputs = ["src.txt"]
outputs = ["{output}"]
""")
    web = Project(mono.root / "apps" / "web")
    (mono.root / "apps" / "state").mkdir()
    if through == "the cache dir":
        (web.root / "st").symlink_to("../state")
        web.build()
    else:
        (web.root / "out").mkdir()
        (web.root / "out" / "res").symlink_to("../../../common/conf.txt")
    git(mono.root, "init", "-q", "-b", "main")
    git(mono.root, "add", ".")
    git(mono.root, "commit", "-q", "-m", "built")
    web.write("src.txt", "v2\n")
    git(mono.root, "add", ".")
    before = {path: path.read_bytes() for path in mono.root.rglob("*")
              if path.is_file() and ".git" not in path.parts}
    result = run_bflow("status", "--check", "--outputs", cwd=web.root)
    after = {path: path.read_bytes() for path in mono.root.rglob("*")
             if path.is_file() and ".git" not in path.parts}
    assert after == before
    if through == "the cache dir":
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout.startswith("out.txt: differs from what a build gives")
    else:
        assert result.returncode == 2, result.stdout + result.stderr
        assert "out/res, an output of task 'g', is a symlink git tracks that leads out of " \
               "the project (../../../common/conf.txt)" in result.stderr


@pytest.mark.parametrize("edited", [".gitignore", ".gitattributes"])
def test_ignore_rules_and_attributes_are_the_index_s(project: Project, edited: str) -> None:
    # they were read from the disk: an edit not staged (out.txt ignored; its line endings
    # converted) passed a commit whose clone's build leaves out.txt untracked or modified
    project.flowfile("""
        [tasks.g]
        cmd = "printf 'a\\r\\n' > {output}"
        outputs = ["out.txt"]
        """)
    project.write(".gitignore", ".bflow/\n")
    project.write(".gitattributes", "out.txt -text\n")
    git(project.root, "init", "-q", "-b", "main")
    git(project.root, "add", "Flowfile", ".gitignore", ".gitattributes")
    if edited == ".gitattributes":
        project.write("out.txt", "a\n")  # not what the build gives, byte for byte
        git(project.root, "add", "out.txt")
    git(project.root, "commit", "-q", "-m", "first")
    project.write(edited, {".gitignore": ".bflow/\nout.txt\n",
                           ".gitattributes": "out.txt text\n"}[edited])
    result = run_bflow("status", "--check", "--outputs", cwd=project.root)
    assert result.returncode == 1, result.stdout + result.stderr
    problem = {".gitignore": "a build makes it, but git does not track it",
               ".gitattributes": "differs from what a build gives"}[edited]
    assert result.stdout.startswith(f"out.txt: {problem}"), result.stdout


def committed(project: Project, before_commit: Callable[[], object] = lambda: None) -> None:
    """The project built, in a new repository, its cache dir ignored, and committed."""
    project.write(".gitignore", ".bflow/\n")
    project.build()
    git(project.root, "init", "-q", "-b", "main")
    before_commit()
    git(project.root, "add", ".")
    git(project.root, "commit", "-q", "-m", "built")


def test_a_checkout_git_converts_is_compared_as_git_sees_it(project: Project) -> None:
    """`core.autocrlf`: the committed `version.txt` is what a build gives, but checked out with
    CRLF it differed byte for byte, where git (and so the build hook) sees no change; a
    committed file's executable bit, which a build sets, was never compared."""
    project.flowfile("""
        [tasks.ver]
        cmd = "echo version 1 > {output}"
        outputs = ["version.txt"]
        [tasks.tool]
        cmd = "printf 'echo hi' > {output} && chmod +x {output}"
        outputs = ["tool.sh"]
        """)
    committed(project)
    clone = project.root.parent / f"{project.root.name}-clone"
    git(project.root.parent, "-c", "core.autocrlf=true", "clone", "-q", str(project.root),
        str(clone))
    git(clone, "config", "core.autocrlf", "true")
    assert (clone / "version.txt").read_bytes() == b"version 1\r\n"
    result = run_bflow("status", "--check", "--outputs", cwd=clone)
    assert result.returncode == 0, result.stdout + result.stderr
    (clone / "tool.sh").chmod(0o644)
    git(clone, "commit", "-q", "-am", "not executable")
    result = run_bflow("status", "--check", "--outputs", cwd=clone)
    assert result.returncode == 1
    assert result.stdout == ("tool.sh: its executable bit is not what a build gives (run "
                             "bflow, then git add it)\n")


def test_what_a_clone_has_or_lacks_on_disk_is_no_internal_error(project: Project) -> None:
    """A submodule not checked out (an empty directory, as a clone without
    `--recurse-submodules` leaves it) made the copy fail: internal error, exit 3; an output
    declared through a committed symlinked directory (`gen -> real/gen`) was a path git
    refused to be asked of: exit 2, and named by the link on disk, which a sparse checkout
    leaves out: a build made it, git did not track it."""
    sub = repository_of(project.root.parent / f"{project.root.name}-sub", "f", "x\n")
    (project.root / "real/gen").mkdir(parents=True)
    (project.root / "gen").symlink_to("real/gen")
    project.flowfile("""
        [tasks.gen]
        cmd = "echo hi > {output}"
        outputs = ["gen/out.txt"]
        """)
    committed(project, lambda: git(project.root, "-c", "protocol.file.allow=always",
                                   "submodule", "add", "-q", str(sub), "vendor"))
    clone = project.root.parent / f"{project.root.name}-clone"
    git(project.root.parent, "clone", "-q", str(project.root), str(clone))
    assert (clone / "vendor").is_dir() and not any((clone / "vendor").iterdir())
    result = run_bflow("status", "--check", "--outputs", cwd=clone)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "bflow: 1 output matches what a build gives\n"
    (clone / "real/gen/out.txt").write_text("stale\n")
    git(clone, "add", "real/gen/out.txt")
    for sparse in (False, True):  # the link taken from the copy, not from the disk
        if sparse:
            git(clone, "sparse-checkout", "set", "--no-cone", "/Flowfile")
            assert not (clone / "gen").exists()
        result = run_bflow("status", "--check", "--outputs", cwd=clone)
        assert result.returncode == 1
        assert result.stdout == ("gen/out.txt: differs from what a build gives (run bflow, "
                                 "then git add it)\n")


def test_a_load_error_in_the_copy_names_the_project_s_flowfile(repo: Project) -> None:
    """An input on disk that git does not track is no file of the copy: the error named the
    copy's Flowfile, a temporary path, and said the file was on no disk. The hint to git add
    what is missing is said of that error alone, not of the project's own beside it."""
    repo.flowfile(FLOW + '\n[tasks.extra]\ncmd = "cp {input} {output}"\ninputs = ["extra.txt"]'
                         '\noutputs = ["tmp/copied.out"]\ndeps = ["shuot"]\n')
    repo.write("extra.txt", "not added\n")
    git(repo.root, "add", "Flowfile")
    result = repo.bflow("status", "--check", "--outputs")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "bflow: error: Flowfile: tasks.extra.inputs[0]: input 'extra.txt' of task 'extra' is "
        "neither on disk nor an output of any task (in the copy of the files git tracks that "
        "bflow status --outputs builds: git add what is missing)",
        "bflow: error: Flowfile: tasks.extra.deps[0]: unknown task 'shuot' (did you mean "
        "'shout'?)"]
    assert "bflow-outputs-" not in result.stderr


PROJECT_S_OWN = {
    "a cycle": '[tasks.a]\ncmd = "echo"\ndeps = ["b"]\n[tasks.b]\ncmd = "echo"\ndeps = ["a"]\n',
    "an unknown task in deps": '[tasks.a]\ncmd = "echo"\ndeps = ["cuont"]\n',
    "an unset environment variable": '[tasks.a]\ncmd = "echo {env.BFLOW_TEST_UNSET}"\n',
}


@pytest.mark.parametrize("mistake", PROJECT_S_OWN)
def test_a_load_error_no_added_file_mends_is_said_as_the_project_s_own(
        repo: Project, mistake: str) -> None:
    """Every error of the copy's project said to git add what is missing, one that no file
    mends too (a cycle, an unknown task in deps, an unset `{env.NAME}`)."""
    repo.flowfile(FLOW + PROJECT_S_OWN[mistake])
    git(repo.root, "add", "Flowfile")
    result = repo.bflow("status", "--check", "--outputs")
    assert result.returncode == 2
    assert result.stderr == repo.bflow("validate").stderr  # as the project says it
    assert "git add what is missing" not in result.stderr


def test_an_override_of_no_declared_var_names_the_project_s_flowfile(repo: Project) -> None:
    """It named the Flowfile of the temporary copy (`../bflow-outputs-.../Flowfile`)."""
    repo.flowfile(FLOW)
    git(repo.root, "add", "Flowfile")
    result = repo.bflow("status", "--check", "--outputs", "NOPE=x")
    assert result.returncode == 2
    assert result.stderr == repo.bflow("validate", "NOPE=x").stderr  # as the project says it


def test_a_syntax_error_in_the_staged_flowfile_says_to_fix_it_there(repo: Project) -> None:
    """A TOML syntax error in the Flowfile the index holds said to git add what is missing."""
    repo.write("Flowfile", "[tasks.shout\n")
    git(repo.root, "add", "Flowfile")
    repo.flowfile(FLOW)  # fixed on the disk, not staged: the check is of what the index holds
    result = repo.bflow("status", "--check", "--outputs")
    assert result.returncode == 2
    assert result.stderr.startswith("bflow: error: Flowfile:1:13: TOML syntax error: ")
    assert result.stderr.endswith(" (in the Flowfile git's index holds, which bflow status "
                                  "--outputs builds: fix it, then git add Flowfile)\n")
    assert "git add what is missing" not in result.stderr


def test_git_failing_in_a_work_tree_says_what_git_printed(repo: Project) -> None:
    """git failing inside a work tree (a filter that checking the index out runs, failing)
    said to run the check in a git work tree."""
    repo.write(".gitattributes", "src.txt filter=broken\n")
    git(repo.root, "add", ".gitattributes")
    git(repo.root, "config", "filter.broken.smudge", "false")
    git(repo.root, "config", "filter.broken.required", "true")
    result = repo.bflow("status", "--check", "--outputs")
    assert result.returncode == 2
    assert result.stderr.startswith(f"bflow: error: {repo.root.resolve()}: git checkout-index "
                                    "failed: ")
    assert "src.txt: smudge filter broken failed" in result.stderr
    assert result.stderr.endswith(" (bflow status --outputs copies and compares the files "
                                  "git's index holds with git: fix what git says, then run it "
                                  "again)\n")
    assert "git work tree" not in result.stderr


DUMP = """
    [tasks.dump]
    cmd = "./tool.sh conf/a.txt > {output}"
    inputs = ["tool.sh", "conf/a.txt"]
    outputs = ["dump.txt"]
    """
MATCH = "bflow: 1 output matches what a build gives\n"


def edited_not_staged(root: Path) -> None:
    (root / "conf/a.txt").write_text("an edit not staged\n")


def flowfile_broken_not_staged(root: Path) -> None:
    (root / "Flowfile").write_text("[tasks.dump\n")


def deleted_not_staged(root: Path) -> None:
    (root / "conf/a.txt").unlink()


def flowfile_deleted_not_staged(root: Path) -> None:
    (root / "Flowfile").unlink()


def edited_where_git_skips_it(root: Path) -> None:
    git(root, "update-index", "--skip-worktree", "conf/a.txt")
    (root / "conf/a.txt").write_text("a local edit git does not see\n")


def edited_where_git_assumes_it_unchanged(root: Path) -> None:
    git(root, "update-index", "--assume-unchanged", "conf/a.txt")
    (root / "conf/a.txt").write_text("a local edit git does not see\n")


def left_out_of_a_sparse_checkout(root: Path) -> None:
    git(root, "sparse-checkout", "set", "--no-cone", "/Flowfile", "/tool.sh", "/dump.txt")
    assert not (root / "conf").exists()


def flowfile_left_out_of_a_sparse_checkout(root: Path) -> None:
    git(root, "sparse-checkout", "set", "--no-cone", "/conf/", "/tool.sh", "/dump.txt")
    assert not (root / "Flowfile").exists()


def executable_in_the_index_only(root: Path) -> None:
    git(root, "config", "core.fileMode", "false")
    (root / "tool.sh").chmod(0o644)


def executable_on_disk_only(root: Path) -> None:
    git(root, "config", "core.fileMode", "false")
    git(root, "update-index", "--chmod=-x", "tool.sh")


def checked_out_with_crlf(root: Path) -> None:
    git(root, "config", "core.autocrlf", "true")


CHECKOUTS = [
    (edited_not_staged, 0, MATCH),
    (flowfile_broken_not_staged, 0, MATCH),
    (deleted_not_staged, 0, MATCH),
    (flowfile_deleted_not_staged, 0, MATCH),
    (edited_where_git_skips_it, 0, MATCH),
    (edited_where_git_assumes_it_unchanged, 0, MATCH),
    (left_out_of_a_sparse_checkout, 0, MATCH),
    (flowfile_left_out_of_a_sparse_checkout, 0, MATCH),
    (executable_in_the_index_only, 0, MATCH),
    (executable_on_disk_only, 1, "dump: failed in a build of a copy of what git's index holds: "
                                 "exit 126\n"),
    (checked_out_with_crlf, 1, "dump.txt: differs from what a build gives (run bflow, then "
                               "git add it)\n"),
]


@pytest.mark.parametrize(("change", "status", "stdout"), CHECKOUTS,
                         ids=[change.__name__ for change, _, _ in CHECKOUTS])
def test_the_copy_is_what_a_checkout_of_the_index_writes(
        project: Project, change: Callable[[Path], None], status: int, stdout: str) -> None:
    """The copy was of the files on disk: an edit not staged, or one git does not look at
    (skip-worktree, assume-unchanged), was built; a file a sparse checkout leaves out, or
    one deleted but not staged, was taken as deleted, and the project on disk was loaded
    first: an input the disk lacks, or a Flowfile broken by an edit not staged, failed it;
    with `core.fileMode` false the modes were the disk's, not those the index records (`git
    update-index --chmod`) and a clone gets; under `core.autocrlf` the sources kept the
    disk's line endings. The Flowfile was looked for on the disk: one deleted but not staged,
    or left out by a sparse checkout, was no project (exit 2)."""
    project.flowfile(DUMP)
    project.write("tool.sh", '#!/bin/sh\nod -c "$@"\n')
    (project.root / "tool.sh").chmod(0o755)
    project.write("conf/a.txt", "a\n")
    project.write(".gitattributes", "*.sh eol=lf\n")
    committed(project)
    change(project.root)
    result = project.bflow("status", "--check", "--outputs")
    assert result.returncode == status and result.stdout.startswith(stdout), \
        result.stdout + result.stderr


def test_a_symlink_output_is_compared_by_where_it_points(project: Project) -> None:
    """A symlink was compared by what it points to: a link to another file of the same
    content matched, and a dangling one a build makes alike was taken as not made."""
    project.flowfile("""
        [tasks.link]
        cmd = "ln -sfn a.txt {output}"
        outputs = ["out"]
        [tasks.dangling]
        cmd = "ln -sfn nowhere {output}"
        outputs = ["gone"]
        """)
    project.write("a.txt", "same\n")
    project.write("b.txt", "same\n")
    committed(project, lambda: (project.root / "out").unlink() or
              (project.root / "out").symlink_to("b.txt"))
    result = project.bflow("status", "--check", "--outputs")
    assert result.returncode == 1
    assert result.stdout == "out: differs from what a build gives (run bflow, then git add it)\n"
    git(project.root, "rm", "-q", "--cached", "out")
    (project.root / "out").unlink()
    (project.root / "out").symlink_to("a.txt")
    git(project.root, "add", "out")
    result = project.bflow("status", "--check", "--outputs")
    assert result.stdout == "bflow: all 2 outputs match what a build gives\n", result.stderr


def test_a_submodule_is_built_at_the_commit_its_gitlink_records(project: Project) -> None:
    """A submodule was copied from its work tree: a commit made in it but not staged in the
    superproject was built. An output in it that it does not track was an error (exit 2:
    the superproject's git refused the path). A gitlink to a commit the submodule lacks
    says so."""
    sub = repository_of(project.root.parent / f"{project.root.name}-lib", "v.txt", "1\n")
    project.flowfile("""
        [tasks.v]
        cmd = "cp {input} {output}"
        inputs = ["lib/v.txt"]
        outputs = ["v.txt"]
        [tasks.gen]
        cmd = "cp {input} {output}"
        inputs = ["lib/v.txt"]
        outputs = ["lib/gen.txt"]
        """)
    project.write(".gitignore", ".bflow/\n")
    git(project.root, "init", "-q", "-b", "main")
    git(project.root, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub),
        "lib")
    project.build()
    git(project.root, "add", ".")
    git(project.root, "commit", "-q", "-m", "built")
    (project.root / "lib/v.txt").write_text("2\n")
    git(project.root / "lib", "commit", "-q", "-am", "two")  # the gitlink not staged
    project.build()
    git(project.root, "add", "v.txt")
    result = project.bflow("status", "--check", "--outputs")
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "lib/gen.txt: a build makes it, but git does not track it (run bflow, then git add "
        "it, or list it in .gitignore)",
        "v.txt: differs from what a build gives (run bflow, then git add it)"]
    (project.root / "lib/.gitignore").write_text("gen.txt\n")
    git(project.root / "lib", "add", ".gitignore")
    git(project.root / "lib", "commit", "-q", "-m", "ignored")
    git(project.root, "add", "lib")
    result = project.bflow("status", "--check", "--outputs")
    assert result.stdout == MATCH, result.stdout + result.stderr
    git(project.root, "update-index", "--cacheinfo", f"160000,{'1' * 40},lib")
    result = project.bflow("status", "--check", "--outputs")
    assert result.returncode == 2
    assert result.stderr.endswith(f"lib: a submodule without the commit {'1' * 40} its gitlink "
                                  "records (git submodule update, or fetch it there)\n")
