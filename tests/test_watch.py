"""`bflow watch`: the loop with a scripted change source, then the real command on real
filesystem events. Runs are counted through a log the commands append to; every wait is on a
condition with a generous deadline."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from buildflow import observer
from buildflow.errors import EXIT_INTERRUPTED, EXIT_OK
from buildflow.observer import WatchdogSource, make_observer
from buildflow.project import load
from buildflow.watch import Watcher
from buildflow.watchset import Change, WatchSet
from conftest import Project, bflow_env, terminal_env
from test_faults import build_in_background
from test_interrupts import read_all
from test_one_decision import PAUSED_READER
from test_runner import gone, process_state

DEADLINE = 30.0
CONCAT = """
[tasks.cat]
cmd = "echo cat >> runs.log && cat {inputs} > {output}"
inputs = ["src/*.txt"]
outputs = ["out/all.txt"]
"""
COUNT = """
[tasks.count]
cmd = "echo count >> runs.log && wc -l < {input} > {output}"
inputs = ["out/all.txt"]
outputs = ["out/count.txt"]
"""


# --- the loop, with a scripted change source --------------------------------------------

class ScriptedSource:
    """Hands out scripted changes; None stands for a quiet period, and a callable makes its
    change (on disk too) when handed out. When the script runs out while the loop waits for
    the next change, it is Ctrl-C."""

    def __init__(self, on_watch: Callable[[set[tuple[str, bool]]], None] = lambda roots: None
                 ) -> None:
        self.script: list[Change | Callable[[], Change] | None] = []
        self.roots: set[tuple[str, bool]] = set()
        self.on_watch = on_watch

    def watch(self, roots: object) -> None:
        self.roots = set(roots)  # type: ignore[call-overload]
        self.on_watch(self.roots)

    def get(self, timeout: float | None) -> Change | None:
        if not self.script:
            if timeout is None:
                raise KeyboardInterrupt
            return None
        entry = self.script.pop(0)
        return entry() if callable(entry) else entry


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def idle(self, watched: WatchSet, exit_status: int) -> None:
        self.lines.append(f"idle {exit_status}")

    def changed(self, paths: list[str]) -> None:
        self.lines.append("changed " + " ".join(paths))

    def reloaded(self) -> None:
        self.lines.append("reloaded")

    def invalid(self, message: str) -> None:
        self.lines.append("invalid " + message)

    def error(self, message: str) -> None:
        self.lines.append("error " + message)

    def reports(self, kind: str) -> int:
        return sum(line.split()[0] == kind for line in self.lines)


def make_watcher(project: Project, source: ScriptedSource, status: Recorder,
                 on_build: Callable[[int], None] = lambda n: None) -> tuple[Watcher, list[int]]:
    builds: list[int] = []

    def build(current: object) -> int:
        builds.append(len(builds) + 1)
        on_build(len(builds))
        return EXIT_OK

    flowfile = project.root / "Flowfile"
    watcher = Watcher(load(flowfile), [], source=source, status=status, build=build,
                      load=lambda: load(flowfile))
    return watcher, builds


@pytest.fixture
def concat(project: Project) -> Project:
    project.flowfile(CONCAT)
    project.write("src/a.txt", "a\n")
    return project


def change(project: Project, path: str, structural: bool = False) -> Change:
    return Change(str(project.root / path), structural)


def test_a_burst_of_changes_is_one_build(concat: Project) -> None:
    source, status = ScriptedSource(), Recorder()
    watcher, builds = make_watcher(concat, source, status)
    source.script = [change(concat, "src/a.txt")] * 20 + [None]
    assert watcher.run() == EXIT_OK
    assert builds == [1, 2]
    assert status.lines == ["idle 0", "changed src/a.txt", "idle 0"]


def test_outputs_and_the_cache_dir_never_trigger_a_build(concat: Project) -> None:
    concat.flowfile(CONCAT + COUNT)  # out/all.txt: an output, and an input of `count`
    source, status = ScriptedSource(), Recorder()
    watcher, builds = make_watcher(concat, source, status)
    source.script = [change(concat, "out/all.txt"), None, change(concat, "out/all.txt", True),
                     None, change(concat, ".bflow/logs/cat.log"), None,
                     change(concat, "runs.log"), None, change(concat, "src/a.txt"), None]
    watcher.run()
    assert builds == [1, 2]
    assert status.lines == ["idle 0", "changed src/a.txt", "idle 0"]


def test_changes_during_a_build_make_exactly_one_more_build(concat: Project) -> None:
    source, status = ScriptedSource(), Recorder()

    def during(number: int) -> None:
        if number == 1:
            source.script += [change(concat, "src/a.txt"), change(concat, "Flowfile"),
                              change(concat, "src/a.txt"), None]

    watcher, builds = make_watcher(concat, source, status, during)
    watcher.run()
    assert builds == [1, 2]
    assert status.lines[1:] == ["reloaded", "changed src/a.txt", "idle 0"]


def test_a_source_deleted_during_a_build_builds_again(concat: Project) -> None:
    # the project loaded after the build already lacked the instance, so the deletion's
    # event, judged by it, was no change: its output stayed for the glob that reads it
    concat.flowfile(UPPER)
    concat.write("src/b.txt", "b\n")
    source, status = ScriptedSource(), Recorder()

    def during(number: int) -> None:
        if number == 1:
            (concat.root / "src" / "b.txt").unlink()
            source.script += [change(concat, "src/b.txt", structural=True), None]

    watcher, builds = make_watcher(concat, source, status, during)
    assert watcher.run() == EXIT_OK
    assert builds == [1, 2]


def test_an_instance_gone_that_the_build_never_ran_builds_nothing_more(
        concat: Project) -> None:
    """`gen` rewrote its directory without `b`, and the build dropped `up:src/b.txt` before it
    ran (as a foreach over files a build writes does): the reload lacking it made watch build
    a second time, running `always` tasks and hooks again."""
    concat.flowfile(UPPER)
    concat.write("src/b.txt", "b\n")
    source, status = ScriptedSource(), Recorder()
    builds: list[int] = []

    def build(current: object) -> int:
        builds.append(len(builds) + 1)
        if len(builds) == 1:
            (concat.root / "src" / "b.txt").unlink()  # gone before its instance ran
        return EXIT_OK

    flowfile = concat.root / "Flowfile"
    watcher = Watcher(load(flowfile), [], source=source, status=status, build=build,
                      load=lambda: load(flowfile), ran=lambda: ["up:src/a.txt", "join"])
    assert watcher.run() == EXIT_OK
    assert builds == [1]


def edited_during_the_first_build(project: Project, flowfile: str, edit: Callable[[], Change],
                                  ran: list[str]) -> list[int]:
    """The builds of a watch whose first build, running only `ran`, sees `edit` made meanwhile
    (its event comes after the build, as the observer queues it)."""
    project.flowfile(flowfile)
    source, status = ScriptedSource(), Recorder()
    builds: list[int] = []

    def build(current: object) -> int:
        builds.append(len(builds) + 1)
        if len(builds) == 1:
            source.script += [edit(), None]
        return EXIT_OK

    path = project.root / "Flowfile"
    watcher = Watcher(load(path), [], source=source, status=status, build=build,
                      load=lambda: load(path), ran=lambda: ran)
    assert watcher.run() == EXIT_OK
    return builds


def test_a_file_a_glob_matched_deleted_during_a_build_builds_again(concat: Project) -> None:
    # the project loaded after the build already lacked it in `cat`'s inputs, so the
    # deletion's event, judged by that project, changed nothing: out/all.txt kept b's line
    concat.write("src/b.txt", "b\n")

    def delete() -> Change:
        (concat.root / "src/b.txt").unlink()
        return change(concat, "src/b.txt", structural=True)

    assert edited_during_the_first_build(concat, CONCAT, delete, ran=["cat"]) == [1, 2]


def test_an_item_deleted_during_a_build_that_did_not_run_its_instance_builds_again(
        concat: Project) -> None:
    concat.write("src/b.txt", "b\n")

    def delete() -> Change:
        (concat.root / "src/b.txt").unlink()
        return change(concat, "src/b.txt", structural=True)

    assert edited_during_the_first_build(concat, UPPER, delete, ran=[]) == [1, 2]


def test_a_python_task_s_module_edited_during_a_build_builds_again(concat: Project) -> None:
    concat.write("tools/shout.py", "def shout(ctx):\n    pass\n")

    def edit() -> Change:
        concat.write("tools/shout.py", "def shout(ctx):\n    print()\n")
        return change(concat, "tools/shout.py")

    assert edited_during_the_first_build(concat, PY_TASK, edit, ran=[]) == [1, 2]


def test_a_new_file_no_glob_matches_after_a_build_that_found_instances_builds_nothing(
        concat: Project) -> None:
    """A build that found instances of a foreach over what it wrote leaves a project that
    differs from the one it loaded; a later file no glob matches is still no change."""
    def write() -> Change:
        concat.write("gen/a.txt", "a\n")  # as `gen` writes it
        concat.write("notes.md", "n\n")
        return change(concat, "notes.md", structural=True)

    assert edited_during_the_first_build(concat, GENERATED, write, ran=["gen"]) == [1]
    assert "up:gen/a.txt" in load(concat.root / "Flowfile").tasks


GENERATED = """
[tasks.gen]
cmd = "mkdir -p gen && echo a > gen/a.txt"
outputs = ["gen/"]
[tasks.up]
foreach = "gen/*.txt"
cmd = "tr a-z A-Z < {item} > {output}"
outputs = ["out/{stem}.up"]
"""


def test_the_build_again_for_a_task_gone_is_the_one_more_build_changes_make(
        concat: Project) -> None:
    """A task the build ran is gone, so watch builds again; the changes made during the
    first build were judged after that second one, against what it left, and made a third."""
    concat.flowfile(UPPER)
    concat.write("src/b.txt", "b\n")
    source, status = ScriptedSource(), Recorder()
    builds: list[int] = []
    ran: list[str] = []

    def build(current: object) -> int:
        builds.append(len(builds) + 1)
        if len(builds) == 1:
            ran[:] = ["up:src/a.txt", "up:src/b.txt", "join"]
            (concat.root / "src" / "b.txt").unlink()
            concat.write("src/z.txt", "z\n")
            source.script += [change(concat, "src/b.txt", structural=True),
                              change(concat, "src/z.txt", structural=True), None]
        else:
            ran[:] = ["up:src/z.txt", "join"]
        return EXIT_OK

    flowfile = concat.root / "Flowfile"
    watcher = Watcher(load(flowfile), [], source=source, status=status, build=build,
                      load=lambda: load(flowfile), ran=lambda: ran)
    assert watcher.run() == EXIT_OK
    assert builds == [1, 2]


def test_the_trace_or_page_a_build_writes_never_makes_one(concat: Project) -> None:
    """`watch --trace src/trace.txt` beside `inputs = ["src/*.txt"]`, or any glob the file
    matches: each build rewrote it, and its event made the next build, for ever."""
    trace = concat.root / "src" / "trace.txt"
    source, status = ScriptedSource(), Recorder()
    builds: list[int] = []

    def build(current: object) -> int:
        builds.append(len(builds) + 1)
        trace.write_text(f"build {len(builds)}\n")
        if len(builds) < 3:  # bounded: a loop fails the test rather than hanging it
            source.script += [change(concat, "src/trace.txt", structural=len(builds) == 1),
                              None]
        return EXIT_OK

    flowfile = concat.root / "Flowfile"
    watcher = Watcher(load(flowfile), [], source=source, status=status, build=build,
                      load=lambda: load(flowfile), written=[str(trace)])
    assert watcher.run() == EXIT_OK
    assert builds == [1]


def test_the_flag_a_when_exists_names_is_watched(concat: Project) -> None:
    """`when = { exists = "deploy.key" }`: the flag appearing made no build, where a plain
    `bflow` then runs the task."""
    concat.flowfile(CONCAT.replace('outputs = ["out/all.txt"]',
                                   'outputs = ["out/all.txt"]\nwhen = { exists = "deploy.key" }'))
    source, status = ScriptedSource(), Recorder()
    watcher, builds = make_watcher(concat, source, status)
    concat.write("deploy.key", "key\n")
    source.script = [change(concat, "deploy.key", structural=True), None]
    assert watcher.run() == EXIT_OK
    assert builds == [1, 2]


def test_a_new_file_no_glob_matches_does_not_build(concat: Project) -> None:
    source, status = ScriptedSource(), Recorder()
    watcher, builds = make_watcher(concat, source, status)
    concat.write("src/notes.md", "x")
    source.script = [change(concat, "src/notes.md", True), None]
    watcher.run()
    assert builds == [1]
    concat.write("src/b.txt", "b\n")
    source.script = [change(concat, "src/b.txt", True), None]
    watcher.run()
    assert builds == [1, 2, 3]
    assert "changed src/b.txt" in status.lines


def test_a_broken_flowfile_is_reported_and_the_last_good_one_kept(concat: Project) -> None:
    source, status = ScriptedSource(), Recorder()
    watcher, builds = make_watcher(concat, source, status)
    concat.write("Flowfile", "[tasks.cat\n")
    source.script = [change(concat, "Flowfile"), None, change(concat, "src/a.txt"), None]
    watcher.run()
    assert builds == [1]  # the input change builds nothing: a plain build would stop at 2
    flowfile = os.path.relpath(concat.root / "Flowfile")  # as named from where the watch runs
    assert any(line.startswith(f"invalid {flowfile}:1") and "TOML syntax error" in line
               for line in status.lines)
    assert watcher.project.tasks["cat"].outputs == ("out/all.txt",)
    concat.flowfile(CONCAT.replace("out/all.txt", "out/both.txt"))
    source.script = [change(concat, "Flowfile"), None]
    watcher.run()
    assert builds == [1, 2, 3] and status.lines[-2:] == ["reloaded", "idle 0"]
    assert watcher.project.tasks["cat"].outputs == ("out/both.txt",)


def test_an_input_named_on_its_own_that_is_deleted_builds_nothing_until_it_is_back(
        project: Project) -> None:
    # as a plain build, which stops at the check made at load (exit 2, nothing runs)
    project.flowfile(CONCAT.replace('["src/*.txt"]', '["src/a.txt"]'))
    project.write("src/a.txt", "a\n")
    source, status = ScriptedSource(), Recorder()
    watcher, builds = make_watcher(project, source, status)
    (project.root / "src" / "a.txt").unlink()
    source.script = [change(project, "src/a.txt", True), None]
    watcher.run()
    assert builds == [1]
    assert any(line.startswith("invalid ") and "src/a.txt" in line for line in status.lines)
    project.write("src/a.txt", "back\n")
    source.script = [change(project, "src/a.txt", True), None]
    watcher.run()
    assert builds == [1, 2, 3]


def test_a_computed_var_is_computed_again_for_every_build(project: Project) -> None:
    project.flowfile("""
        [vars]
        VER = { sh = "cat ver.txt" }
        """ + CONCAT.replace("echo cat", "echo cat-{VER}"))
    project.write("ver.txt", "v1\n")
    project.write("src/a.txt", "a\n")
    source, status = ScriptedSource(), Recorder()
    watcher, builds = make_watcher(project, source, status)
    project.write("ver.txt", "v2\n")  # not an input: read at the next build's load
    project.write("src/a.txt", "b\n")
    source.script = [change(project, "src/a.txt"), None]
    watcher.run()
    assert watcher.project.tasks["cat"].commands[0].startswith("echo cat-v2 ")


def test_a_directory_of_an_input_made_again_is_watched_while_the_flowfile_cannot_load(
        concat: Project) -> None:
    # with `data` gone the Flowfile does not load, so the watches stayed as they were: the
    # file written in the new `data` made no event, and the watch idled on the old output
    concat.flowfile('[tasks.c]\ncmd = "cat {inputs} > {output}"\ninputs = ["data/x.txt"]\n'
                    'outputs = ["out.txt"]\n')
    concat.write("data/x.txt", "v1\n")
    data = concat.root / "data"
    placed: list[set[tuple[str, bool]]] = []  # the watches asked for, each time
    source, status = ScriptedSource(on_watch=placed.append), Recorder()
    watcher, builds = make_watcher(concat, source, status)
    made_at = []

    def delete() -> Change:
        shutil.rmtree(data)
        return change(concat, "data", structural=True)

    def make() -> Change:
        data.mkdir()
        made_at.append(len(placed))
        return change(concat, "data", structural=True)

    def write() -> Change:  # the new `data` watched since it was made, else no event comes
        assert any((str(data), True) in roots for roots in placed[made_at[0]:])
        concat.write("data/x.txt", "v2\n")
        return change(concat, "data/x.txt", structural=True)

    source.script = [delete, None, make, None, write, None]
    assert watcher.run() == EXIT_OK
    assert builds == [1, 2] and status.reports("invalid") == 1


def test_a_broken_flowfile_is_reported_once_per_state(concat: Project) -> None:
    source, status = ScriptedSource(), Recorder()
    watcher, builds = make_watcher(concat, source, status)
    concat.write("Flowfile", "[tasks.cat\n")
    source.script = [change(concat, "Flowfile"), None]
    for name in ("b", "c", "d"):  # new files the globs may match: each retries the reload
        concat.write(f"src/{name}.txt", f"{name}\n")
        source.script += [change(concat, f"src/{name}.txt", True), None]
    source.script += [change(concat, "Flowfile"), None]  # touched, the same bytes
    watcher.run()
    assert status.reports("invalid") == 1
    concat.write("Flowfile", "[tasks.cat\n\n")  # other bytes, the same error: said again
    concat.write("src/e.txt", "e\n")
    source.script = [change(concat, "Flowfile"), None, change(concat, "src/e.txt", True), None]
    watcher.run()
    assert status.reports("invalid") == 2
    concat.flowfile(CONCAT)
    source.script = [change(concat, "Flowfile"), None]
    watcher.run()
    concat.write("Flowfile", "[tasks.cat\n")  # broken as before, but it loaded in between
    source.script = [change(concat, "Flowfile"), None]
    watcher.run()
    assert status.reports("invalid") == 3 and status.reports("reloaded") == 1


def test_a_file_made_in_a_new_directory_before_its_watch_is_built(concat: Project) -> None:
    concat.flowfile(CONCAT.replace('"src/*.txt"', '"src/*.txt", "gen/**/*.txt"'))
    gen = concat.root / "gen"

    def meanwhile(roots: set[tuple[str, bool]]) -> None:
        """A file lands in gen/ after the reload's walk, just before gen/ is watched."""
        if (str(gen), True) in roots and not (gen / "new").exists():
            concat.write("gen/new/x.txt", "x\n")

    source, status = ScriptedSource(meanwhile), Recorder()
    watcher, builds = make_watcher(concat, source, status)

    def make_gen() -> Change:
        gen.mkdir()
        return change(concat, "gen", True)

    source.script = [make_gen, None]
    watcher.run()
    assert builds == [1, 2]
    assert "gen/new/x.txt" in watcher.project.tasks["cat"].inputs


