"""Ctrl-C, SIGTERM and SIGHUP: every process group stopped, records kept, exit 130, no
traceback, and a terminal left as found."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time

import pytest

from buildflow import engine
from buildflow import events as ev
from buildflow.errors import Interrupted, raise_interrupted
from conftest import Project, bflow_env, terminal_env, waiting_in
from test_runner import gone, wait_for

FLOW = """
[tasks.quick]
cmd = "echo quick >> runs.log; echo done > {output}"
outputs = ["quick.txt"]
[tasks.slow]
cmd = "echo slow >> runs.log; sleep 30 & echo $! > slow.pid; wait"
deps = ["quick"]
"""


def started(project: Project) -> bool:
    pid_file = project.root / "slow.pid"
    return pid_file.exists() and pid_file.read_text().strip() != ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_stops_everything_and_keeps_records(project: Project, signum: int) -> None:
    # SIGHUP: the terminal closed or the ssh connection dropped, which never reaches the
    # commands, each in a session of its own
    project.flowfile(FLOW)
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"], cwd=project.root,
                               env=bflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert wait_for(lambda: started(project))
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback" not in out + err
    assert out.splitlines()[-1].startswith("bflow: 1 ran, 0 up to date, 1 interrupted in ")
    assert out.splitlines()[-1].endswith(" (interrupted)")  # the task not counted as failed
    child = int(project.read("slow.pid"))
    assert gone(child)
    (project.root / "slow.pid").unlink()
    project.flowfile(FLOW.replace("sleep 30 & echo $! > slow.pid; wait", "true"))
    assert project.bflow().returncode == 0
    assert project.runs() == ["quick", "slow", "slow"]  # quick's record survived


def test_a_command_that_ends_cleanly_on_sigterm_is_still_interrupted(project: Project) -> None:
    """A tool that shuts down gracefully on SIGTERM (exit 0) was recorded as a success when
    Ctrl-C stopped it: its cut-short output was up to date from then on."""
    project.write("gen.py", "import signal, sys, time\n"
                            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
                            "open('runs.log', 'a').write('gen\\n')\n"
                            "with open('data.out', 'w') as out:\n"
                            "    for i in range(600):\n"
                            "        out.write(f'row {i}\\n'); out.flush(); time.sleep(0.05)\n")
    project.flowfile(f"""
        [tasks.gen]
        cmd = "{sys.executable} gen.py"
        outputs = ["data.out"]
        """)
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"], cwd=project.root,
                               env=bflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert wait_for(lambda: (project.root / "data.out").exists())
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    assert "ok     gen" not in out
    assert out.splitlines()[-1].startswith("bflow: 0 ran, 0 up to date, 1 interrupted in ")
    assert project.runs() == ["gen"]
    assert project.bflow("status").stdout.startswith("gen: ")  # stale: it runs again


def test_a_signal_stops_the_commands_while_bflow_is_stuck_printing(project: Project) -> None:
    """bflow blocked writing a task's output to a stdout nobody reads (a stalled pager): a
    worker held the lock as it printed, and SIGTERM, which took that lock first, stopped
    nothing: the other command ran to its end."""
    project.flowfile("""
        [tasks.big]
        cmd = "head -c 3000000 /dev/zero | tr '\\\\0' x | fold -w 100"
        [tasks.long]
        cmd = "echo $$ > long.pid; sleep 30; echo long-end >> runs.log"
        """)
    reader, writer = os.pipe()
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain", "-j2"],
                               cwd=project.root, env=bflow_env(), stdout=writer,
                               stderr=subprocess.DEVNULL)
    os.close(writer)
    try:
        assert wait_for(lambda: (project.root / "long.pid").exists()
                        and project.read("long.pid").strip() != "")
        # `big`'s 3 MB block is being printed: past half a pipe of it, it fills the pipe
        assert wait_for(lambda: waiting_in(reader) > 32768)
        process.send_signal(signal.SIGTERM)
        assert wait_for(lambda: gone(int(project.read("long.pid"))), timeout=10)
    finally:
        with os.fdopen(reader, "rb") as pipe:
            pipe.read()  # drained: bflow can end
        process.wait(timeout=30)
    assert process.returncode == 130
    assert not (project.root / "runs.log").exists()


def test_a_hangup_ignored_when_bflow_started_is_left_ignored(project: Project) -> None:
    project.flowfile('[tasks.a]\ncmd = "echo > started; sleep 1; echo a >> runs.log"\n')
    process = subprocess.Popen(["nohup", sys.executable, "-m", "buildflow", "--plain"],
                               cwd=project.root, env=bflow_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert wait_for(lambda: (project.root / "started").exists())  # in the build, handlers set
    process.send_signal(signal.SIGHUP)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    assert project.runs() == ["a"]



def _ignoring_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("where", ["in the build", "waiting for the lock"])
def test_sigint_ignored_when_bflow_started_is_left_ignored_throughout(
        project: Project, where: str) -> None:
    """A background job of a script (`bflow &`) starts with SIGINT ignored, which the shell
    sets so that the terminal's Ctrl-C leaves it running, as Make leaves it. The build took
    SIGINT all the same, while a wait for the lock and `watch` ignored it; SIGTERM still
    stops bflow."""
    project.flowfile('[tasks.a]\ncmd = "echo > started; while [ ! -e go ]; do sleep 0.02; '
                     'done; echo a >> runs.log"\n')
    holder = None
    if where == "waiting for the lock":
        holder = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"],
                                  cwd=project.root, env=bflow_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        assert wait_for(lambda: (project.root / "started").exists())
    said = project.root / "said.txt"
    with said.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"],
                                   cwd=project.root, env=bflow_env(), stdout=output,
                                   stderr=subprocess.STDOUT, preexec_fn=_ignoring_sigint)
    if holder is None:
        assert wait_for(lambda: (project.root / "started").exists())
    else:  # it waits for the lock the first holds
        assert wait_for(lambda: "waiting for another bflow run" in said.read_text())
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)  # what it would take to stop: it must not
    assert process.poll() is None  # still there
    (project.root / "go").write_text("")
    assert process.wait(30) == 0, said.read_text()
    if holder is not None:
        assert holder.wait(30) == 0
    assert project.runs() == ["a"] * (1 if holder is None else 2)  # it always runs

def read_all(fd: int, process: subprocess.Popen[bytes], follower: int) -> bytes:
    """Everything the process writes to the terminal `fd` leads, until it has exited and its
    output is drained. The test holds the terminal's other end (`follower`) open until then
    and closes it: once the last one closes, Linux may drop output still on its way to `fd`."""
    data = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            data += os.read(fd, 65536)
        elif process.poll() is not None:
            break  # exited, and nothing more came within 0.1 s
    os.close(follower)
    process.wait(30)
    return data


def test_ctrl_c_on_a_terminal_shows_the_cursor_again(project: Project) -> None:
    project.flowfile(FLOW)
    leader, follower = pty.openpty()
    env = terminal_env(80)
    process = subprocess.Popen([sys.executable, "-m", "buildflow"], cwd=project.root, env=env,
                               stdin=follower, stdout=follower, stderr=follower)
    assert wait_for(lambda: started(project))
    process.send_signal(signal.SIGINT)
    screen = read_all(leader, process, follower)
    os.close(leader)
    assert process.returncode == 130
    assert b"\x1b[?25l" in screen  # the live display hid the cursor ...
    assert screen.rindex(b"\x1b[?25h") > screen.rindex(b"\x1b[?25l")  # ... and showed it
    assert b"Traceback" not in screen
    assert b"interrupted" in screen
    assert gone(int(project.read("slow.pid")))


@pytest.mark.parametrize("signum, raised", [(signal.SIGINT, KeyboardInterrupt),
                                            (signal.SIGTERM, Interrupted)])
def test_a_signal_as_the_build_ends_reaches_the_caller(project: Project, signum: int,
                                                       raised: type[BaseException]) -> None:
    """A signal that comes after the scheduler took its last message (here: while the summary
    is reported) is raised again once the caller's handler is back, not dropped with the
    build's queue: `bflow watch` once kept running after such a Ctrl-C."""
    project.flowfile(FLOW.replace("sleep 30 & echo $! > slow.pid; wait", "true"))

    class SignalAtTheEnd(ev.Collector):
        def handle(self, event: ev.Event) -> None:
            super().handle(event)
            if isinstance(event, ev.BuildFinished):
                signal.raise_signal(signum)

    previous = signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        with pytest.raises(raised):
            engine.build(engine.load(project.root / "Flowfile"), reporter=SignalAtTheEnd())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sorted(project.runs()) == ["quick", "slow"]  # the build itself ran to its end


