"""The shortcuts that make large no-op builds fast give the same answers as the slow paths:
the project cache after a clean build, per-build stat memo, the fresh fast path of staleness,
and the compacted state. Runs are counted from the commands' log file."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import Project

from buildflow.flowcache import RACY_WINDOW_NS

FLOWFILE = """\
[tasks.copy]
foreach = "src/*.txt"
cmd = "cp {item} {output} && echo {stem} >> runs.log"
outputs = ["out/{stem}.out"]

[tasks.join]
cmd = "cat {inputs} > {output} && echo join >> runs.log"
inputs = ["out/*.out"]
outputs = ["all.out"]
"""


def _settle(directory: Path) -> None:
    """Wait until the directory's last change is older than the flow cache's racy window."""
    deadline = time.monotonic() + 30
    while time.time_ns() - os.stat(directory).st_ctime_ns <= RACY_WINDOW_NS:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_the_first_build_after_a_clean_stores_the_project_cache(project: Project) -> None:
    project.flowfile(FLOWFILE.replace('"out/*.out"', '"out/a.out"'))
    project.write("src/a.txt", "a\n")
    _settle(project.root / "src")
    assert project.bflow().returncode == 0
    assert sorted(project.runs()) == ["a", "join"]
    assert (project.root / ".bflow" / "flowcache").is_file()
    assert project.bflow("-n").returncode == 0
    assert project.bflow().returncode == 0
    assert sorted(project.runs()) == ["a", "join"]