def test_roots_group_directories_under_the_project_root(concat: Project) -> None:
    concat.write("src/deep/b.txt", "b\n")
    concat.flowfile(CONCAT.replace("src/*.txt", "src/**/*.txt"))
    source = ScriptedSource()
    make_watcher(concat, source, Recorder())
    assert source.roots == {(str(concat.root), False), (str(concat.root / "src"), True)}


class ExhaustedInotify:
    """An observer whose every watch fails as inotify does past fs.inotify.max_user_watches."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def join(self) -> None:
        pass

    def schedule(self, handler: object, path: str, recursive: bool) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_the_inotify_limit_falls_back_to_polling(tmp_path: Path) -> None:
    warnings: list[str] = []
    source = WatchdogSource(poll=False, warn=warnings.append,
                            observer_for=lambda poll: make_observer(True) if poll
                            else ExhaustedInotify())
    try:
        source.watch({(str(tmp_path), False)})
        (tmp_path / "new.txt").write_text("x")
        assert source.get(DEADLINE) == Change(str(tmp_path / "new.txt"), structural=True)
    finally:
        source.close()
    assert len(warnings) == 1
    assert "inotify watch limit" in warnings[0] and "falling back to polling" in warnings[0]


class HangingObserver(ExhaustedInotify):
    """An observer whose `stop` does not return until it is released, as watchdog's would if
    one of its threads never ended."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def stop(self) -> None:
        self.released.wait()


