"""`--report FILE`: the page in a real headless Chromium shows every task with its state and
the DAG as SVG, follows a build live (it reloads itself while the build runs, not after), and
stays a few MB at 10,000 tasks with `foreach` instances grouped."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Browser, Navigated, chromium
from conftest import Project, bflow_env

import buildflow
from buildflow import events as ev
from buildflow.engine import selected
from buildflow.report.page import PageWriter


@pytest.fixture
def browser() -> Iterator[Browser]:
    binary = chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    opened = Browser(binary)
    try:
        yield opened
    finally:
        opened.close()


STATES = """JSON.stringify(document.readyState == "complete" && document.body
    && document.body.dataset.build && {
    origin: performance.timeOrigin,
    build: document.body.dataset.build,
    svg: document.querySelectorAll("svg").length,
    groups: [...document.querySelectorAll("[data-group]")]
            .map(e => [e.dataset.group, e.dataset.state]),
    tasks: Object.fromEntries([...document.querySelectorAll("[data-task]")]
                              .map(e => [e.dataset.task, e.dataset.state]))})"""


def look(browser: Browser) -> dict[str, object] | None:
    """What the page shows, or None while it is still loading or reloading itself."""
    import json

    try:
        seen = json.loads(browser.evaluate(STATES) or "false")
    except Navigated:
        return None
    return seen or None


def look_until_loaded(browser: Browser, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while (found := look(browser)) is None:
        assert time.monotonic() < deadline, "the page never finished loading"
        time.sleep(0.1)
    return found


def distinct_colours(png: bytes) -> int:
    """How many different byte values the screenshot's pixel rows hold (a blank page: two or
    three, the filter bytes and the one colour)."""
    chunks, offset = [], 8
    while offset < len(png):
        length, kind = struct.unpack(">I4s", png[offset:offset + 8])
        if kind == b"IDAT":
            chunks.append(png[offset + 8:offset + 8 + length])
        offset += 12 + length
    return len(set(zlib.decompress(b"".join(chunks))))


def test_the_page_follows_a_build_live_then_stops_reloading(project: Project,
                                                            browser: Browser) -> None:
    project.flowfile("""
        [tasks.first]
        cmd = ["until [ -e go-first ]; do sleep 0.05; done",
               "echo first >> runs.log && echo > {output}"]
        outputs = ["first.txt"]

        [tasks.second]
        cmd = ["until [ -e go-second ]; do sleep 0.05; done",
               "echo second >> runs.log && cat {input} > {output}"]
        inputs = ["first.txt"]
        outputs = ["second.txt"]

        [tasks.beside]
        cmd = "sleep 0.5 && echo beside >> runs.log"

        [tasks.all]
        deps = ["second", "beside"]
        """)
    page = project.root / "page.html"
    build = subprocess.Popen([sys.executable, "-m", "buildflow", "-j2", "--plain", "--report",
                              "page.html"], cwd=project.root, env=bflow_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while not page.exists():
        assert time.monotonic() < deadline and build.poll() is None
        time.sleep(0.05)
    browser.open(page.as_uri())
    seen = []
    try:
        # Each task goes on only once the page has shown it running (and `second` pending,
        # then running): what the page shows is waited for, however slow the machine.
        while build.poll() is None:
            assert time.monotonic() < deadline + 60, "the build did not end"
            if (found := look(browser)) is not None:
                seen.append(found)
                states = found["tasks"]
                assert isinstance(states, dict)
                if states["first"] == "running" and states["second"] == "pending":
                    (project.root / "go-first").touch()
                if states["second"] == "running":
                    (project.root / "go-second").touch()
            time.sleep(0.1)
    finally:
        if build.poll() is None:
            build.kill()
    assert build.wait() == 0, build.stdout.read() if build.stdout else ""
    running = [found for found in seen if found["build"] == "running"]
    assert len({found["origin"] for found in running}) >= 2  # it reloaded while running
    second = [found["tasks"]["second"] for found in running]  # type: ignore[index]
    assert "pending" in second and "running" in second
    assert any(found["tasks"]["first"] == "ok" for found in running)  # type: ignore[index]
    time.sleep(1.5)  # the last rewrite, then a reload at most a second later
    final = look_until_loaded(browser)
    assert final["build"] == "finished"
    time.sleep(2.5)
    assert look(browser) == final  # the final page no longer reloads
    assert final["tasks"] == {"first": "ok", "second": "ok", "beside": "ok", "all": "ok"}
    assert final["svg"] == 2  # the DAG and the timeline
    assert distinct_colours(browser.screenshot()) > 10
    assert sorted(project.runs()) == ["beside", "first", "second"]


def test_a_failed_build_shows_failed_and_skipped_tasks(project: Project,
                                                       browser: Browser) -> None:
    project.flowfile("""
        [tasks.broken]
        cmd = "exit 1"
        outputs = ["b.txt"]

        [tasks.after]
        cmd = "echo after >> runs.log"
        inputs = ["b.txt"]

        [tasks.fine]
        cmd = "echo fine >> runs.log"
        """)
    assert project.build("-j1", "--report", "page.html", status=1) == []
    browser.open((project.root / "page.html").as_uri())
    found = look_until_loaded(browser)
    assert found["build"] == "finished"
    assert found["tasks"] == {"broken": "failed", "after": "skipped", "fine": "skipped"}


def test_ten_thousand_tasks_are_grouped_and_the_page_stays_small(tmp_path: Path,
                                                                 browser: Browser) -> None:
    for number in range(10_000):
        (tmp_path / "src" / f"{number // 100}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / f"{number // 100}" / f"f{number}.txt").write_text("x")
    project = buildflow.from_dict({"tasks": {
        "copy": {"foreach": "src/**/*.txt", "cmd": "cp {item} {output}",
                 "outputs": ["out/{rel}"]},
        "pack": {"cmd": "cat {inputs} > {output}", "inputs": ["out/**/*.txt"],
                 "outputs": ["all.txt"]}}}, root=tmp_path)
    names = selected(project)
    path = tmp_path / "page.html"
    warnings: list[str] = []
    writer = PageWriter(str(path), project, names, warn=warnings.append)
    writer.handle(ev.BuildStarted(total=len(names), jobs=2))
    for name in names[:4000]:
        writer.handle(ev.TaskStarted(name, ()))
        writer.handle(ev.TaskFinished(name, 0.01, 1, ""))
    writer.handle(ev.TaskStarted(names[4000], ()))
    writer.close()
    writer._write()
    assert warnings == []
    assert path.stat().st_size < 4_000_000
    browser.open(path.as_uri())
    found = look_until_loaded(browser)  # a running build's page reloads itself every second
    tasks = found["tasks"]
    assert isinstance(tasks, dict) and len(tasks) == 10_001
    assert list(tasks.values()).count("ok") == 4000 and tasks[names[4000]] == "running"
    assert found["groups"] == [["copy", "running"]]


@pytest.mark.output_cache
def test_the_summary_counts_restored_tasks(project: Project) -> None:
    # as the build's own last line does; the page left them out of every count
    project.flowfile("""
        [tasks.a]
        cmd = "echo a > a.out"
        outputs = ["a.out"]
        [tasks.b]
        cmd = "cat a.out > b.out"
        inputs = ["a.out"]
        outputs = ["b.out"]
        """)
    assert project.bflow().returncode == 0
    for path in ("a.out", "b.out"):
        (project.root / path).unlink()
    result = project.bflow("--report", "page.html")
    assert "bflow: 0 ran, 2 restored, 0 up to date in" in result.stdout
    assert "<p class=summary>Build succeeded: 0 ran, 2 restored, 0 up to date, 0 failed, " \
           "0 skipped in" in project.read("page.html")
