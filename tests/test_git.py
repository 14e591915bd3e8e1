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