def test_an_observer_that_does_not_stop_does_not_keep_the_watch_from_ending(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observer, "CLOSE_GRACE_SECONDS", 0.1)
    hanging = HangingObserver()
    warnings: list[str] = []
    source = WatchdogSource(poll=False, warn=warnings.append, observer_for=lambda poll: hanging)
    closing = threading.Thread(target=source.close)
    try:
        closing.start()
        closing.join(DEADLINE)
        assert not closing.is_alive()
    finally:
        hanging.released.set()
    assert warnings == ["the file watcher did not stop within 0.1s; leaving it behind"]


# --- the real command on real events -----------------------------------------------------

class Watching:
    """A running `bflow watch --plain` (or `command`, a script project's watch), its output
    captured in files."""

    def __init__(self, project: Project, *args: str,
                 command: tuple[str, ...] = (sys.executable, "-m", "buildflow")) -> None:
        self.project = project
        self.out = project.root.parent / "watch.out"
        self.err = project.root.parent / "watch.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [*command, "watch", "--plain", *args],
                cwd=project.root, env=bflow_env({"PYTHONFAULTHANDLER": "1"}), stdout=out,
                stderr=err)

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines()

    def idle(self) -> list[str]:
        """The idle line printed after each build, in order."""
        return [line for line in self.lines() if "; watching " in line]

    def changed(self) -> list[str]:
        return [line for line in self.lines() if line.startswith("bflow: changed: ")]

    def wait_for(self, condition: Callable[[], bool], what: str, alive: bool = True) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            if (alive and self.process.poll() is not None) or time.monotonic() > deadline:
                pytest.fail(f"waited for {what}; exit {self.process.poll()}\n"
                            f"stdout:\n{self.out.read_text()}\nstderr:\n{self.err.read_text()}")
            time.sleep(0.02)

    def wait_idle(self, count: int) -> None:
        self.wait_for(lambda: len(self.idle()) >= count, f"{count} build(s)")

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.ended()

    def ended(self) -> int:
        """The exit status, once Ctrl-C has been sent."""
        try:
            return self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            self.process.wait()
            pytest.fail(f"still running {DEADLINE}s after Ctrl-C\nstdout:\n"
                        f"{self.out.read_text()}\nstderr:\n{self.err.read_text()}")


