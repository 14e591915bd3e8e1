"""What the Dask executor adds to each task: 200 tasks of about 50 ms of CPU each, built with
`-j2` by local processes and by a Dask cluster of two single-threaded workers on this machine.

    python benchmarks/dask_overhead.py [--tasks 200] [--cpu-ms 50] [--reps 3]

Needs `distributed` (`pip install -e '.[dask]'`). Each build is forced (`-B`, output cache
off), local and Dask alternating, median of `--reps`. A one-task build of each kind gives the
fixed cost of a build (for Dask: importing `distributed` and connecting), which is taken out,
so the overhead per task is what every further task costs, in seconds of a job slot:
((dask - dask_one) - (local - local_one)) * jobs / tasks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, bflow_env  # noqa: E402

JOBS = 2


def project(directory: Path, tasks: int, cpu_ms: int) -> Path:
    """`tasks` tasks (a foreach over as many files), each burning `cpu_ms` of CPU in a fresh
    Python (its start-up included)."""
    (directory / "src").mkdir(parents=True)
    for number in range(tasks):
        (directory / "src" / f"{number:04}.txt").write_text(f"{number}\n")
    burn = f"import time; all(time.process_time() < {cpu_ms / 1000} for _ in iter(int, 1))"
    (directory / "Flowfile").write_text(
        f'[tasks.burn]\nforeach = "src/*.txt"\ncmd = \'{sys.executable} -S -c "{burn}"\'\n')
    return directory


def timed(directory: Path, executor: str) -> float:
    env = {**bflow_env(), "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "buildflow", "-B", f"-j{JOBS}", "--plain", "--executor",
            executor]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=directory, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--cpu-ms", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory(prefix="bflow-dask-") as tmp, LocalCluster(
            n_workers=JOBS, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None) as cluster:
        dask = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        many = project(Path(tmp, "many"), args.tasks, args.cpu_ms)
        one = project(Path(tmp, "one"), 1, args.cpu_ms)
        runs = {(size, kind): [] for size in ("many", "one") for kind in ("local", "dask")}
        for rep in range(args.reps + 1):  # the first is an untimed warm-up
            for kind in (("local", "dask") if rep % 2 else ("dask", "local")):
                for size, directory in (("many", many), ("one", one)):
                    took = timed(directory, dask if kind == "dask" else "local")
                    if rep:
                        runs[size, kind].append(took)
    median = {key: statistics.median(times) for key, times in runs.items()}
    print(f"{args.tasks} tasks of {args.cpu_ms} ms CPU, -j{JOBS}, {os.cpu_count()} CPUs, "
          f"median of {args.reps}:")
    for kind in ("local", "dask"):
        print(f"  {kind:5}: {median['many', kind]:.2f} s ({median['one', kind]:.2f} s for one "
              f"task)")
    extra = (median["many", "dask"] - median["one", "dask"]) \
        - (median["many", "local"] - median["one", "local"])
    print(f"  fixed cost of a Dask build: "
          f"{median['one', 'dask'] - median['one', 'local']:.2f} s; "
          f"overhead per task: {extra * JOBS / args.tasks * 1000:.0f} ms of a job slot")


if __name__ == "__main__":
    main()
