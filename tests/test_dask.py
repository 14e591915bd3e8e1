"""The Dask executor against a real cluster on 127.0.0.1: a `dask scheduler` and two `dask
worker`s (one thread each) started for this module, and the real `bflow` pointed at them.

Skipped when `distributed` is not installed, except in CI (`CI` set), where that fails: the
suite is installed there with its `dask` extra."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

import pytest

from conftest import Project, bflow_env
from test_runner import gone, wait_for

try:
    import distributed
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("distributed is not installed (pip install -e '.[test,dask]')",
                allow_module_level=True)


def _dask(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """`dask ARGS` in a session of its own (so its teardown takes its children too)."""
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], env=bflow_env(),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM its process group; once the leader has ended (or 10 s have passed), SIGKILL
    what is left of the group."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(10)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The `dask://` URL of a scheduler with two single-threaded workers (each under a nanny,
    which starts it again when it dies)."""
    where = tmp_path_factory.mktemp("dask")
    scheduler_file = where / "scheduler.json"
    processes = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                       "--scheduler-file", str(scheduler_file), log=where / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert time.monotonic() < deadline, (where / "scheduler.log").read_text()
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        for number in range(2):
            processes.append(_dask(
                "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                "--local-directory", str(where / f"worker-{number}"),
                log=where / f"worker-{number}.log"))
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield "dask://" + address.removeprefix("tcp://")
    finally:
        for process in processes:
            _stop(process)