@pytest.fixture
def watch(concat: Project) -> Iterator[Callable[..., Watching]]:
    started: list[Watching] = []

    def start(*args: str) -> Watching:
        started.append(Watching(concat, *args))
        return started[-1]

    yield start
    for watching in started:
        if watching.process.poll() is None:
            watching.process.kill()
            watching.process.wait()


def test_an_input_edit_rebuilds_and_outputs_cause_no_loop(concat: Project, watch) -> None:
    concat.flowfile(CONCAT + COUNT)
    watching = watch()
    watching.wait_idle(1)
    assert concat.runs() == ["cat", "count"]
    concat.write("out/all.txt", "edited by hand\n")  # an output: ignored
    concat.write("src/a.txt", "A\n")
    watching.wait_idle(2)
    concat.write("src/a.txt", "AA\n")
    watching.wait_idle(3)
    assert concat.runs() == ["cat", "count"] * 3
    assert concat.read("out/all.txt") == "AA\n"
    assert watching.changed() == ["bflow: changed: src/a.txt"] * 2
    assert "build ok; watching 2 files in 2 directories" in watching.idle()[-1]
    assert watching.interrupt() == EXIT_OK


PY_TASK = """
[tasks.shout]
py = "tools.shout:shout"
inputs = ["src/a.txt"]
outputs = ["out/shout.txt"]
"""


