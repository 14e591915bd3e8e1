"""SIGKILL at random moments and corrupted state files: nothing is ever recorded falsely.

A graph of a few dozen tasks whose commands write their outputs in two steps (so a killed run
leaves a partial file) is built, killed at random points (bflow and every command it started,
as a power loss would), and resumed, over many iterations. After each kill the state loads,
every task bflow would skip has complete outputs equal to a clean build's, and the always
failing task is never recorded. Then the state file is truncated and corrupted in random ways:
bflow warns, rebuilds what it cannot trust and never crashes.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import buildflow
from buildflow import engine
from buildflow.staleness import survey
from buildflow.state import State
from conftest import Project, bflow_env

SOURCES = 10
ITERATIONS = 20
CORRUPTIONS = 12

FLOWFILE = """
[settings]
jobs = 4

[tasks.leaf]
foreach = "src/*.txt"
cmd = "echo {task} >> runs.log && cat {item} > {output} && sleep 0.02 && echo done >> {output}"
outputs = ["build/leaf/{stem}.out"]

[tasks.mid]
foreach = "src/*.txt"
cmd = "echo {task} >> runs.log && tr a-z A-Z < {input} > {output} && echo done >> {output}"
inputs = ["build/leaf/{stem}.out"]
outputs = ["build/mid/{stem}.out"]

[tasks.join]
cmd = "echo join >> runs.log && cat {inputs} > {output} && sleep 0.02 && echo done >> {output}"
inputs = ["build/mid/*.out"]
outputs = ["build/all.txt"]

[tasks.check]
cmd = "echo check >> runs.log && grep -q done {input}"
inputs = ["build/all.txt"]

[tasks.broken]
cmd = "echo broken >> runs.log && echo partial > {output} && exit 1"
inputs = ["src/s0.txt"]
outputs = ["build/broken.out"]
"""


def make_project(root: Path) -> Project:
    project = Project(root)
    project.write("Flowfile", FLOWFILE)
    for index in range(SOURCES):
        project.write(f"src/s{index}.txt", f"source {index}\n")
    return project


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted((root / "build").rglob("*")) if p.is_file()}


def start_build(project: Project, *options: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "buildflow", "build", "-k", "--plain",
                             *options],
                            cwd=project.root, env=bflow_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, pgid) of every process below `pid`, from /proc."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append((int(entry), int(fields[2])))
    found, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child[0])
    return found


def power_loss(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL bflow and every command it started (each in its own process group)."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGSTOP)
    for _ in range(2):
        for pid, pgid in _descendants(process.pid):
            for kill in (lambda: os.killpg(pgid, signal.SIGKILL),
                         lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    kill()
                except (ProcessLookupError, PermissionError):
                    pass
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for_runs(project: Project, count: int, process: subprocess.Popen[bytes]) -> None:
    """Until `count` more commands started, or the build ended by itself."""
    deadline = time.monotonic() + 30
    while len(project.runs()) < count and process.poll() is None:
        assert time.monotonic() < deadline, "the build made no progress"
        time.sleep(0.005)


def assert_trustworthy(project: Project, reference: dict[str, bytes]) -> None:
    """The state loads; whatever bflow would skip has exactly a clean build's outputs."""
    warnings: list[str] = []
    loaded = buildflow.load(project.root / "Flowfile")
    state = State(os.path.join(loaded.cache_dir, "state"), warnings.append).load()
    assert "broken" not in state.tasks
    names = engine.selected(loaded)
    decisions = survey(loaded, names, state, engine.hasher_for(loaded, state).file_hash)
    for name, decision in decisions.items():
        if decision.stale:
            continue
        assert name in state.tasks
        for output in loaded.tasks[name].outputs:
            assert (project.root / output).read_bytes() == reference[output], name


def test_killed_builds_resume_to_a_clean_result(tmp_path: Path) -> None:
    clean = make_project(tmp_path / "clean")
    assert clean.bflow("build", "-k").returncode == 1
    reference = tree(clean.root)
    assert b"done" in reference["build/all.txt"]

    rng = random.Random(8)
    project = make_project(tmp_path / "killed")
    total_tasks = 2 * SOURCES + 3
    for _ in range(ITERATIONS):
        # Keep work to do: some outputs deleted, and now and then everything forced (-B),
        # so kills also land while good records are being replaced.
        for path in rng.sample(sorted(reference), rng.randint(0, 4)):
            (project.root / path).unlink(missing_ok=True)
        process = start_build(project, *(["-B"] if rng.random() < 0.5 else []))
        wait_for_runs(project, len(project.runs()) + rng.randrange(0, total_tasks // 2), process)
        time.sleep(rng.random() * 0.05)  # a random moment, also between two task starts
        power_loss(process)
        assert_trustworthy(project, reference)

    final = project.bflow("build", "-k")
    assert final.returncode == 1 and "Traceback" not in final.stderr
    assert tree(project.root) == reference
    # The resumed build finished the job: one more build runs only the broken task.
    before = len(project.runs())
    project.bflow("build", "-k")
    assert project.runs()[before:] == ["broken"]


def corrupt(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    mode = rng.choice(["truncate", "flip", "garbage tail", "random file", "empty", "header"])
    if mode == "truncate":
        del data[rng.randrange(0, len(data)):]
    elif mode == "flip":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(0, len(data))] ^= rng.randint(1, 255)
    elif mode == "garbage tail":
        data += rng.randbytes(rng.randint(1, 64))
    elif mode == "random file":
        data = bytearray(rng.randbytes(rng.randint(1, 2048)))
    elif mode == "empty":
        data = bytearray()
    else:
        data[0:4] = b"XXXX"
    path.write_bytes(bytes(data))
    return mode


def test_corrupted_state_is_rebuilt_never_trusted(tmp_path: Path) -> None:
    clean = make_project(tmp_path / "clean")
    clean.bflow("build", "-k")
    reference = tree(clean.root)
    project = make_project(tmp_path / "corrupt")
    rng = random.Random(3)
    state_file = project.root / ".bflow" / "state"
    for _ in range(CORRUPTIONS):
        assert project.bflow("build", "-k").returncode == 1
        mode = corrupt(state_file, rng)
        # Outputs a damaged record vouched for must not be trusted blindly either.
        for path in rng.sample(sorted(reference), 2):
            (project.root / path).write_text("tampered\n")
        status = project.bflow("status")
        assert status.returncode == 0 and "Traceback" not in status.stderr, (mode, status.stderr)
        result = project.bflow("build", "-k")
        assert result.returncode == 1, (mode, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        if mode in ("flip", "garbage tail", "random file", "header"):
            assert "warning" in result.stderr, (mode, result.stderr)
        assert tree(project.root) == reference, mode
        assert_trustworthy(project, reference)
    shutil.rmtree(project.root / ".bflow")
    assert project.bflow("build", "-k").returncode == 1
    assert tree(project.root) == reference
