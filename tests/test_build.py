"""`bflow build` end to end: real commands, runs counted through a log the commands append to."""

from __future__ import annotations

from conftest import Project

CHAIN = """
[tasks.gen]
cmd = "echo gen >> runs.log && cat {input} > {output}"
inputs = ["src.txt"]
outputs = ["build/gen.txt"]

[tasks.upper]
cmd = "echo upper >> runs.log && tr a-z A-Z < {input} > {output}"
inputs = ["build/gen.txt"]
outputs = ["build/upper.txt"]
"""


def test_second_build_runs_nothing(project: Project) -> None:
    project.flowfile(CHAIN)
    project.write("src.txt", "hello\n")
    assert project.bflow().returncode == 0
    assert project.runs() == ["gen", "upper"]
    assert project.read("build/upper.txt") == "HELLO\n"
    assert project.bflow().returncode == 0
    assert project.runs() == ["gen", "upper"]


def test_touch_without_change_runs_nothing(project: Project) -> None:
    project.flowfile(CHAIN)
    source = project.write("src.txt", "hello\n")
    project.bflow()
    source.write_text("hello\n")
    assert project.bflow().returncode == 0
    assert project.runs() == ["gen", "upper"]


def test_identical_output_stops_propagation(project: Project) -> None:
    project.flowfile(CHAIN.replace("cat {input} > {output}", "head -c 3 {input} > {output}"))
    source = project.write("src.txt", "hello\n")
    project.bflow()
    source.write_text("help!\n")  # same first three bytes: gen reruns, upper is cut off
    project.bflow()
    assert project.runs() == ["gen", "upper", "gen"]