@pytest.mark.parametrize("package", ["regular", "namespace"])
def test_an_edit_of_a_python_task_s_modules_rebuilds(concat: Project, watch,
                                                     package: str) -> None:
    if package == "regular":  # else `tools` has no __init__.py: a namespace package, which
        concat.write("tools/__init__.py", "")  # kept its `mark` from one load to the next
    concat.write("tools/mark.py", "MARK = '!'\n")
    concat.write("tools/shout.py", "from tools import mark\n\ndef shout(ctx):\n"
                                   "    open('runs.log', 'a').write('shout\\n')\n"
                                   "    text = open(ctx.input).read().strip().upper()\n"
                                   "    open(ctx.output, 'w').write(text + mark.MARK)\n")
    concat.flowfile(PY_TASK)
    watching = watch()
    watching.wait_idle(1)
    assert concat.read("out/shout.txt") == "A!"
    concat.write("tools/mark.py", "MARK = '?'\n")  # a module the task's module imports
    watching.wait_idle(2)
    assert concat.read("out/shout.txt") == "A?"
    concat.write("tools/shout.py", concat.read("tools/shout.py").replace("upper", "lower"))
    watching.wait_idle(3)
    assert concat.read("out/shout.txt") == "a?"
    concat.write("tools/mark.py", "MARK = '.'\n")  # still watched after two reloads
    watching.wait_idle(4)
    assert concat.read("out/shout.txt") == "a."
    assert concat.runs() == ["shout"] * 4
    assert watching.changed() == ["bflow: changed: tools/mark.py",
                                  "bflow: changed: tools/shout.py",
                                  "bflow: changed: tools/mark.py"]


def test_the_project_directory_made_anew_under_the_watch_is_built(concat: Project,
                                                                 watch) -> None:
    # the watch's process stayed in the removed directory: its next build was an internal
    # error (`os.getcwd()`: no such file or directory), exit 3
    watching = watch()
    watching.wait_idle(1)
    backup = concat.root.parent / "backup"
    shutil.copytree(concat.root, backup)
    (backup / "src/a.txt").write_text("restored\n")
    shutil.rmtree(concat.root)
    shutil.copytree(backup, concat.root)
    watching.wait_idle(2)
    assert concat.read("out/all.txt") == "restored\n"
    assert watching.interrupt() == EXIT_OK


def test_a_depfile_input_s_directory_outside_made_again_is_watched(concat: Project,
                                                                  watch) -> None:
    # the watch was placed on the directory itself, gone: its making again made no event
    outside = concat.root.parent / "outside"
    (outside / "inc").mkdir(parents=True)
    (outside / "inc/ext.h").write_text("ext 1\n")
    concat.flowfile('[tasks.c]\ncmd = "cat src/a.txt ../outside/inc/ext.h > {output}; '
                    "echo '{output}: ../outside/inc/ext.h' > {depfile}\"\n"
                    'outputs = ["out/a.o"]\ndepfile = "out/a.d"\n')
    watching = watch()
    watching.wait_idle(1)
    shutil.rmtree(outside / "inc")
    watching.wait_idle(2)  # a build, whose cat found no header
    (outside / "inc").mkdir()
    (outside / "inc/ext.h").write_text("ext 2\n")
    watching.wait_idle(3)
    assert concat.read("out/a.o") == "a\next 2\n"
    assert watching.interrupt() == EXIT_OK


def test_new_deleted_and_renamed_over_files_count(concat: Project, watch) -> None:
    watching = watch()
    watching.wait_idle(1)
    concat.write("src/b.txt", "b\n")
    watching.wait_idle(2)
    assert concat.read("out/all.txt") == "a\nb\n"
    concat.write("src/.b.txt.swp", "B\n")  # an editor saving through a temp file
    os.replace(concat.root / "src/.b.txt.swp", concat.root / "src/b.txt")
    watching.wait_idle(3)
    assert concat.read("out/all.txt") == "a\nB\n"
    (concat.root / "src/a.txt").unlink()
    watching.wait_idle(4)
    assert concat.read("out/all.txt") == "B\n"
    assert concat.runs() == ["cat"] * 4


def test_a_burst_of_writes_gives_few_builds(concat: Project, watch) -> None:
    watching = watch("--debounce", "0.3")
    watching.wait_idle(1)
    for number in range(20):
        concat.write("src/a.txt", f"{number}\n")
    watching.wait_for(lambda: concat.read("out/all.txt") == "19\n" and
                      len(watching.idle()) == len(watching.changed()) + 1,
                      "the last write to be built")
    assert 2 <= len(watching.idle()) <= 4
    assert 2 <= len(concat.runs()) <= 4


def test_a_change_during_a_build_makes_one_more_build(concat: Project, watch) -> None:
    concat.flowfile(CONCAT.replace("> {output}", "> {output} && "
                                   "while [ -f hold ]; do sleep 0.05; done"))
    watching = watch()
    watching.wait_idle(1)
    concat.write("hold", "")
    concat.write("src/a.txt", "1\n")
    watching.wait_for(lambda: len(concat.runs()) == 2, "the second build to start")
    for number in range(5):
        concat.write("src/a.txt", f"during {number}\n")
    (concat.root / "hold").unlink()
    watching.wait_idle(3)
    assert concat.read("out/all.txt") == "during 4\n"
    concat.write("src/a.txt", "after\n")
    watching.wait_idle(4)
    assert concat.runs() == ["cat"] * 4
    assert len(watching.changed()) == 3


