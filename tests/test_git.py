"""Switching git branches rebuilds exactly what differs between them."""

from __future__ import annotations

import shutil

import pytest
from conftest import Project, git

FLOW = """
[tasks.shout]
foreach = "src/*.txt"
cmd = "echo {stem} >> runs.log && tr a-z A-Z < {item} > {output}"
outputs = ["build/{stem}.out"]

[tasks.join]
cmd = "echo join >> runs.log && cat {inputs} > {output}"
inputs = ["build/*.out"]
outputs = ["site.txt"]
"""

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")



def commit_files(project: Project, files: dict[str, str], message: str) -> None:
    for path, text in files.items():
        project.write(path, text)
    git(project.root, "add", "-A")
    git(project.root, "commit", "-q", "-m", message)



def test_checkout_rebuilds_exactly_what_differs(project: Project) -> None:
    root = project.root
    git(root, "init", "-q", "-b", "main")
    project.flowfile(FLOW)
    commit_files(project, {".gitignore": "build/\n.bflow/\nruns.log\nsite.txt\n",
                           "src/a.txt": "a\n", "src/b.txt": "b\n", "src/c.txt": "c\n"}, "base")
    git(root, "checkout", "-q", "-b", "feature")
    commit_files(project, {"src/b.txt": "bee\n"}, "change b")
    git(root, "checkout", "-q", "-b", "more", "main")
    commit_files(project, {"src/d.txt": "d\n"}, "add d")
    git(root, "checkout", "-q", "main")

    assert sorted(project.build()) == ["a", "b", "c", "join"]
    git(root, "checkout", "-q", "feature")
    assert sorted(project.build()) == ["b", "join"]
    assert project.read("site.txt") == "A\nBEE\nC\n"
    assert sorted(project.build()) == []
    git(root, "checkout", "-q", "main")
    assert sorted(project.build()) == ["b", "join"]
    git(root, "checkout", "-q", "feature")
    git(root, "checkout", "-q", "main")  # there and back again: nothing differs
    assert sorted(project.build()) == []
    git(root, "checkout", "-q", "more")
    assert sorted(project.build()) == ["d", "join"]
    assert project.read("site.txt") == "A\nB\nC\nD\n"
    git(root, "checkout", "-q", "main")  # d.txt goes away: its output must go with it
    assert sorted(project.build()) == ["join"]
    assert project.read("site.txt") == "A\nB\nC\n"
    assert not (root / "build/d.out").exists()


def test_a_file_git_tracks_on_the_branch_checked_out_is_never_pruned(project: Project) -> None:
    """On branch `old`, NOTES.txt is a committed file no task writes; on `new`, task `notes`
    writes it. Back on `old`, the build removed it as the output of a vanished task (a clean
    checkout of `old` has it), and a `git commit -a` would then commit its deletion."""
    root = project.root
    git(root, "init", "-q", "-b", "old")
    project.flowfile('[tasks.other]\ncmd = "cp {input} {output}"\ninputs = ["a.txt"]\n'
                     'outputs = ["a.out"]\n')
    commit_files(project, {"a.txt": "a\n", "NOTES.txt": "Release notes\n",
                           ".gitignore": ".bflow/\na.out\n"}, "old")
    git(root, "checkout", "-q", "-b", "new")
    project.flowfile(project.read("Flowfile") + '[tasks.notes]\ncmd = "echo Release notes > '
                                                '{output}"\noutputs = ["NOTES.txt"]\n')
    assert project.bflow().returncode == 0
    commit_files(project, {}, "generate NOTES.txt")
    git(root, "checkout", "-q", "old")
    result = project.bflow("--plain")
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.read("NOTES.txt") == "Release notes\n"
    assert git(root, "status", "--porcelain") == ""
    assert "left NOTES.txt in place: task 'notes' wrote it, but git tracks it" in \
        result.stdout + result.stderr
