"""Outputs of tasks that no longer exist are removed before a build, so globs match exactly
what a clean build would see; edited ones are left alone."""

from __future__ import annotations

from conftest import Project
from test_git import FLOW



def test_removed_source_removes_its_output_and_reruns_the_join(project: Project) -> None:
    project.flowfile(FLOW)
    project.write("src/a.txt", "a\n")
    doomed = project.write("src/d.txt", "d\n")
    assert project.bflow().returncode == 0
    assert project.read("site.txt") == "A\nD\n"
    doomed.unlink()
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed build/d.out" in result.stderr
    assert not (project.root / "build/d.out").exists()
    assert project.read("site.txt") == "A\n"
    assert sorted(project.runs()[:2]) == ["a", "d"] and project.runs()[2:] == ["join", "join"]
    assert project.bflow().returncode == 0
    assert sorted(project.runs()[:2]) == ["a", "d"] and project.runs()[2:] == ["join", "join"]


def test_an_edited_orphan_is_left_in_place(project: Project) -> None:
    project.flowfile(FLOW)
    project.write("src/a.txt", "a\n")
    doomed = project.write("src/d.txt", "d\n")
    project.bflow()
    project.write("build/d.out", "mine now\n")
    doomed.unlink()
    result = project.bflow()
    assert "left build/d.out in place" in result.stderr
    assert project.read("build/d.out") == "mine now\n"
    assert project.read("site.txt") == "A\nmine now\n"


def test_dry_run_removes_nothing(project: Project) -> None:
    project.flowfile(FLOW)
    project.write("src/a.txt", "a\n")
    doomed = project.write("src/d.txt", "d\n")
    project.bflow()
    doomed.unlink()
    assert project.bflow("-n").returncode == 0
    assert (project.root / "build/d.out").exists()


CHAINED = """
[tasks.each]
foreach = "src/*.txt"
cmd = "cat {item} > {output}"
outputs = ["gen/{stem}.out"]

[tasks.again]
foreach = "gen/*.out"
cmd = "cat {item} > {output}"
outputs = ["gen2/{stem}.txt"]

[tasks.join]
cmd = "cat {inputs} > {output}"
inputs = ["gen2/*.txt"]
outputs = ["site.txt"]
"""


def test_a_removed_source_removes_outputs_down_a_chain_of_foreach_tasks(project: Project) -> None:
    project.flowfile(CHAINED)
    project.write("src/a.txt", "a\n")
    doomed = project.write("src/d.txt", "d\n")
    assert project.bflow().returncode == 0
    doomed.unlink()
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert not (project.root / "gen2/d.txt").exists()
    assert project.read("site.txt") == "a\n"