def test_a_failing_build_is_reported_and_a_fix_rebuilds(concat: Project, watch) -> None:
    concat.flowfile(CONCAT.replace("cat {inputs}", "! grep -q bad {inputs} && cat {inputs}"))
    watching = watch()
    watching.wait_idle(1)
    concat.write("src/a.txt", "bad\n")
    watching.wait_idle(2)
    assert "build FAILED" in watching.idle()[1]
    concat.write("src/a.txt", "good\n")
    watching.wait_idle(3)
    assert "build ok" in watching.idle()[2]
    assert concat.read("out/all.txt") == "good\n"
    assert concat.runs() == ["cat"] * 3


def test_flowfile_edits_are_picked_up_and_breakage_survived(concat: Project, watch) -> None:
    watching = watch()
    watching.wait_idle(1)
    concat.flowfile(CONCAT.replace("echo cat", "echo dog"))
    watching.wait_for(lambda: concat.runs() == ["cat", "dog"], "the edited command to run")
    concat.write("Flowfile", "[tasks.cat\n")
    watching.wait_for(lambda: "TOML syntax error" in watching.err.read_text(),
                      "the syntax error to be reported")
    assert "bflow: error: Flowfile:1:" in watching.err.read_text()
    concat.write("src/a.txt", "still\n")  # builds nothing until the Flowfile loads again
    concat.flowfile(CONCAT.replace("echo cat", "echo fixed"))
    watching.wait_for(lambda: concat.runs()[-1:] == ["fixed"], "the fixed Flowfile to build")
    assert concat.runs() == ["cat", "dog", "fixed"]
    assert watching.process.poll() is None


def test_ctrl_c_while_waiting_for_the_lock_exits_130(concat: Project, watch) -> None:
    concat.flowfile(CONCAT.replace("> {output}", "> {output} && "
                                   "while [ -f hold ]; do sleep 0.05; done"))
    concat.write("hold", "")
    holder = build_in_background(concat, until_runs=["cat"])
    try:
        watching = watch()
        watching.wait_for(lambda: "waiting for another bflow run" in watching.err.read_text(),
                          "the watch to wait for the lock")
        assert watching.interrupt() == EXIT_INTERRUPTED
        assert "bflow: interrupted" in watching.err.read_text()
        assert "Traceback" not in watching.err.read_text()
    finally:
        (concat.root / "hold").unlink()
        holder.communicate(timeout=DEADLINE)
    assert holder.returncode == EXIT_OK
    assert concat.runs() == ["cat"]  # the watch ran nothing


def test_poll_mode_sees_changes(concat: Project, watch) -> None:
    watching = watch("--poll")
    watching.wait_idle(1)
    concat.write("src/a.txt", "polled\n")
    watching.wait_idle(2)
    assert concat.read("out/all.txt") == "polled\n"
    assert concat.runs() == ["cat", "cat"]
    assert watching.interrupt() == EXIT_OK


def test_ctrl_c_during_a_build_stops_its_commands(concat: Project, watch) -> None:
    concat.flowfile(CONCAT.replace("cat {inputs} > {output}", "echo $$ > pid && exec sleep 60"))
    watching = watch()
    watching.wait_for(lambda: concat.root.joinpath("pid").exists()
                      and concat.read("pid").strip().isdigit(), "the command to start")
    pid = int(concat.read("pid"))
    assert watching.interrupt() == EXIT_INTERRUPTED
    assert "Traceback" not in watching.err.read_text()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    watching.wait_for(gone, "the command to be stopped", alive=False)


# `slow` runs while `hold` exists; stopped, it starts one more `sleep` and waits, so that bflow
# has to wait out its grace period and kill the group: the time the first Ctrl-C is handled.
STOPPED_SLOWLY = """
[tasks.quick]
cmd = "echo quick >> runs.log && echo done > {output}"
outputs = ["quick.txt"]

[tasks.slow]
cmd = "echo slow >> runs.log; if [ -f hold ]; then trap 'echo stopping >> runs.log; sleep 30 & echo $! > trap.pid; wait' TERM; sleep 30 & echo $! > slow.pid; wait; fi; echo done > {output}"
inputs = ["quick.txt"]
outputs = ["slow.txt"]
"""


@pytest.mark.parametrize("again", ["once", "and again"])
def test_ctrl_c_again_while_the_first_stops_the_build_ends_it_as_one_does(
        concat: Project, watch, again: str) -> None:
    """Ctrl-C again while bflow stops the commands of the first: the watch still exits 130,
    every command stopped, the records kept. A Ctrl-C that came while the main thread was
    setting the stop flag (in the handler of the one before, or in the build's loop) waited
    for the flag's lock for ever: the watch hung with its commands running, or its nested
    handlers ran out of stack and it died of SIGINT, leaving them running. That moment lasts
    microseconds, so "and again" presses Ctrl-C as long as bflow waits for the group to go,
    until it kills it (pressed on, Ctrl-C would reach bflow as it exits, as no hand does)."""
    concat.flowfile(STOPPED_SLOWLY)
    concat.write("hold", "")
    watching = watch()
    watching.wait_for(lambda: pid_in(concat, "slow.pid") is not None, "the command to start")
    watching.process.send_signal(signal.SIGINT)
    watching.wait_for(lambda: pid_in(concat, "trap.pid") is not None, "the command stopping")
    commands = [pid_in(concat, "slow.pid"), pid_in(concat, "trap.pid")]
    watching.process.send_signal(signal.SIGINT)
    while again == "and again" and process_state(commands[1]) == "S" \
            and watching.process.poll() is None:  # asleep until bflow kills its group
        watching.process.send_signal(signal.SIGINT)
    assert watching.ended() == EXIT_INTERRUPTED
    assert "Traceback" not in watching.err.read_text()
    watching.wait_for(lambda: all(map(gone, commands)), "the commands to be stopped",
                      alive=False)
    assert concat.runs() == ["quick", "slow", "stopping"]
    (concat.root / "hold").unlink()
    assert concat.build() == ["slow"]  # what succeeded before Ctrl-C is not run again


