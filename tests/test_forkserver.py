"""The tests' fork server gives what a new interpreter gives: the same output and exit status,
each run in its own directory and environment, nothing of one run left in the next."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import Project, bflow_env
from forkserver import ForkServer


@pytest.fixture(scope="module")
def server() -> ForkServer:
    return ForkServer(bflow_env())


def fresh(project: Project, *args: str, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "buildflow", *args], cwd=project.root,
                          env=bflow_env(env), capture_output=True, text=True, timeout=60)


def test_a_forked_run_prints_and_exits_as_a_new_interpreter_does(project: Project,
                                                                server: ForkServer) -> None:
    project.flowfile("""
        [tasks.hello]
        cmd = "echo hello $GREETING >> runs.log && echo > {output}"
        outputs = ["out.txt"]

        [tasks.broken]
        cmd = "echo broken >&2 && exit 3"
        """)
    for args in (["--plain", "hello"], ["--plain", "broken"], ["--plain", "nosuchtask"],
                 ["list"], ["-n"]):
        forked = server.run(args, project.root, bflow_env({"GREETING": "forked"}), 60)
        (project.root / "out.txt").unlink(missing_ok=True)
        plain = fresh(project, *args, env={"GREETING": "fresh"})
        (project.root / "out.txt").unlink(missing_ok=True)
        assert forked is not None
        assert forked.returncode == plain.returncode, args
        if args in (["--plain", "nosuchtask"], ["list"], ["-n"]):
            assert (forked.stdout, forked.stderr) == (plain.stdout, plain.stderr), args
        else:
            assert forked.stdout.split("\n", 1)[0] == plain.stdout.split("\n", 1)[0], args
    assert project.read("runs.log").split() == ["hello", "forked", "hello", "fresh"]


def test_nothing_of_a_run_reaches_the_next(project: Project, server: ForkServer) -> None:
    project.flowfile("""
        [tasks.show]
        cmd = "echo ${MARK:-unset} >> runs.log"
        always = true
        """)
    sub = project.root / "sub"
    sub.mkdir()
    for mark, where in (("first", project.root), (None, project.root), ("third", sub)):
        env = bflow_env({"MARK": mark} if mark else {})
        args = ["--plain"] if where == project.root else ["--plain", "-C", ".."]
        assert server.run(args, where, env, 60) is not None
    assert project.read("runs.log").split() == ["first", "unset", "third"]


def test_a_run_past_its_timeout_is_killed_and_raises_as_subprocess_run_does(
        project: Project, server: ForkServer) -> None:
    project.flowfile("""
        [tasks.slow]
        cmd = "sleep 3"
        """)
    with pytest.raises(subprocess.TimeoutExpired):
        server.run(["--plain"], project.root, bflow_env(), 1)
    done = server.run(["list"], project.root, bflow_env(), 60)  # the server serves on
    assert done is not None and done.returncode == 0 and "slow" in done.stdout


def test_a_run_that_sets_what_python_reads_at_start_is_left_to_a_new_interpreter(
        project: Project, server: ForkServer) -> None:
    project.flowfile("""
        [tasks.a]
        cmd = "true"
        """)
    assert server.run(["list"], project.root, bflow_env({"PYTHONPATH": "elsewhere"}), 60) \
        is None