def events(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    """The last --json event of each task, by task name."""
    found: dict[str, dict[str, object]] = {}
    for line in result.stdout.splitlines():
        event = json.loads(line)
        if "task" in event:
            found[str(event["task"])] = event
    return found


def gone_soon(*pids: int, timeout: float) -> bool:
    return wait_for(lambda: all(gone(pid) for pid in pids), timeout)


PROJECT = """
[tasks.compile]
foreach = "src/*.c"
cmd = "echo compile >> runs.log; echo compiling {item}; tr a-z A-Z < {item} > {item}.o"
outputs = ["{item}.o"]

[tasks.link]
cmd = "echo link >> runs.log; cat src/a.c.o src/b.c.o > app; echo linked >&2"
inputs = ["src/a.c.o", "src/b.c.o"]
outputs = ["app"]
"""


def test_a_build_through_dask_equals_a_local_one(cluster: str, tmp_path: Path) -> None:
    remote, local = Project(tmp_path / "remote"), Project(tmp_path / "local")
    for project in (remote, local):
        project.flowfile(PROJECT)
        project.write("src/a.c", "int a = 1;\n")
        project.write("src/b.c", "int b = 2;\n")
    assert sorted(local.build("-j2")) == ["compile", "compile", "link"]
    result = remote.bflow("--executor", cluster, "-j2", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(remote.runs()) == ["compile", "compile", "link"]
    for path in ("src/a.c.o", "src/b.c.o", "app"):
        assert remote.read(path) == local.read(path)
    assert {name: event["attempts"] for name, event in events(result).items()} == \
        dict.fromkeys(["compile:src/a.c", "compile:src/b.c", "link"], 1)
    assert remote.bflow("log", "link").stdout == "linked\n"
    assert remote.bflow("log", "compile:src/a.c").stdout == "compiling src/a.c\n"
    # the records are a local build's: nothing is stale, and a local build runs nothing
    assert remote.bflow("status", "--check").returncode == 0
    assert remote.build() == []


def test_the_flowfile_picks_dask_and_output_streams_back(cluster: str, project: Project) -> None:
    project.flowfile(f"""
        [settings]
        executor = "{cluster}"

        [tasks.talk]
        cmd = "echo run >> runs.log; echo $PPID > parent; echo one; echo two"
    """)
    result = project.bflow("--stream", "--plain")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "talk | one\n" in result.stdout and "talk | two\n" in result.stdout
    assert project.runs() == ["run"]
    with distributed.Client("tcp://" + cluster.removeprefix("dask://")) as client:
        workers = set(client.run(os.getpid).values())
    assert int(project.read("parent")) in workers  # a worker started it, not bflow


def test_a_failure_on_a_worker_fails_the_build(cluster: str, project: Project) -> None:
    project.flowfile("""
        [tasks.broken]
        cmd = "echo run >> runs.log; echo 'it broke'; exit 3"
    """)
    result = project.bflow("--executor", cluster, "--plain")
    assert result.returncode == 1
    assert "FAILED broken: exit 3 (1 attempt" in result.stdout
    assert "it broke" in result.stdout
    assert project.runs() == ["run"]


def test_a_failed_attempt_is_retried_on_the_cluster(cluster: str, project: Project) -> None:
    project.flowfile("""
        [tasks.flaky]
        cmd = "echo run >> runs.log; echo try $(wc -l < runs.log); test $(wc -l < runs.log) -ge 3"
        retries = 2
        retry_delay = 0.05
    """)
    result = project.bflow("--executor", cluster, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.runs() == ["run"] * 3
    assert events(result)["flaky"]["attempts"] == 3
    log = project.bflow("log", "flaky").stdout
    assert log.index("try 1") < log.index("attempt 2 of 3") < log.index("try 2") \
        < log.index("attempt 3 of 3") < log.index("try 3")


def test_a_timeout_kills_the_whole_group_on_the_worker(cluster: str, project: Project) -> None:
    project.flowfile("""
        [tasks.slow]
        cmd = "echo run >> runs.log; echo $$ > leader.pid; sleep 60 & echo $! > child.pid; wait"
        timeout = 1
    """)
    result = project.bflow("--executor", cluster, "--plain")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED slow: timed out after 1s (1 attempt" in result.stdout
    assert gone_soon(int(project.read("leader.pid")), int(project.read("child.pid")), timeout=3)
    assert project.runs() == ["run"]


def test_ctrl_c_kills_the_remote_process_groups(cluster: str, project: Project) -> None:
    project.flowfile("""
        [tasks.one]
        cmd = "sleep 60 & echo $! > one.pid; trap '' TERM; wait"

        [tasks.two]
        cmd = "sleep 60 & echo $! > two.pid; wait"
    """)
    bflow = subprocess.Popen([sys.executable, "-m", "buildflow", "--executor", cluster, "-j2",
                              "--plain"], cwd=project.root, env=bflow_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while not all((project.root / name).exists() and (project.root / name).read_text()
                  for name in ("one.pid", "two.pid")):
        assert time.monotonic() < deadline and bflow.poll() is None
        time.sleep(0.05)
    pids = [int(project.read(name)) for name in ("one.pid", "two.pid")]
    bflow.send_signal(signal.SIGINT)
    output, _ = bflow.communicate(timeout=30)
    assert bflow.returncode == 130, output
    # bflow returns once the groups are killed (`one` ignores SIGTERM: SIGKILLed after 2 s)
    assert gone_soon(*pids, timeout=1), output
    assert project.bflow("status", "--check").returncode == 1  # nothing recorded as built


def test_a_worker_lost_mid_task_is_run_again_without_using_an_attempt(
        cluster: str, project: Project) -> None:
    # The first run kills its own worker (the command's parent) and lingers, as a command
    # would whose worker died under it; the second run, on whichever worker Dask picks, works.
    project.flowfile("""
        [tasks.victim]
        cmd = '''
            echo run >> runs.log
            if [ ! -e killed ]; then
                touch killed; sleep 60 & echo $! > orphan.pid; kill -9 $PPID; wait
            fi
            echo built > out.txt
        '''
        outputs = ["out.txt"]
    """)
    result = project.bflow("--executor", cluster, "--json", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.runs() == ["run", "run"]
    assert events(result)["victim"]["attempts"] == 1
    assert project.read("out.txt") == "built\n"
    assert gone_soon(int(project.read("orphan.pid")), timeout=5)  # killed before the rerun


def test_a_worker_shutting_down_counts_as_dead_to_the_sweep() -> None:
    # A killed worker closes its connection to the scheduler before it lets go of its
    # registry's lock, so the attempt may start again elsewhere while the lock is held: a
    # worker the kernel is shutting down must count as dead, or its commands live on.
    from buildflow.executors import remote

    own = Path(f"/proc/{os.getpid()}/stat").read_bytes()
    assert not remote._dead(str(os.getpid())) and not remote._ending(own)
    head, tail = own.rsplit(b")", 1)
    fields = tail.split()
    fields[6] = str(int(fields[6]) | 0x4).encode()  # PF_EXITING, as /proc shows a dying one
    assert remote._ending(head + b") " + b" ".join(fields))
    child = os.fork()
    if child == 0:
        os._exit(0)
    assert wait_for(lambda: remote._dead(str(child)), 5)  # a zombie, not yet reaped
    os.waitpid(child, 0)
    assert remote._dead(str(child))  # gone


def test_an_unreachable_scheduler_stops_the_build_saying_so(project: Project) -> None:
    project.flowfile("""
        [tasks.a]
        cmd = "echo run >> runs.log"
    """)
    result = project.bflow("--executor", "dask://127.0.0.1:1")  # nothing listens there
    assert result.returncode == 1
    assert "cannot reach the Dask scheduler" in result.stderr
    assert "Connection refused" in result.stderr  # said at once, not after Dask's timeout
    assert project.runs() == []
    # from the Flowfile, where it was said to come from --executor
    project.flowfile('[settings]\nexecutor = "dask://127.0.0.1:1"\n[tasks.a]\ncmd = "true"\n')
    result = project.bflow()
    assert result.returncode == 1
    assert "executor dask://127.0.0.1:1 (--executor, else settings.executor): cannot reach " \
           "the Dask scheduler" in result.stderr


def test_a_scheduler_lost_mid_build_fails_the_build_saying_so(project: Project,
                                                              tmp_path: Path) -> None:
    # a scheduler of its own, which the task kills: the sweep bflow asks the workers for as
    # the build ends could not reach them, an internal error (exit 3) over the build's own
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = _dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                      "--scheduler-file", str(scheduler_file), log=tmp_path / "scheduler.log")
    worker = None
    try:
        assert wait_for(lambda: scheduler_file.exists() and scheduler_file.read_text(), 60)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = _dask("worker", address, "--nthreads", "1", "--no-dashboard", "--host",
                       "127.0.0.1", "--local-directory", str(tmp_path / "worker"),
                       log=tmp_path / "worker.log")
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
        project.write("scheduler.pid", str(scheduler.pid))
        project.flowfile("""
            [tasks.a]
            cmd = "echo run >> runs.log; kill -9 $(cat scheduler.pid); sleep 2; echo a > a.txt"
            outputs = ["a.txt"]
        """)
        result = project.bflow("--executor", "dask://" + address.removeprefix("tcp://"),
                               "--json", "--trace", "trace.json", timeout=120)
        assert result.returncode == 1, result.stderr
        assert "the Dask cluster at dask://" in result.stderr and "internal error" not in \
            result.stderr
        assert project.runs() == ["run"]
        # the attempt that ran counts as one (it was 0 attempts, no trace event, no history)
        (failed,) = [event for event in map(json.loads, result.stdout.splitlines())
                     if event["event"] == "task_failed"]
        assert failed["attempts"] == 1 and failed["duration"] > 0
        spans = [event for event in json.loads(project.read("trace.json"))["traceEvents"]
                 if event.get("ph") == "X"]
        assert [span["name"] for span in spans] == ["a"]
        assert "1 task ran (1 failed)" in project.bflow("report").stdout
    finally:
        for process in (scheduler, worker):
            if process is not None:
                _stop(process)


def test_a_python_task_runs_on_a_worker(cluster: str, project: Project) -> None:
    """A `py` task's attempt is one more attempt the worker's runner takes: its function runs
    in a Python worker process started by the Dask worker, and its log comes back."""
    project.write("steps.py", """
import os


def upper(ctx):
    with open("runs.log", "a") as log:
        log.write("upper\\n")
    with open(ctx.inputs[0]) as source, open(ctx.outputs[0], "w") as out:
        out.write(source.read().upper())
    with open("parent", "w") as note:  # the Python worker's parent
        note.write(str(os.getppid()))
    print("uppered", file=ctx.log)
""")
    project.write("in.txt", "quiet\n")
    project.flowfile("""
        [tasks.upper]
        py = "steps:upper"
        inputs = ["in.txt"]
        outputs = ["out.txt"]
    """)
    result = project.bflow("--executor", cluster, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.runs() == ["upper"]
    assert project.read("out.txt") == "QUIET\n"
    assert project.bflow("log", "upper").stdout == "uppered\n"
    with distributed.Client("tcp://" + cluster.removeprefix("dask://")) as client:
        workers = set(client.run(os.getpid).values())
    assert int(project.read("parent")) in workers  # a Dask worker started it, not bflow
    assert project.build() == []


def test_a_python_worker_its_dead_dask_worker_left_running_is_killed(
        cluster: str, project: Project) -> None:
    # as a command's process group is: the function ran on after the build, and wrote its
    # output over the rerun's
    project.write("steps.py", """
import os
import signal
import time


def victim(ctx):
    with open("runs.log", "a") as log:
        log.write("run\\n")
    if not os.path.exists("killed"):
        open("killed", "w").close()
        with open("orphan.pid", "w") as note:
            note.write(str(os.getpid()))
        os.kill(os.getppid(), signal.SIGKILL)  # the Dask worker running this attempt
        time.sleep(60)
        open(ctx.output, "w").write("the orphan's\\n")
        return
    open(ctx.output, "w").write("built\\n")
""")
    project.flowfile("""
        [tasks.victim]
        py = "steps:victim"
        outputs = ["out.txt"]
    """)
    result = project.bflow("--executor", cluster, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.runs() == ["run", "run"]
    assert gone_soon(int(project.read("orphan.pid")), timeout=5)
    assert project.read("out.txt") == "built\n"


class Silent(NamedTuple):
    port: int
    held: list[socket.socket]  # the connections it took, as it takes them


@pytest.fixture
def silent() -> Iterator[Silent]:
    """A port where something accepts connections and never answers: a server of another
    kind, or a stopped scheduler."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        with suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield Silent(server.getsockname()[1], held)
    finally:
        server.close()
        for connection in held:
            connection.close()


@pytest.mark.parametrize("interrupted", [False, True])
def test_a_scheduler_that_never_answers_stops_the_build_in_time(project: Project, silent: Silent,
                                                               interrupted: bool) -> None:
    # Dask's handshake waited for as long as the peer kept the connection open, and held a
    # lock Ctrl-C needs: 26 s against such a listener, more against a stopped scheduler
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "buildflow", "--plain", "--executor",
         f"dask://127.0.0.1:{silent.port}"], cwd=project.root, env=bflow_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if interrupted:
        assert wait_for(lambda: len(silent.held) > 1)  # the check it listens, then Dask's
        process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    if interrupted:
        assert process.returncode == 130, out + err
    else:
        assert process.returncode == 1, out + err
        assert f"no answer from tcp://127.0.0.1:{silent.port} in 10 s: is a Dask scheduler " \
               "listening there?" in err
    assert project.runs() == []


def test_a_task_waiting_for_the_connection_that_failed_never_ran(project: Project,
                                                                 silent: Silent) -> None:
    """With -j2 the second task waited for the first's connection; when it failed, the
    second was reported "killed by SIGTERM" after 1 attempt, and recorded as a run."""
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log"\n'
                     '[tasks.b]\ncmd = "echo b >> runs.log"\n')
    result = project.bflow("-j2", "--json", "--executor", f"dask://127.0.0.1:{silent.port}",
                           timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [event for event in map(json.loads, result.stdout.splitlines())
              if event["event"] == "task_failed"]
    assert sorted(event["task"] for event in failed) == ["a", "b"]
    for event in failed:
        assert event["attempts"] == 0 and "cannot reach the Dask scheduler" in event["reason"]
    assert project.runs() == []


class _LostClient:
    """A Dask client whose scheduler is gone, as Dask's own is then: `run` fails, and so, at
    times, does `close` (distributed's "Cannot change state of expiring Timeout")."""

    def __init__(self, status: str = "running") -> None:
        self.status = status  # "running" until Dask's client finds the scheduler gone
        self.closed = False
        self.asked = False

    def run(self, *args: object, **kwargs: object) -> None:
        self.asked = True
        raise OSError("the scheduler is gone")

    def close(self) -> None:
        self.closed = True
        raise RuntimeError("Cannot change state of expiring Timeout")


def test_closing_a_client_whose_scheduler_is_gone_is_no_internal_error() -> None:
    # it made the build's end an internal error (exit 3) once in a while, after the build
    # had said the cluster failed
    from buildflow.executors.dask import DaskExecutor
    from buildflow.runner import SubprocessRunner

    executor = DaskExecutor("dask://127.0.0.1:1", local=SubprocessRunner())
    executor._client = client = _LostClient()
    executor.close()
    assert client.closed


def test_a_client_reconnecting_to_a_lost_scheduler_is_not_asked_to_sweep() -> None:
    """The sweep waited out Dask's reconnect, 10 s after the build's summary, for nothing."""
    from buildflow.executors.dask import DaskExecutor
    from buildflow.runner import SubprocessRunner

    executor = DaskExecutor("dask://127.0.0.1:1", local=SubprocessRunner())
    executor._client = client = _LostClient(status="connecting")
    executor.close()
    assert client.closed and not client.asked
