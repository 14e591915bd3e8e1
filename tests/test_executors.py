"""Picking an executor: the URL on the command line or in the Flowfile, checked before anything
runs, and opened only when a command is about to run."""

from __future__ import annotations

from conftest import Project

UP_TO_DATE = """
[tasks.made]
cmd = "echo run >> runs.log; echo made > made.txt"
outputs = ["made.txt"]
"""


def test_a_bad_executor_url_is_a_usage_error(project: Project) -> None:
    project.flowfile(UP_TO_DATE)
    result = project.bflow("--executor", "ssh://somewhere")
    assert result.returncode == 2
    assert "expected 'local' or 'dask://HOST:PORT'" in result.stderr
    assert project.bflow("--executor", "dask://no-port").returncode == 2
    # it wrapped modulo 65536, and built through the scheduler on port 8786
    result = project.bflow("--executor", f"dask://127.0.0.1:{8786 + 65536}")
    assert result.returncode == 2 and "the port 74322 is not a number from 1 to 65535" \
        in result.stderr
    assert project.runs() == []


def test_a_bad_executor_in_the_flowfile_is_a_flowfile_error(project: Project) -> None:
    project.flowfile('[settings]\nexecutor = "dask://host"\n' + UP_TO_DATE)
    result = project.bflow("validate")
    assert result.returncode == 2
    assert "settings.executor: expected dask://HOST:PORT" in result.stderr


def test_a_build_with_nothing_to_run_never_reaches_the_executor(project: Project) -> None:
    # nothing listens on port 1: a build that tried to connect would fail
    project.flowfile(UP_TO_DATE)
    assert project.build() == ["run"]
    for args in ((), ("-v",), ("--executor", "dask://127.0.0.1:1")):
        assert project.build(*args) == []
    project.flowfile('[settings]\nexecutor = "dask://127.0.0.1:1"\n' + UP_TO_DATE)
    assert project.build() == []
    assert project.build("--executor", "local", "-B") == ["run"]
