"""Faults during a build: each gives a clear message naming the file, and nothing is recorded
falsely (the next build re-runs what did not really succeed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import Project, bflow_env

AS_ROOT = os.geteuid() == 0

COPY = """
[tasks.copy]
cmd = "echo copy >> runs.log && cat {input} > {output}"
inputs = ["in.txt"]
outputs = ["out.txt"]
"""

# Runs bflow with one kind of write failing with ENOSPC, the way a full disk fails it.
FULL_DISK = """
import builtins, errno, sys
from buildflow import fs

where = sys.argv.pop(1)
real_open = builtins.open

def full(path, *args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(path))

class FullFile:
    def __init__(self, handle):
        self.handle = handle
    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", self.handle.name)
    def __getattr__(self, name):
        return getattr(self.handle, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.handle.close()

if where == "state":
    fs.open = lambda *args, **kwargs: FullFile(real_open(*args, **kwargs))  # the state's disk
else:  # the logs' disk: no file can be made there, nor written whole
    fs.LocalFileSystem.open_scratch = lambda self, path: full(path)
    real_replace = fs.LocalFileSystem.replace
    fs.LocalFileSystem.replace = lambda self, path, chunks, **kwargs: (
        full(path) if "/logs/" in path else real_replace(self, path, chunks, **kwargs))
from buildflow.cli import main
raise SystemExit(main())
"""


def build_in_background(project: Project, until_runs: list[str]) -> subprocess.Popen[str]:
    """Start `bflow --plain` and return once its commands have logged `until_runs`."""
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"], cwd=project.root,
                               env=bflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 30
    while project.runs() != until_runs:
        assert time.monotonic() < deadline and process.poll() is None, "the build did not start"
        time.sleep(0.01)
    return process


def assert_explained(result: subprocess.CompletedProcess[str], code: int = 1) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_unreadable_input_as_a_normal_user(project: Project) -> None:
    if AS_ROOT:
        pytest.skip("root reads files whatever their mode")
    project.flowfile(COPY)
    project.write("in.txt", "x\n").chmod(0)
    result = project.bflow()
    assert_explained(result)
    assert "in.txt" in result.stdout and "readable" in result.stdout
    assert project.runs() == []


def test_unreadable_input_through_the_hasher(project: Project) -> None:
    """The same fault as root, injected at the filesystem interface: the task whose input
    cannot be read fails with a message naming it; with -k, independent work still runs."""
    from buildflow import engine
    from buildflow.fs import LocalFileSystem, Stat
    from buildflow.scheduler import Outcome

    class Unreadable(LocalFileSystem):
        def read_hash(self, path: str) -> tuple[Stat, str]:
            if path == "in.txt":
                raise PermissionError(13, "Permission denied", path)
            return super().read_hash(path)

    project.flowfile(COPY + """
    [tasks.other]
    cmd = "echo other >> runs.log && cp {input} {output}"
    inputs = ["other.txt"]
    outputs = ["other.out"]
    """)
    project.write("in.txt", "x\n")
    project.write("other.txt", "o\n")
    loaded = engine.load(project.root / "Flowfile")
    original = engine.hasher_for
    engine.hasher_for = lambda p, s: engine.Hasher(Unreadable(str(p.root)), s.stats)
    try:
        result = engine.build(loaded, keep_going=True)
    finally:
        engine.hasher_for = original
    assert result.exit_status == 1
    assert result.tasks["copy"].outcome is Outcome.FAILED
    assert re.search(r"in\.txt: cannot read .*Permission denied.*readable",
                     result.tasks["copy"].reason)
    assert project.runs() == ["other"]
    assert project.bflow().returncode == 0 and project.runs() == ["other", "copy"]


def test_input_deleted_while_the_build_runs(project: Project) -> None:
    project.flowfile("""
    [tasks.slow]
    cmd = "echo slow >> runs.log && while [ ! -e go ]; do sleep 0.01; done && touch {output}"
    outputs = ["slow.out"]

    [tasks.use]
    cmd = "echo use >> runs.log && cat {input} > {output}"
    inputs = ["data.txt"]
    outputs = ["use.out"]
    deps = ["slow"]
    """)
    project.write("data.txt", "data\n")
    process = build_in_background(project, until_runs=["slow"])
    (project.root / "data.txt").unlink()
    project.write("go", "")
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1 and "Traceback" not in stderr
    assert "FAILED use: input data.txt is missing" in stdout
    assert project.runs() == ["slow"]  # its command never ran on the missing file
    project.write("data.txt", "data\n")
    status = project.bflow("status")
    assert "use: no successful run recorded" in status.stdout
    assert "slow:" not in status.stdout


@pytest.mark.parametrize("path", ["an output name too long", "a depfile name too long",
                                  "an output under a loop of links"])
def test_a_path_no_file_can_have_is_no_internal_error(project: Project, path: str) -> None:
    """Each was exit 3 (ENAMETOOLONG, ELOOP from a stat or an open): such a file is not
    there, as a missing one is not; the command then says what it could not write."""
    long_name = "x" * 300
    outputs, depfile = ["out.txt"], "deps.d"
    if path == "an output name too long":
        outputs = [f"out/{long_name}"]
        (project.root / "out").mkdir()
    elif path == "a depfile name too long":
        depfile = f"out/{long_name}.d"
    else:
        (project.root / "loop1").symlink_to("loop2")
        (project.root / "loop2").symlink_to("loop1")
        outputs = ["loop1/a.txt"]
    project.flowfile(f"""
    [tasks.t]
    cmd = "echo t >> runs.log && echo t > out.txt; echo t > {outputs[0]}"
    outputs = {json.dumps(outputs)}
    depfile = "{depfile}"
    """)
    result = project.bflow("--plain")
    assert "internal error" not in result.stderr, result.stderr
    if path == "a depfile name too long":  # names nothing, as a missing depfile
        assert result.returncode == 0 and project.build() == []
    else:
        assert result.returncode == 1 and "FAILED t" in result.stdout
    assert project.runs() == ["t"]


def test_a_globbed_tree_deeper_than_path_max_is_no_internal_error(project: Project) -> None:
    """A directory whose absolute path passes PATH_MAX cannot be listed: the load's walk
    skips it, and storing the loaded project, which lists it too, was exit 3 at every run."""
    project.write("src/top.txt", "top\n")
    directory = os.open(project.root / "src", os.O_RDONLY)
    try:
        for _ in range(4200 // 10):
            os.mkdir("d12345678", dir_fd=directory)
            inner = os.open("d12345678", os.O_RDONLY, dir_fd=directory)
            os.close(directory)
            directory = inner
    finally:
        os.close(directory)
    project.flowfile("""
    [tasks.all]
    cmd = "echo all >> runs.log && cat src/top.txt > {output}"
    inputs = ["src/**/*.txt"]
    outputs = ["all.txt"]
    """)
    for _ in range(2):
        result = project.bflow("--plain")
        assert result.returncode == 0, result.stdout + result.stderr
    assert project.runs() == ["all"]
    assert project.bflow("status").returncode == 0

def test_a_command_longer_than_linux_takes_says_so(project: Project) -> None:
    """`{inputs}` over thousands of files passes the 128 KiB Linux allows `sh -c` its one
    argument: the bare "Argument list too long" (exit 126) named no limit, and the failure
    printed all 300 KiB of the command."""
    for number in range(12_000):
        project.write(f"src/file_number_{number}.txt", "")
    project.flowfile('[tasks.big]\ncmd = "cat {inputs} > all.txt"\ninputs = ["src/*.txt"]\n'
                     'outputs = ["all.txt"]\n')
    result = project.bflow("--plain")
    assert result.returncode == 1
    assert "Argument list too long: the command is " in result.stdout
    assert "Linux takes at most 128 KiB in one argument" in result.stdout
    assert "characters more; `bflow -n TASK` shows it whole)" in result.stdout
    assert len(result.stdout) < 10_000

def test_cache_dir_that_cannot_be_created(project: Project) -> None:
    project.flowfile('[settings]\ncache_dir = "blocker/cache"\n' + COPY)
    project.write("in.txt", "x\n")
    project.write("blocker", "a file where the cache dir should go\n")
    result = project.bflow()
    assert_explained(result)
    assert "blocker/cache" in result.stderr and "writable" in result.stderr
    assert project.runs() == []


def test_a_fault_that_stops_the_build_ends_it_as_every_report_expects(project: Project) -> None:
    """A log that cannot be written stops the build (exit 1). `--json` ended after
    `task_started`, the page kept reloading with every task pending, the trace was never
    written and `on_failure` never ran."""
    project.flowfile('[settings]\non_failure = "cat > hook.json"\n' + COPY + """
        [tasks.after]
        cmd = "echo after >> runs.log && cat {input} > {output}"
        inputs = ["out.txt"]
        outputs = ["after.txt"]
        """)
    project.write("in.txt", "x\n")
    project.write(".bflow/logs", "a file where the logs go\n")
    result = project.bflow("--json", "--report", "r.html", "--trace", "t.json")
    assert result.returncode == 1 and "internal error" not in result.stderr
    assert "cannot write the output log of task 'copy'" in result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["event"], e.get("task")) for e in events] == [
        ("task_started", "copy"), ("task_failed", "copy"), ("task_skipped", "after"),
        ("build_finished", None)]
    assert "cannot write the output log" in events[1]["reason"]
    assert events[-1]["exit_status"] == 1 and events[-1]["failed"] == 1
    page = project.read("r.html")
    assert 'data-task="copy" data-state="failed"' in page and "location.reload" not in page
    assert json.loads(project.read("t.json"))["traceEvents"] is not None
    assert json.loads(project.read("hook.json"))["exit_status"] == 1
    assert project.runs() == []

def test_read_only_cache_dir_as_a_normal_user(project: Project) -> None:
    if AS_ROOT:
        pytest.skip("root writes whatever the mode")
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    (project.root / ".bflow").mkdir()
    (project.root / ".bflow").chmod(0o555)
    try:
        result = project.bflow()
    finally:
        (project.root / ".bflow").chmod(0o755)
    assert_explained(result)
    assert ".bflow" in result.stderr and "writable" in result.stderr


def build_on_a_full_disk(project: Project, where: str) -> subprocess.CompletedProcess[str]:
    script = project.write("full_disk.py", FULL_DISK)
    return subprocess.run([sys.executable, str(script), where, "--plain"], cwd=project.root,
                          env=bflow_env(), capture_output=True, text=True, timeout=60)


def test_full_disk(project: Project) -> None:
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    assert project.bflow().returncode == 0
    project.write("in.txt", "y\n")
    result = build_on_a_full_disk(project, "state")
    assert_explained(result)
    assert "No space left on device" in result.stderr
    assert ".bflow/state" in result.stderr
    # The run whose record could not be written is not trusted: the next build redoes it.
    runs = len(project.runs())
    assert project.bflow().returncode == 0
    assert len(project.runs()) == runs + 1
    assert project.read("out.txt") == "y\n"


@pytest.mark.parametrize("status", [4, 0])
def test_a_full_disk_where_logs_go_shows_the_command_s_output_with_a_warning(
        project: Project, status: int) -> None:
    # the command never ran: the build failed on its log, and a failing compiler's error,
    # which a full disk often causes, was never seen
    project.flowfile(f"""
    [tasks.cc]
    cmd = "echo cc >> runs.log && echo 'cc: error: main.c: no such file' >&2 && cp {{input}} {{output}} && exit {status}"
    inputs = ["in.txt"]
    outputs = ["out.txt"]
    """)
    project.write("in.txt", "x\n")
    result = build_on_a_full_disk(project, "logs")
    assert_explained(result, 1 if status else 0)
    assert "  | cc: error: main.c: no such file" in result.stdout
    assert ("FAILED cc: exit 4" in result.stdout) == bool(status)
    assert re.search(r"warning: .*\.bflow/logs/cc-\w+\.log: cannot save the output log of "
                     r"task 'cc': No space left on device", result.stderr)
    assert project.runs() == ["cc"]
    # its record is kept as ever: a success needs no run, a failure runs again
    assert project.build(status=1 if status else 0) == (["cc"] if status else [])


def test_command_not_found(project: Project) -> None:
    project.flowfile("""
    [tasks.missing]
    cmd = "no-such-command-anywhere --flag"
    """)
    result = project.bflow("--plain")
    assert_explained(result)
    assert "FAILED missing: exit 127 (command not found)" in result.stdout
    assert "no-such-command-anywhere" in result.stdout
    assert "missing:" in project.bflow("status").stdout


def test_command_killed_by_a_signal(project: Project) -> None:
    project.flowfile("""
    [tasks.victim]
    cmd = "echo victim >> runs.log && touch {output} && kill -KILL $$"
    outputs = ["victim.out"]
    """)
    result = project.bflow("--plain")
    assert_explained(result)
    assert "FAILED victim: killed by SIGKILL" in result.stdout
    project.bflow("--plain")
    assert project.runs() == ["victim", "victim"]  # never recorded, so it runs again


def test_missing_cwd_is_named(project: Project) -> None:
    project.flowfile("""
    [tasks.lost]
    cmd = "true"
    cwd = "gone"
    """)
    result = project.bflow("--plain")
    assert_explained(result)
    assert "cannot run in" in result.stdout and "gone: No such file or directory" in result.stdout


def test_a_named_pipe_input_is_refused_not_waited_on(project: Project) -> None:
    project.flowfile(COPY)
    os.mkfifo(project.root / "in.txt")
    result = project.bflow(timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "in.txt" in result.stdout and "not a regular file" in result.stdout
    assert project.runs() == []


def test_an_input_that_became_a_named_pipe_after_a_no_op_fails_its_task_alone(
        project: Project) -> None:
    """With shortcuts checked (BFLOW_VERIFY=1, the suite's default), the full decision's
    failure to hash it stopped the whole build, `-k` or not, and ran nothing."""
    project.flowfile("""
    [tasks.up]
    foreach = "src/*.txt"
    cmd = "echo {stem} >> runs.log; tr a-z A-Z < {item} > {output}"
    outputs = ["out/{stem}.txt"]
    """)
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    assert sorted(project.build()) == ["a", "b"]
    assert project.build() == []  # a no-op: the fast path's proof is made
    project.write("src/b.txt", "b2\n")
    (project.root / "src" / "a.txt").unlink()
    os.mkfifo(project.root / "src" / "a.txt")
    result = project.bflow("--plain", "-k", timeout=30)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED up:src/a.txt: src/a.txt: cannot read the file to hash it" in result.stdout
    assert project.runs()[2:] == ["b"] and project.read("out/b.txt") == "B2\n"


@pytest.mark.parametrize("named", ["output", "depfile input"])
def test_a_named_pipe_a_task_leaves_fails_that_task_alone(project: Project, named: str) -> None:
    # it stopped the whole build, `-k` or not, killing the task beside it, with no summary
    fifo = "mkfifo {output}" if named == "output" else \
        "echo '{output}: fifo' > {depfile}; echo x > {output}"
    if named == "depfile input":
        os.mkfifo(project.root / "fifo")  # there before the run: read as it names it
    project.flowfile(f"""
    [tasks.pipe]
    cmd = "{fifo}"
    outputs = ["o"]
    depfile = "o.d"
    [tasks.slow]
    cmd = "sleep 1; echo slow >> runs.log; echo > {{output}}"
    outputs = ["slow.txt"]
    """)
    result = project.bflow("--plain", "-k", "-j2", timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    failed = "o" if named == "output" else "fifo"
    assert f"FAILED pipe: {failed}: cannot read the file to hash it: not a regular file" \
        in result.stdout
    assert project.runs() == ["slow"]
    assert result.stdout.splitlines()[-1].startswith("bflow: 1 ran, 0 up to date, 1 failed")


def test_a_lock_file_that_takes_no_pid_still_locks(project: Project) -> None:
    # the pid written for a waiting run to name was an internal error when it could not be
    # written (a full disk: ENOSPC; a named pipe there: EINVAL), though the lock was held
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    (project.root / ".bflow").mkdir()
    os.mkfifo(project.root / ".bflow" / "lock")
    result = project.bflow("--plain", timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.read("out.txt") == "x\n"


def test_a_named_pipe_where_the_state_goes_is_refused_not_waited_on(project: Project) -> None:
    # the build waited for ever for a writer to open the pipe
    project.flowfile(COPY)
    project.write("in.txt", "x\n")
    (project.root / ".bflow").mkdir()
    os.mkfifo(project.root / ".bflow" / "state")
    result = project.bflow("--plain", timeout=30)
    assert_explained(result)
    assert ".bflow/state: cannot read the build state: not a regular file" in result.stderr
    assert project.runs() == []