def test_what_waits_for_an_interrupted_task_is_skipped_as_the_build_stopped(
        project: Project) -> None:
    # it said "dependency failed: slow", as if slow had failed
    project.flowfile(FLOW + '[tasks.after]\ncmd = "echo after >> runs.log"\ndeps = ["slow"]\n')
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--json"], cwd=project.root,
                               env=bflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert wait_for(lambda: started(project))
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    events = [json.loads(line) for line in out.splitlines()]
    assert {"event": "task_skipped", "task": "after", "reason": "build stopped"} in events
    assert events[-1]["interrupted"] == 1 and events[-1]["failed"] == 0


@pytest.mark.parametrize("rerun", [False, True])
def test_what_a_killed_run_wrote_is_pruned_with_its_task(project: Project, rerun: bool) -> None:
    """SIGKILL after `up:src/b.txt` wrote out/b.o but before its record: once src/b.txt went,
    out/b.o stayed for `all`'s glob (a clean build: "A"). On a first run no record knew the
    file; on a re-run the task's record named the old output, so the killed run's was taken
    for an edit by hand ("left out/b.o in place: modified since")."""
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    project.flowfile("""
        [tasks.up]
        foreach = "src/*.txt"
        cmd = "tr a-z A-Z < {item} > {output}; [ ! -e pause ] || [ -e {stem}.pid ] || (echo $$ > {stem}.pid; sleep 30)"
        outputs = ["out/{stem}.o"]
        [tasks.all]
        cmd = "cat {inputs} > {output}"
        inputs = ["out/*.o"]
        outputs = ["all.txt"]
        """)
    if rerun:
        assert project.bflow().returncode == 0
        project.write("src/b.txt", "b2\n")
    project.write("pause", "")
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain", "-j2"],
                               cwd=project.root, env=bflow_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    pids = [project.root / f"{stem}.pid" for stem in (("b",) if rerun else ("a", "b"))]
    assert wait_for(lambda: all(p.exists() and p.read_text().strip() for p in pids))
    process.kill()
    process.wait(timeout=30)
    for pid in pids:  # the commands, each the leader of its own group, outlive bflow
        os.killpg(int(pid.read_text()), signal.SIGKILL)
    (project.root / "src" / "b.txt").unlink()
    (project.root / "pause").unlink()
    result = project.bflow("--plain")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (project.root / "out" / "b.o").exists()
    assert "removed out/b.o, written by task 'up:src/b.txt', which no longer exists" \
        in result.stderr
    assert project.read("all.txt") == "A\n"


