"""Per-task overhead of a Python function task against a command task doing the same nothing:
N tasks `py = "noop:run"` (a function that returns) against N tasks `cmd = "true"`, each
without inputs or outputs (so every build runs them all), built with `-j2`, alternating, the
median of `--reps` timed builds after one untimed warm-up each:

    python3 benchmarks/pytasks.py -n 500 --reps 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import bflow_env, install_bflow, timed  # noqa: E402

KINDS = {"cmd": 'cmd = "true"', "py": 'py = "noop:run"'}


def project(directory: Path, kind: str, n: int) -> Path:
    directory.mkdir()
    (directory / "noop.py").write_text("def run(ctx):\n    pass\n")
    (directory / "Flowfile").write_text("".join(f"[tasks.t{i:04d}]\n{KINDS[kind]}\n\n"
                                                for i in range(n)))
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="tasks (default 500)")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--bflow", nargs=argparse.REMAINDER,
                        help="the command to run as bflow (default: this checkout installed "
                             "into a new venv)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        bflow = args.bflow or install_bflow(root)
        env = bflow_env()
        projects = {kind: project(root / kind, kind, args.n) for kind in KINDS}
        argv = [*bflow, f"-j{args.jobs}", "--plain", "-q"]
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for kind, directory in projects.items():
            timed(argv, directory, env, None)  # warm-up: byte code, page cache
        for rep in range(args.reps):
            for kind in (list(KINDS) if rep % 2 == 0 else list(KINDS)[::-1]):
                times[kind].append(timed(argv, projects[kind], env, None))
    print(f"{args.n} tasks, -j{args.jobs}, median of {args.reps}:")
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    for kind, median in medians.items():
        print(f"  {KINDS[kind]:<18} {median * 1000:8.0f} ms  "
              f"{median / args.n * 1e6:7.0f} us/task  (min {min(times[kind]) * 1000:.0f} ms)")
    print(f"  py / cmd: {medians['py'] / medians['cmd']:.2f}")


if __name__ == "__main__":
    main()
