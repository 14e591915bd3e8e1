"""The build loop: engine-level scenarios on a fake runner and a fake clock (no sleeping), then
the same promises kept by real processes under the real `bflow`."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from buildflow import events as ev
from buildflow.engine import hasher_for, open_state, selected
from buildflow.errors import EXIT_INTERRUPTED
from buildflow.model import Task
from buildflow.project import load
from buildflow.runner import RunResult
from buildflow.scheduler import BuildOptions, BuildResult, Builder, Outcome
from conftest import Project
from memfs import ROOT, MemoryFileSystem


class FakeRunner:
    """Plays a script of results per task (default: success) and writes declared outputs on
    the disk in memory."""

    def __init__(self, disk: MemoryFileSystem, script: dict[str, list[RunResult]] | None = None,
                 content: str | None = None) -> None:
        self.disk = disk
        self.script = script or {}
        self.content = content
        self.calls: list[str] = []

    def run(self, task: Task, root: str, env: object, log: IO[bytes]) -> RunResult:
        self.calls.append(task.name)
        results = self.script.get(task.name, [])
        result = results.pop(0) if results else RunResult(0)
        log.write(f"attempt by {task.name}\n".encode())
        if result.ok:
            for output in task.outputs:
                self.disk.write(output, self.content or f"{task.name} {len(self.calls)}\n")
        return result

    def stop_all(self) -> None:
        pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, stop: threading.Event, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def disk() -> MemoryFileSystem:
    return MemoryFileSystem()


def engine_build(disk: MemoryFileSystem, runner: FakeRunner, *, clock: FakeClock | None = None,
                 jitter: float = 0.0, **options: object) -> tuple[BuildResult, list[ev.Event]]:
    """A build of the project on `disk`, loaded from it; a second later by its clock."""
    disk.tick(1)
    project = load(f"{ROOT}/Flowfile", fs=disk)
    state = open_state(project)
    collector = ev.Collector()
    clock = clock or FakeClock()
    builder = Builder(project, state, hasher_for(project, state), runner, collector,
                      BuildOptions(**options), wait=clock.wait,  # type: ignore[arg-type]
                      jitter=lambda: jitter, clock=clock)
    try:
        return builder.build(selected(project)), collector.events
    finally:
        state.close()


def flowfile(disk: MemoryFileSystem, text: str) -> None:
    disk.write("Flowfile", textwrap.dedent(text))


FAIL = RunResult(1)

INDEPENDENT = """
[tasks.zeta]
cmd = "z"
[tasks.alpha]
cmd = "a"
deps = ["mid"]
[tasks.mid]
cmd = "m"
[tasks.beta]
cmd = "b"
"""


def test_ready_tasks_start_in_flowfile_order(disk: MemoryFileSystem) -> None:
    flowfile(disk, INDEPENDENT)
    runner = FakeRunner(disk)
    result, _ = engine_build(disk, runner, jobs=1)
    # alpha waits for mid; everything else in declaration order
    assert runner.calls == ["zeta", "mid", "alpha", "beta"]
    assert result.exit_status == 0


class HoldsNothingSlowly:
    """An output cache that can hold none of the tasks, whose lookup of `a` would be slow."""

    def may_hold(self, task: Task) -> bool:
        return False

    def restore(self, task: Task, decision: object) -> None:
        if task.name == "a":
            time.sleep(0.3)

    def store(self, *args: object) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_tasks_no_cache_can_hold_start_in_order_beside_each_other(
        disk: MemoryFileSystem) -> None:
    # the builder let go of its lock for a lookup that could not hit: with -j2, b started first
    flowfile(disk, "[tasks.a]\ncmd = 'a'\n[tasks.b]\ncmd = 'b'\n[tasks.c]\ncmd = 'c'\n")
    disk.tick(1)
    project = load(f"{ROOT}/Flowfile", fs=disk)
    state = open_state(project)
    collector = ev.Collector()
    builder = Builder(project, state, hasher_for(project, state), FakeRunner(disk), collector,
                      BuildOptions(jobs=2), cache=HoldsNothingSlowly())
    try:
        assert builder.build(selected(project)).exit_status == 0
    finally:
        state.close()
    started = [e.task for e in collector.events if isinstance(e, ev.TaskStarted)]
    assert started[:2] == ["a", "b"]


def test_retries_back_off_exponentially_with_jitter(disk: MemoryFileSystem) -> None:
    flowfile(disk, """
        [tasks.flaky]
        cmd = "f"
        retries = 3
        retry_delay = 0.5
    """)
    clock = FakeClock()
    runner = FakeRunner(disk, {"flaky": [FAIL, RunResult(None, timed_out=True), FAIL]})
    result, events = engine_build(disk, runner, clock=clock, jitter=0.5)
    assert runner.calls == ["flaky"] * 4
    assert clock.waits == [0.625, 1.25, 2.5]  # 0.5 * 2**k * (1 + 0.5 * jitter)
    retries = [e for e in events if isinstance(e, ev.TaskRetry)]
    assert [(r.attempt, r.of) for r in retries] == [(2, 4), (3, 4), (4, 4)]
    assert "timed out" in retries[1].reason
    finished = [e for e in events if isinstance(e, ev.TaskFinished)]
    assert finished[0].attempts == 4
    assert finished[0].duration == pytest.approx(4.375)
    assert finished[0].output.count("attempt by flaky") == 4
    assert result.tasks["flaky"].outcome is Outcome.RAN


def test_retries_run_out(disk: MemoryFileSystem) -> None:
    flowfile(disk, """
        [tasks.bad]
        cmd = "b"
        retries = 1
        retry_delay = 2
    """)
    clock = FakeClock()
    result, events = engine_build(disk, FakeRunner(disk, {"bad": [FAIL, FAIL, FAIL]}),
                                  clock=clock)
    assert clock.waits == [2.0]
    failed = [e for e in events if isinstance(e, ev.TaskFailed)]
    assert (failed[0].attempts, failed[0].reason) == (2, "exit 1")
    assert result.exit_status == 1


CHAIN_AND_SIDE = """
[tasks.first]
cmd = "1"
[tasks.broken]
cmd = "x"
[tasks.after]
cmd = "y"
deps = ["broken"]
[tasks.last]
cmd = "z"
deps = ["after"]
[tasks.side]
cmd = "s"
"""


def test_fail_fast_starts_nothing_after_a_failure(disk: MemoryFileSystem) -> None:
    flowfile(disk, CHAIN_AND_SIDE)
    runner = FakeRunner(disk, {"broken": [FAIL]})
    result, _ = engine_build(disk, runner, jobs=1)
    assert runner.calls == ["first", "broken"]
    assert result.exit_status == 1
    assert result.tasks["side"].reason == "build stopped"
    assert result.tasks["last"].reason == "dependency failed: broken"


def test_keep_going_runs_all_that_does_not_depend_on_a_failure(disk: MemoryFileSystem) -> None:
    flowfile(disk, CHAIN_AND_SIDE)
    runner = FakeRunner(disk, {"broken": [FAIL]})
    result, events = engine_build(disk, runner, jobs=1, keep_going=True)
    assert runner.calls == ["first", "broken", "side"]
    skipped = {e.task: e.reason for e in events if isinstance(e, ev.TaskSkipped)}
    assert skipped == {"after": "dependency failed: broken",
                       "last": "dependency failed: broken"}
    assert result.exit_status == 1
    assert events[-1] == ev.BuildFinished(ran=2, up_to_date=0, failed=1, skipped=2,
                                          duration=0.0, exit_status=1)


def test_up_to_date_tasks_do_not_wait_for_a_free_job(disk: MemoryFileSystem) -> None:
    flowfile(disk, """
        [tasks.gen]
        cmd = "g"
        inputs = ["src.txt"]
        outputs = ["gen.txt"]
        [tasks.slow]
        cmd = "s"
        [tasks.use]
        cmd = "u"
        inputs = ["gen.txt"]
        outputs = ["use.txt"]
    """)
    disk.write("src.txt", "one")
    engine_build(disk, FakeRunner(disk, content="same\n"))
    disk.write("src.txt", "two")
    runner = FakeRunner(disk, content="same\n")
    result, _ = engine_build(disk, runner, jobs=1)
    # gen rebuilt byte-identical output: use is cut off; slow has neither inputs nor outputs
    assert runner.calls == ["gen", "slow"]
    assert result.tasks["use"].outcome is Outcome.UP_TO_DATE


class DepfileWriter(FakeRunner):
    """Also writes each task's depfile, naming what `reads` says, after a second of the disk's
    clock: a command that takes that long."""

    def __init__(self, disk: MemoryFileSystem, reads: str) -> None:
        super().__init__(disk, content="same\n")
        self.reads = reads

    def run(self, task: Task, root: str, env: object, log: IO[bytes]) -> RunResult:
        result = super().run(task, root, env, log)
        if task.depfile:
            self.disk.tick(1)
            self.disk.write(task.depfile, f"{task.outputs[0]}: {self.reads}\n")
        return result


class CoarseFileClock(MemoryFileSystem):
    """Files stamped by the disk's clock as it stands (a coarse tick, as the kernel stamps
    them), while `now_ns` moves on at every reading, as `time.time_ns` does."""

    def __init__(self) -> None:
        super().__init__()
        self.readings = 0

    def now_ns(self) -> int:
        self.readings += 1
        return self.clock_ns + self.readings


def test_a_depfile_input_written_just_before_the_task_started_is_read_once() -> None:
    # gen writes gen.h in the tick `use` starts in; `use` runs long enough for gen.h to be
    # hashed again (settled) before it ends: still the content `use` read, not a change
    disk = CoarseFileClock()
    flowfile(disk, """
        [tasks.gen]
        cmd = "g"
        outputs = ["gen.h"]
        always = true
        [tasks.use]
        cmd = "u"
        outputs = ["use.o"]
        deps = ["gen"]
        depfile = "use.d"
    """)
    calls = []
    for _ in range(3):
        runner = DepfileWriter(disk, "gen.h")
        engine_build(disk, runner, jobs=1)
        calls += runner.calls
    assert calls == ["gen", "use", "gen", "gen"]


UP_TO_DATE_AFTER_FIRST = """
[tasks.first]
cmd = "f"
inputs = ["first.txt"]
outputs = ["first.out"]
[tasks.broken]
cmd = "b"
[tasks.one]
cmd = "1"
inputs = ["one.txt"]
outputs = ["one.out"]
[tasks.two]
cmd = "2"
inputs = ["two.txt"]
outputs = ["two.out"]
"""


def _built_with_first_stale(disk: MemoryFileSystem) -> None:
    flowfile(disk, UP_TO_DATE_AFTER_FIRST)
    for name in ("first", "one", "two"):
        disk.write(f"{name}.txt", name)
    engine_build(disk, FakeRunner(disk))
    disk.write("first.txt", "changed")


def test_the_first_command_starts_before_every_ready_task_is_decided(
        disk: MemoryFileSystem) -> None:
    _built_with_first_stale(disk)
    runner = FakeRunner(disk)
    result, events = engine_build(disk, runner, jobs=1, keep_going=True)
    order = [(type(e).__name__, e.task) for e in events
             if isinstance(e, (ev.TaskStarted, ev.TaskSkipped))]
    assert order[0] == ("TaskStarted", "first")  # not after hashing one's and two's inputs
    assert ("TaskSkipped", "one") in order and ("TaskSkipped", "two") in order
    assert runner.calls == ["first", "broken"]
    assert result.tasks["two"].outcome is Outcome.UP_TO_DATE


def test_tasks_ready_when_a_build_stops_are_still_found_up_to_date(disk: MemoryFileSystem) -> None:
    _built_with_first_stale(disk)
    runner = FakeRunner(disk, {"first": [FAIL]})
    result, events = engine_build(disk, runner, jobs=1)
    assert runner.calls == ["first"]
    assert result.tasks["broken"].reason == "build stopped"
    assert result.tasks["one"].outcome is Outcome.UP_TO_DATE
    assert result.tasks["two"].outcome is Outcome.UP_TO_DATE
    assert events[-1] == ev.BuildFinished(ran=0, up_to_date=2, failed=1, skipped=1,
                                          duration=0.0, exit_status=1)


def test_a_condition_on_a_file_looks_on_the_project_s_disk(disk: MemoryFileSystem) -> None:
    flowfile(disk, """
        [tasks.deploy]
        cmd = "d"
        when = { exists = "deploy.key" }
    """)
    runner = FakeRunner(disk)
    result, _ = engine_build(disk, runner)
    assert runner.calls == [] and result.tasks["deploy"].reason == \
        "when.exists deploy.key does not exist"
    disk.write("deploy.key", "secret")
    engine_build(disk, runner)
    assert runner.calls == ["deploy"]


def test_exit_zero_without_declared_output_fails(disk: MemoryFileSystem) -> None:
    flowfile(disk, """
        [tasks.liar]
        cmd = "l"
        outputs = ["made.txt"]
    """)

    class Liar(FakeRunner):
        def run(self, task: Task, root: str, env: object, log: IO[bytes]) -> RunResult:
            return RunResult(0)

    result, _ = engine_build(disk, Liar(disk))
    assert "did not write declared output made.txt" in result.tasks["liar"].reason
    assert result.exit_status == 1


def test_a_bug_in_a_worker_reaches_the_caller(disk: MemoryFileSystem) -> None:
    flowfile(disk, "[tasks.a]\ncmd = 'a'\n")

    class Broken(FakeRunner):
        def run(self, task: Task, root: str, env: object, log: IO[bytes]) -> RunResult:
            raise RuntimeError("runner bug")

    with pytest.raises(RuntimeError, match="runner bug"):
        engine_build(disk, Broken(disk))


def test_a_ctrl_c_a_worker_takes_stops_the_build_at_once(disk: MemoryFileSystem) -> None:
    """Python runs signal handlers in the main thread only, and the kernel may hand a SIGINT
    to any thread: one taken by a worker must still stop the build while its command runs."""
    flowfile(disk, "[tasks.long]\ncmd = 'l'\n")

    class Interrupted(FakeRunner):
        def __init__(self) -> None:
            super().__init__(disk)
            self.stopped = threading.Event()

        def run(self, task: Task, root: str, env: object, log: IO[bytes]) -> RunResult:
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # to this worker
            if self.stopped.wait(10):
                return RunResult(None, signal=signal.SIGTERM)
            return RunResult(0)  # not stopped: ran to its end

        def stop_all(self) -> None:
            self.stopped.set()

    runner = Interrupted()
    result, _ = engine_build(disk, runner)
    assert runner.stopped.is_set() and result.exit_status == EXIT_INTERRUPTED


# --- real processes -------------------------------------------------------------------------

STAMP = """
import os, sys, time
name, other, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
start = time.time()
open(name + ".started", "w").close()
deadline = time.monotonic() + limit
while not os.path.exists(other + ".started") and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.05)
open(name + ".times", "w").write(f"{start} {time.time()}")
"""


def stamp_project(project: Project) -> None:
    project.write("stamp.py", STAMP)
    project.flowfile(f"""
        [vars]
        PY = "{sys.executable}"
        LIMIT = "20"
        [tasks.a]
        cmd = "{{PY}} stamp.py a b {{LIMIT}}"
        [tasks.b]
        cmd = "{{PY}} stamp.py b a {{LIMIT}}"
    """)


def intervals(project: Project) -> list[tuple[float, float]]:
    return [tuple(map(float, project.read(f"{n}.times").split())) for n in "ab"]  # type: ignore


def test_commands_start_with_no_signal_blocked(project: Project) -> None:
    # posix_spawn (run where bflow runs, with its environment) and Popen (an env of its own)
    project.flowfile("""
        [tasks.spawned]
        cmd = "grep SigBlk /proc/self/status > spawned.txt"
        outputs = ["spawned.txt"]
        [tasks.popened]
        cmd = "grep SigBlk /proc/self/status > popened.txt"
        outputs = ["popened.txt"]
        env = { OWN = "1" }
        """)
    project.build("-j2")
    for name in ("spawned", "popened"):
        blocked = int(project.read(f"{name}.txt").split()[1], 16)
        assert blocked & (1 << (signal.SIGINT - 1) | 1 << (signal.SIGTERM - 1)) == 0, name


def test_two_jobs_overlap(project: Project) -> None:
    stamp_project(project)
    assert project.bflow("-j2").returncode == 0
    (a_start, a_end), (b_start, b_end) = intervals(project)
    assert a_start < b_end and b_start < a_end


def test_one_job_runs_one_at_a_time(project: Project) -> None:
    stamp_project(project)
    assert project.bflow("-j1", "LIMIT=0.3").returncode == 0
    (a_start, a_end), (b_start, b_end) = intervals(project)
    assert a_end <= b_start


def test_flaky_command_succeeds_on_third_attempt(project: Project) -> None:
    project.flowfile("""
        [tasks.flaky]
        cmd = "echo try >> attempts.log; test $(wc -l < attempts.log) -ge 3"
        retries = 3
        retry_delay = 0.01
    """)
    run = project.bflow("--json")
    assert run.returncode == 0
    assert project.runs("attempts.log") == ["try"] * 3
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert [e["attempt"] for e in events if e["event"] == "task_retry"] == [2, 3]
    finished = [e for e in events if e["event"] == "task_finished"]
    assert finished[0]["attempts"] == 3


def test_keep_going_with_real_commands(project: Project) -> None:
    project.flowfile("""
        [tasks.broken]
        cmd = "echo broken >> runs.log; exit 3"
        [tasks.after]
        cmd = "echo after >> runs.log"
        deps = ["broken"]
        [tasks.side]
        cmd = "echo side >> runs.log"
    """)
    run = project.bflow("-k", "-j1")
    assert run.returncode == 1
    assert project.runs() == ["broken", "side"]
    assert "skip   after (dependency failed: broken)" in run.stdout
    assert "FAILED broken: exit 3" in run.stdout
    stopped = project.bflow("-j1")
    assert stopped.returncode == 1
    assert project.runs() == ["broken", "side", "broken"]  # side is recorded; fail-fast


def test_output_blocks_never_interleave(project: Project) -> None:
    loop = "for i in 1 2 3 4 5 6 7 8 9 10; do echo {task}-$i; sleep 0.01; done"
    project.flowfile(f"""
        [tasks.left]
        cmd = "{loop}"
        [tasks.right]
        cmd = "{loop}"
    """)
    run = project.bflow("-j2")
    assert run.returncode == 0
    lines = [line[len("  | "):] for line in run.stdout.splitlines() if line.startswith("  | ")]
    first = lines[0].split("-")[0]
    second = "right" if first == "left" else "left"
    assert lines == [f"{first}-{i}" for i in range(1, 11)] + [f"{second}-{i}" for i in range(1, 11)]