def pid_in(project: Project, name: str) -> int | None:
    """The process id a command wrote to `name`, None before it has."""
    path = project.root / name
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text else None


def test_ctrl_c_while_a_hook_runs_after_a_build_ends_the_watch_as_between_builds(
        concat: Project, watch) -> None:
    concat.flowfile('[settings]\non_success = "echo $$ > hook.pid && exec sleep 60"\n' + CONCAT)
    watching = watch()
    watching.wait_for(lambda: concat.root.joinpath("hook.pid").exists()
                      and concat.read("hook.pid").strip().isdigit(), "the hook to start")
    hook = int(concat.read("hook.pid"))
    assert watching.interrupt() == EXIT_OK
    assert "Traceback" not in watching.err.read_text()
    assert concat.runs() == ["cat"]
    with pytest.raises(ProcessLookupError):  # the hook's group is killed with the watch
        os.kill(hook, 0)


@pytest.mark.parametrize("edit", ["a header its first depfile names", "its source touched"])
def test_a_file_changed_while_the_first_run_read_it_builds_again(project: Project,
                                                                 edit: str) -> None:
    """The run was recorded with the file's hash unknown (the task stale), and no event made
    a build: `inc/` is watched only from the first depfile naming `inc/x.h` on, and a `touch`
    changes only times, which make none. The watch idled with the task stale."""
    project.flowfile(PAUSED_READER)
    project.write("src/a.c", "a\n")
    project.write("inc/x.h", "one\n")
    watching = Watching(project)
    try:
        watching.wait_for(lambda: (project.root / "read.flag").exists(), "the files read")
        if edit == "its source touched":
            changed, source = "src/a.c", project.root / "src/a.c"
            times = source.stat()
            os.utime(source, ns=(times.st_atime_ns, times.st_mtime_ns - 5 * 10**9))
        else:
            changed = "inc/x.h"
            project.write("inc/x.h", "two\n")
        project.write("go", "")
        watching.wait_idle(2)  # the first build, then one more
        assert watching.interrupt() == EXIT_OK
        assert watching.changed() == [f"bflow: changed: {changed}"]
        assert project.read("out/a.o") == project.read("src/a.c") + project.read("inc/x.h")
        assert project.runs() == ["cc", "cc"] and project.build() == []
    finally:
        if watching.process.poll() is None:
            watching.process.kill()
            watching.process.wait()


