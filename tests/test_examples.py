"""The shipped examples build, stay built, and rebuild exactly what an edit touches."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, bflow_env, run_bflow

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


def test_python_tasks_example_builds_its_chart_by_flowfile_and_by_script(tmp_path: Path) -> None:
    root = tmp_path / "python-tasks"
    shutil.copytree(REPO / "examples" / "python-tasks", root,
                    ignore=shutil.ignore_patterns("build", "public", ".bflow", "__pycache__"))
    no_ci = {"CI": ""}
    first = run_bflow("--plain", cwd=root, env=no_ci)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "skip   publish (when.env CI is not set)" in first.stdout
    svg = (root / "build/chart.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<rect") == 3 and ">2025</text>" in svg
    assert "48 rows" in run_bflow("log", "summarize:data/sales-2024.csv", cwd=root).stdout

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "build.py", *args], cwd=root,
                              env=bflow_env(no_ci), capture_output=True, text=True, timeout=60)

    assert "0 ran, 4 up to date" in script("--plain").stdout  # the same tasks and records
    data = root / "data" / "sales-2025.csv"
    data.write_text(data.read_text() + "2025-12,north,1000.00\n")
    edited = script("--json")
    assert edited.returncode == 0, edited.stdout + edited.stderr
    started = [line for line in edited.stdout.splitlines() if '"task_started"' in line]
    assert len(started) == 2 and "summarize:data/sales-2025.csv" in started[0] \
        and '"chart"' in started[1]
    published = run_bflow("publish", cwd=root, env={"CI": "true"})
    assert published.returncode == 0, published.stdout + published.stderr
    assert (root / "public/chart.svg").read_text() == (root / "build/chart.svg").read_text()
