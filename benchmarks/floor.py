"""The floor under a full build by any tool written in Python, against GNU Make's full build.

The floor is the full build of `synth.py`'s project with nothing but its commands: one Python
process (started with `-S`, so no site-packages) spawns each command as soon as its inputs
are built, at most `-j` at once, with `os.posix_spawn` (directly when the command has no shell
syntax, as Make and bflow do, else through `/bin/sh -c`), and reaps them with
`os.waitpid(-1)`. No build file to parse, no hashing, no state, no threads, no output: what
is left is the interpreter's start and the spawning and reaping from Python. A build tool in
CPython that spawns its commands itself does at least this much, so where this floor is at
or above Make's time, no such tool's full build can be under Make's.

Make builds its own copy with the explicit Makefile (one rule per task, its fastest form);
the two alternate (who goes first rotates), outputs deleted before each run, median of
`--reps` after one untimed warm-up each:

    python3 benchmarks/floor.py -n 1000 -n 10000 --reps 5
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the floor starts light
if TYPE_CHECKING:
    from pathlib import Path

PLAN = "floor.marshal"  # the commands and their order, written by `plan` before the runs


def build(directory: str, jobs: int) -> None:
    """Run every command planned in `directory`, in dependency order, `jobs` at once."""
    import marshal

    os.chdir(directory)
    with open(PLAN, "rb") as handle:
        commands, consumers, missing, leaves = marshal.load(handle)
    ready = list(range(leaves - 1, -1, -1))  # popped from the end: in order
    running: dict[int, int] = {}
    environ = os.environ
    while ready or running:
        while ready and len(running) < jobs:
            index = ready.pop()
            path, argv = commands[index]
            running[os.posix_spawn(path, argv, environ)] = index
        pid, status = os.waitpid(-1, 0)
        if status != 0:
            raise SystemExit(f"{commands[running[pid]][1]} failed ({status})")
        for step in consumers[running.pop(pid)]:
            missing[step] -= 1
            if missing[step] == 0:
                ready.insert(0, step)


def plan(directory: "Path", n: int) -> None:
    """Write the graph's commands for `build`: leaves first, then each step of `cat`s, each
    with the steps that read its output and the count of inputs each step waits for."""
    import marshal
    import shutil

    from synth import LEAF, Graph

    graph = Graph(n)
    cp = shutil.which("cp")
    commands = [(cp, ["cp", f"src/{LEAF.format(i)}.txt", leaf])
                for i, leaf in enumerate(graph.leaves)]
    producer = {leaf: i for i, leaf in enumerate(graph.leaves)}
    consumers: list[list[int]] = [[] for _ in range(n + len(graph.steps))]
    missing = [0] * len(consumers)
    for output, inputs in graph.steps:
        step = len(commands)
        commands.append(("/bin/sh", ["sh", "-c", f"cat {' '.join(inputs)} > {output}"]))
        producer[output] = step
        for path in inputs:
            consumers[producer[path]].append(step)
        missing[step] = len(inputs)
    (directory / PLAN).write_bytes(marshal.dumps((commands, consumers, missing, n)))


def compare(n: int, reps: int, jobs: int, root: "Path") -> dict[str, list[float]]:
    """Seconds of each timed run of Make and of the floor, alternating."""
    from run import clean, timed
    from synth import generate

    dirs = generate(root, n, "explicit")
    plan(dirs["bflow"], n)
    runs = {"make": (["make", f"-j{jobs}"], dirs["make"]),
            "floor": ([sys.executable, "-S", __file__, "--build", str(dirs["bflow"]), str(jobs)],
                      dirs["bflow"])}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for rep in range(reps + 1):
        for name in list(runs) if rep % 2 == 0 else reversed(runs):
            argv, cwd = runs[name]
            clean(cwd, "make")  # the outputs; neither keeps state
            took = timed(argv, cwd, dict(os.environ), None)
            if rep:  # the first round warms the page cache
                seconds[name].append(took)
    return seconds


def main() -> None:
    import statistics
    import tempfile
    from pathlib import Path

    from run import machine, size_parser

    args = size_parser(__doc__.splitlines()[0]).parse_args()
    print(f"Machine: {machine()}; -j{args.jobs}, median of {args.reps}\n")
    print("| N | GNU Make | Python floor | floor / Make |\n|---:|---:|---:|---:|")
    for n in args.n or [1000, 10000]:
        with tempfile.TemporaryDirectory() as scratch:
            seconds = compare(n, args.reps, args.jobs, Path(scratch))
        make, floor = (statistics.median(seconds[name]) for name in ("make", "floor"))
        print(f"| {n:,} | {make * 1000:,.0f} ms | {floor * 1000:,.0f} ms | {floor / make:.2f} |",
              flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--build"]:  # the floor itself, as `compare` starts it
        build(sys.argv[2], int(sys.argv[3]))
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        main()