def test_ctrl_c_between_builds_on_a_terminal_leaves_it_tidy(concat: Project) -> None:
    leader, follower = pty.openpty()
    env = terminal_env()
    process = subprocess.Popen(  # on its own terminal, so Ctrl-C is typed and echoed
        [sys.executable, "-m", "buildflow", "watch"], cwd=concat.root, env=env,
        stdin=follower, stdout=follower, stderr=follower, start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    screen = b""
    deadline = time.monotonic() + DEADLINE
    while b"(Ctrl-C to stop)" not in screen:
        assert time.monotonic() < deadline and process.poll() is None, screen
        if select.select([leader], [], [], 1)[0]:
            screen += os.read(leader, 65536)
    os.write(leader, b"\x03")
    screen += read_all(leader, process, follower)
    os.close(leader)
    assert process.returncode == EXIT_OK
    assert screen.endswith(b"^C\r\n")  # the shell's prompt starts on a line of its own
    assert screen.rindex(b"\x1b[?25h") > screen.rindex(b"\x1b[?25l")  # the cursor is shown
    assert b"Traceback" not in screen


def test_watchdogs_own_stop_race_is_not_logged_but_its_other_warnings_are(
        caplog: pytest.LogCaptureFixture) -> None:
    # watchdog logs this when an inotify read ends as its observer stops: after a Ctrl-C it
    # reached the terminal, behind the line the test above looks for.
    inotify = logging.getLogger("watchdog.observers.inotify")
    inotify.error("InotifyEmitter.queue_events() called when the thread is inactive")
    inotify.warning("Inotify queue overflowed; filesystem events were lost")
    assert [r.getMessage() for r in caplog.records] == [
        "Inotify queue overflowed; filesystem events were lost"]


UPPER = """
[tasks.up]
foreach = "src/*.txt"
cmd = "echo up >> runs.log && tr a-z A-Z < {item} > {output}"
outputs = ["out/{stem}.up"]
[tasks.join]
cmd = "echo join >> runs.log && cat {inputs} > {output}"
inputs = ["out/*.up"]
outputs = ["joined.txt"]
"""


@pytest.mark.parametrize("args", [[], ["--poll"]])
def test_removing_a_dead_output_does_not_trigger_another_build(concat: Project, watch,
                                                               args: list[str]) -> None:
    concat.flowfile(UPPER)
    concat.write("src/b.txt", "b\n")
    watching = watch(*args)
    watching.wait_idle(1)
    (concat.root / "src/b.txt").unlink()
    watching.wait_idle(2)
    assert concat.read("joined.txt") == "A\n" and not (concat.root / "out/b.up").exists()
    # An edit after the removal: a build the removal set off comes before its own, or
    # names the removed file beside it.
    concat.write("src/a.txt", "a2\n")
    watching.wait_idle(3)
    changed = watching.changed()  # the first may also name `out`, made by the first build
    assert len(changed) == 2 and changed[-1] == "bflow: changed: src/a.txt", changed
    assert "src/b.txt" in changed[0] and "b.up" not in changed[0]
    assert concat.read("joined.txt") == "A2\n"
    assert concat.runs() == ["up", "up", "join", "join", "up", "join"]
    assert watching.err.read_text() == (
        "bflow: removed out/b.up, written by task 'up:src/b.txt', which no longer exists\n")
    assert watching.interrupt() == EXIT_OK


def test_stream_in_watch_prints_each_build_s_lines_as_they_come(concat: Project,
                                                                watch) -> None:
    concat.flowfile(CONCAT.replace("> {output}", "| tee {output}"))
    watching = watch("--stream")
    watching.wait_idle(1)
    concat.write("src/a.txt", "A\n")
    watching.wait_idle(2)
    assert [line for line in watching.lines() if " | " in line] == ["cat | a", "cat | A"]


def test_an_output_that_became_a_source_is_watched(concat: Project, watch) -> None:
    # its task deleted, the file kept by hand: it stayed ignored as an output for good
    use = """
[tasks.use]
cmd = "echo use >> runs.log && cat {inputs} > {output}"
inputs = ["out/all.txt"]
outputs = ["used.txt"]
"""
    concat.flowfile(CONCAT + use)
    watching = watch()
    watching.wait_idle(1)
    concat.flowfile(use)
    watching.wait_idle(2)
    concat.write("out/all.txt", "by hand\n")
    watching.wait_idle(3)
    assert concat.read("used.txt") == "by hand\n"
    concat.write("out/all.txt", "again\n")  # and after a build
    watching.wait_idle(4)
    assert concat.read("used.txt") == "again\n"
    assert concat.runs() == ["cat", "use", "use", "use"]
    assert watching.interrupt() == EXIT_OK


def test_a_file_written_where_a_build_removed_an_output_is_a_change(concat: Project,
                                                                     watch) -> None:
    # the path of an output a build removed stayed ignored for the rest of the watch, so a
    # source written there by hand, which the glob reads, built nothing
    use = """
[tasks.use]
cmd = "echo use >> runs.log && cat {inputs} > {output}"
inputs = ["data/*.txt"]
outputs = ["use.txt"]
"""
    concat.write("data/a.txt", "keep\n")
    concat.flowfile(use + '[tasks.mk]\ncmd = "echo made > {output}"\noutputs = ["data/x.txt"]\n')
    watching = watch()
    watching.wait_idle(1)
    assert concat.read("use.txt") == "keep\nmade\n"
    concat.flowfile(use)  # mk goes, and with it data/x.txt
    watching.wait_idle(2)
    assert concat.read("use.txt") == "keep\n"
    concat.write("data/x.txt", "by hand\n")
    watching.wait_idle(3)
    assert concat.read("use.txt") == "keep\nby hand\n"
    assert watching.interrupt() == EXIT_OK


def test_an_input_through_a_symlink_is_watched_where_it_leads(concat: Project, watch) -> None:
    # an edit of the link's target made no event at the link: nothing was built
    concat.write("configs/dev.txt", "dev\n")
    (concat.root / "src/b.txt").symlink_to(concat.root / "configs/dev.txt")
    concat.write("real/Flowfile", CONCAT)
    (concat.root / "Flowfile").unlink()
    (concat.root / "Flowfile").symlink_to("real/Flowfile")
    watching = watch()
    watching.wait_idle(1)
    concat.write("configs/dev.txt", "dev2\n")
    watching.wait_idle(2)
    assert concat.read("out/all.txt") == "a\ndev2\n"
    concat.write("real/Flowfile", CONCAT.replace("cat {inputs}", "cat {inputs} {inputs}"))
    watching.wait_idle(3)
    assert concat.read("out/all.txt") == "a\ndev2\na\ndev2\n"
    assert concat.runs() == ["cat"] * 3
    assert watching.interrupt() == EXIT_OK


@pytest.mark.parametrize("how", ["rm-and-copy", "rename-over"])
def test_a_replaced_directory_is_watched_again(concat: Project, watch, how: str) -> None:
    # the OS's watch followed the old directory: the first change built, no later one
    concat.write("template/a.txt", "t\n")
    watching = watch()
    watching.wait_idle(1)
    if how == "rm-and-copy":
        subprocess.run("rm -rf src && cp -r template src", shell=True, cwd=concat.root,
                       check=True)
    else:
        os.rename(concat.root / "src", concat.root / "old")
        os.rename(concat.root / "template", concat.root / "src")
    watching.wait_idle(2)
    assert concat.read("out/all.txt") == "t\n"
    concat.write("src/a.txt", "edited\n")
    watching.wait_idle(3)
    assert concat.read("out/all.txt") == "edited\n"
    concat.write("src/b.txt", "new\n")
    watching.wait_idle(4)
    assert concat.read("out/all.txt") == "edited\nnew\n"
    assert watching.interrupt() == EXIT_OK


def test_instances_a_build_found_are_watched(concat: Project, watch) -> None:
    # the watch kept the project it loaded before its first build, which knew no instance
    # of the foreach over what `gen` writes: their inputs were never watched
    concat.write("tpl.txt", "L1\n")
    concat.flowfile("""
[tasks.gen]
cmd = "mkdir -p gen && cp src/a.txt gen/a.txt"
inputs = ["src/a.txt"]
outputs = ["gen/"]

[tasks.page]
foreach = "gen/*.txt"
inputs = ["tpl.txt"]
cmd = "echo page >> runs.log && cat {item} tpl.txt > {output}"
outputs = ["pages/{stem}.html"]
""")
    watching = watch()
    watching.wait_idle(1)
    concat.write("tpl.txt", "L2\n")
    watching.wait_idle(2)
    assert concat.read("pages/a.html") == "a\nL2\n"
    assert concat.runs() == ["page", "page"]
    assert watching.changed() == ["bflow: changed: tpl.txt"]
    assert watching.interrupt() == EXIT_OK