def _killed_with_gen(project: Project, *targets: str) -> None:
    """A build killed with SIGKILL, and the command of its task `gen` (which writes its pid
    to gen.pid), as a power loss would leave them."""
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain", *targets],
                               cwd=project.root, env=bflow_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    pid = project.root / "gen.pid"
    assert wait_for(lambda: pid.exists() and pid.read_text().strip())
    process.kill()
    process.wait(timeout=30)
    os.killpg(int(pid.read_text()), signal.SIGKILL)


def test_what_a_killed_run_wrote_into_its_directory_output_is_pruned_with_its_task(
        project: Project) -> None:
    """The killed run's files were settled as its, its directory output's tree not: once
    the task went, site/a.g stayed for `**/*.g` to read (a clean build's all.txt is empty)."""
    project.flowfile("""
        [tasks.gen]
        cmd = "mkdir -p site; echo page > site/a.g; echo $$ > gen.pid; exec sleep 30"
        outputs = ["site/"]
        """)
    _killed_with_gen(project)
    project.flowfile('[tasks.join]\ncmd = "cat {inputs} > {output}"\ninputs = ["**/*.g"]\n'
                     'outputs = ["all.txt"]\n')
    result = project.bflow("--plain")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removed site, written by task 'gen', which no longer exists" in result.stderr
    assert not (project.root / "site").exists() and project.read("all.txt") == ""


def test_a_file_there_before_a_killed_run_or_written_after_it_is_never_taken_as_its(
        project: Project) -> None:
    # the killed run of `gen` wrote nothing; config.h, the user's, was edited after the kill
    # and after a build had taken stock: each was removed as the run's once `gen` went
    project.write("config.h", "mine, v1\n")
    project.flowfile("""
        [tasks.gen]
        cmd = "echo $$ > gen.pid; exec sleep 30"
        outputs = ["config.h", "new.h"]
        [tasks.other]
        cmd = "echo other >> runs.log"
        """)
    _killed_with_gen(project, "gen")
    project.write("config.h", "mine, v2\n")  # before any build: it was there before the run
    assert project.build("other") == ["other"]  # takes stock of the killed run
    project.write("new.h", "mine too\n")  # after that build
    project.flowfile('[tasks.other]\ncmd = "echo other >> runs.log"\n')
    result = project.bflow("--plain")
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.read("config.h") == "mine, v2\n" and project.read("new.h") == "mine too\n"
    assert "removed" not in result.stderr
