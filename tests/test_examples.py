"""The shipped examples build, stay built, and rebuild exactly what an edit touches."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from conftest import REPO, run_bflow

# A compiler wrapper that logs which file each compile or link produces, then runs gcc.
CC_WRAPPER = """#!/bin/sh
for arg in "$@"; do case "$prev" in -o) echo "$arg" >> runs.log;; esac; prev=$arg; done
exec gcc "$@"
"""


def runs(root: Path) -> list[str]:
    log = root / "runs.log"
    return log.read_text().split() if log.exists() else []


def test_flowfile_example_builds_and_a_second_run_does_nothing(tmp_path: Path) -> None:
    shutil.copy(REPO / "Flowfile.example", tmp_path / "Flowfile.example")
    shutil.copytree(REPO / "examples" / "site", tmp_path / "examples" / "site")
    first = run_bflow("-f", "Flowfile.example", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert '"event": "task_finished"' in first.stdout
    index = (tmp_path / "build/site/index.html").read_text()
    assert "<h1>buildflow example site</h1>" in index and "<p>version" in index
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "build").rglob("*")}
    second = run_bflow("-f", "Flowfile.example", "--json", cwd=tmp_path)
    assert second.returncode == 0
    assert '"task_finished"' not in second.stdout and '"task_started"' not in second.stdout
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "build").rglob("*")} == before


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_c_project_header_edit_rebuilds_exactly_its_includers(tmp_path: Path) -> None:
    root = tmp_path / "c-project"
    shutil.copytree(REPO / "examples" / "c-project", root,
                    ignore=shutil.ignore_patterns("build", ".bflow"))
    wrapper = root / "cc-logged"
    wrapper.write_text(CC_WRAPPER)
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)

    def build() -> list[str]:
        before = len(runs(root))
        result = run_bflow("CC=./cc-logged", cwd=root)
        assert result.returncode == 0, result.stdout + result.stderr
        return sorted(runs(root)[before:])

    assert build() == ["build/count.o", "build/greet", "build/greeting.o", "build/main.o"]
    assert build() == []
    header = root / "include" / "count.h"
    header.write_text(header.read_text() + "/* a comment changes no object */\n")
    # Both includers recompile to identical bytes, so the link is cut off.
    assert build() == ["build/count.o", "build/main.o"]
    header = root / "include" / "greeting.h"
    header.write_text(header.read_text().replace('"hello"', '"howdy"'))
    assert build() == ["build/greet", "build/greeting.o", "build/main.o"]
    assert build() == []
