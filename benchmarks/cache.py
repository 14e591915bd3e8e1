"""Time a clean build of the synthetic project restored from the output cache, against the
same build running every command, and against GNU Make's full build.

    full    bflow, cache off: clean outputs and state, build with -j2
    local   bflow: clean outputs and state, restore every task from a filled local cache
    remote  bflow: clean outputs, state and local cache, restore every task from nginx on
            loopback (WebDAV, basic auth), as a fresh clone does
    make    GNU Make: clean outputs, build with -j2

The caches are filled by an untimed first build. Every scenario must leave the project
built; tasks run are counted as in `run.py` (outputs rewritten), so a restored task counts
too. Needs nginx (`apt-get install nginx`).

    python3 benchmarks/cache.py -n 1000 -n 10000 --reps 5
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from run import (_ms, bflow_env, clean, install_bflow, machine, size_parser,  # noqa: E402
                 snapshot, timed)
from synth import Graph, generate  # noqa: E402
from webdav import serve  # noqa: E402

SCENARIOS = ("full", "local", "remote", "make")


def run(n: int, reps: int, jobs: int, root: Path, bflow: list[str]) -> str:
    dirs = generate(root, n)
    outputs = Graph(n).outputs
    local, empty = root / "cache-local", root / "cache-empty"
    with serve(root / "nginx") as server:
        envs = {"full": bflow_env(),
                "local": bflow_env(local),
                "remote": {**bflow_env(empty), "BFLOW_REMOTE_CACHE": server.url()},
                "make": bflow_env()}
        # Fill both caches: a build that runs everything and uploads it.
        clean(dirs["bflow"], "bflow")
        timed([*bflow, f"-j{jobs}"], dirs["bflow"],
              {**bflow_env(local), "BFLOW_REMOTE_CACHE": server.url()}, None)
        seconds: dict[str, list[float]] = {scenario: [] for scenario in SCENARIOS}
        tasks: dict[str, set[int]] = {scenario: set() for scenario in SCENARIOS}
        for rep in range(reps + 1):
            order = SCENARIOS[rep % 4:] + SCENARIOS[:rep % 4]
            for scenario in order:
                tool = "make" if scenario == "make" else "bflow"
                directory = dirs[tool]
                clean(directory, tool)
                shutil.rmtree(empty, ignore_errors=True)
                before = snapshot(directory, outputs)
                argv = ["make", f"-j{jobs}"] if tool == "make" else [*bflow, f"-j{jobs}"]
                took = timed(argv, directory, envs[scenario], None)
                after = snapshot(directory, outputs)
                ran = sum(1 for o in outputs if after[o] != before[o])
                print(f"  {'warm-up' if rep == 0 else f'rep {rep}':7} {scenario:6} "
                      f"{took * 1000:9.1f} ms {ran:6} tasks", file=sys.stderr, flush=True)
                if rep:
                    seconds[scenario].append(took)
                    tasks[scenario].add(ran)
    make = statistics.median(seconds["make"])
    full = statistics.median(seconds["full"])
    lines = [f"### N = {n:,} (median of {reps}, -j{jobs})", "",
             "| clean build | median | min–max | × Make | × bflow full | outputs written |",
             "|---|---:|---:|---:|---:|---:|"]
    for scenario in SCENARIOS:
        times = seconds[scenario]
        median = statistics.median(times)
        lines.append(f"| {scenario} | {_ms(median)} | {_ms(min(times))}–{_ms(max(times))} | "
                     f"{median / make:.2f} | {median / full:.2f} | "
                     f"{'/'.join(map(str, sorted(tasks[scenario])))} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = size_parser(__doc__.splitlines()[0])
    parser.add_argument("--bflow", nargs="+", metavar="ARGV",
                        help="how to run bflow (default: install this checkout in a new venv)")
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    with tempfile.TemporaryDirectory(prefix="bflow-cache-bench-") as tmp:
        bflow = args.bflow or install_bflow(Path(tmp))
        for n in args.n or [1000, 10000]:
            print(run(n, args.reps, args.jobs, Path(tmp) / str(n), bflow), flush=True)


if __name__ == "__main__":
    main()
