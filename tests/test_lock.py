"""One build per project at a time: the second waits and says so, or gives up after
--lock-timeout; two concurrent builds never run a task twice."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from buildflow.errors import BuildError
from buildflow.lock import ProjectLock
from conftest import Project, bflow_env
from test_runner import wait_for

FLOW = """
[tasks.hold]
cmd = "echo hold >> runs.log; touch holding; while [ ! -e release ]; do sleep 0.02; done; echo x > {output}"
outputs = ["held.txt"]
"""


def start(project: Project, *args: str, stderr_file: Path) -> subprocess.Popen[bytes]:
    with open(stderr_file, "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "buildflow", "--plain", *args],
                                cwd=project.root, env=bflow_env(), stdout=subprocess.DEVNULL,
                                stderr=err)


def test_second_build_waits_and_runs_nothing_twice(project: Project) -> None:
    project.flowfile(FLOW)
    first = start(project, stderr_file=project.root / "first.err")
    assert wait_for(lambda: (project.root / "holding").exists())
    second = start(project, stderr_file=project.root / "second.err")
    assert wait_for(lambda: "waiting for another bflow run" in project.read("second.err"))
    assert project.read("second.err").startswith(  # information, not a warning
        f"bflow: waiting for another bflow run in this project (pid {first.pid}) to finish")
    project.write("release", "")
    assert first.wait(30) == 0 and second.wait(30) == 0
    assert project.runs() == ["hold"]


def test_lock_timeout_fails_clearly(project: Project) -> None:
    project.flowfile(FLOW)
    first = start(project, stderr_file=project.root / "first.err")
    try:
        assert wait_for(lambda: (project.root / "holding").exists())
        second = project.bflow("--lock-timeout", "0.2")
        assert second.returncode == 1
        assert "gave up after 0.2s" in second.stderr
        assert "--lock-timeout" in second.stderr
    finally:
        project.write("release", "")
        first.wait(30)
    assert project.runs() == ["hold"]


def test_lock_is_free_again_after_release(tmp_path: Path) -> None:
    said: list[str] = []
    holder = ProjectLock(tmp_path / "lock")
    holder.acquire(None, said.append)
    with pytest.raises(BuildError, match="gave up after 0s"):
        ProjectLock(tmp_path / "lock").acquire(0, said.append)
    holder.release()
    other = ProjectLock(tmp_path / "lock")
    other.acquire(0, said.append)
    other.release()
    assert said == []  # giving up at once, or getting it at once, says nothing


def test_the_wait_names_the_run_that_has_just_taken_the_lock(tmp_path: Path) -> None:
    # a run that has just taken the lock writes its pid a moment later: the waiter read the
    # file in between and named no pid (7 of 11 waits of two watchers reacting to one save)
    path = tmp_path / "lock"
    before = ProjectLock(path)  # a run before, which released it
    before.acquire(None, print)
    before.release()
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a run that has taken it, with its pid still to write
    said: list[str] = []
    waiter = threading.Thread(target=lambda: ProjectLock(path).acquire(None, said.append))
    waiter.start()
    time.sleep(0.1)
    os.pwrite(fd, b"4242\n", 0)
    assert wait_for(lambda: said, 10)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    waiter.join(10)
    assert said == [f"waiting for another bflow run in this project (pid 4242) to finish "
                    f"(lock: {path})"]
