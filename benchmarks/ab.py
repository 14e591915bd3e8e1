"""Time two revisions of bflow against each other on the synthetic project of `synth.py`.

Each revision is installed from this repository (`git archive`, not editable) into a venv of
its own and builds a copy of the bflow project of its own, so neither meets the other's
cache; the two alternate, who goes first swapping every repetition, so a slow moment of the
machine hits both alike. The "old -> new" numbers in benchmarks/README.md come from this:

    python3 benchmarks/ab.py HEAD~1 HEAD --scenario edit --reps 30

Scenarios as in `run.py` (`full`, `noop`, `edit`, `touch`), and `load`: `bflow list` with
`.bflow` deleted first, so the project is loaded from its Flowfile, not the project cache
(the loader's cost alone); each copy is built, and the scenario run once, untimed, first. The output cache is off unless `--cache` (a private one,
shared by both sides: their keys differ in nothing, but the old side may not use it):

    python3 benchmarks/ab.py e4155c0 HEAD --scenario noop --cache
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, bflow_env, install_bflow, prepare, snapshot, timed  # noqa: E402
from synth import BUILD_FILES, SHAPES, Graph, write_sources  # noqa: E402


def install(revision: str, root: Path) -> list[str]:
    """`revision` of this repository, installed into a venv under `root`."""
    source = root / "source"
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    return install_bflow(root, source)


def project(directory: Path, n: int, shape: str) -> Path:
    write_sources(directory, n)
    (directory / "out").mkdir(exist_ok=True)
    name, render = BUILD_FILES["bflow"]
    (directory / name).write_text(render(Graph(n), shape))
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="a git revision, e.g. HEAD~1")
    parser.add_argument("new", help="a git revision, e.g. HEAD")
    parser.add_argument("--scenario", choices=("full", "noop", "edit", "touch", "load"),
                        default="edit")
    parser.add_argument("-n", type=int, default=10000, help="leaf tasks (default 10000)")
    parser.add_argument("--shape", choices=SHAPES, default="foreach",
                        help="how the Flowfile is written (see synth.py)")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--cache", action="store_true",
                        help="with the output cache on (a private one per side); not for "
                             "`full`, which would then restore rather than build")
    args = parser.parse_args()
    outputs = Graph(args.n).outputs
    with tempfile.TemporaryDirectory(prefix="bflow-ab-") as tmp:
        env = bflow_env(Path(tmp) / "output-cache" if args.cache else None)
        sides = {}
        for label, revision in (("old", args.old), ("new", args.new)):
            root = Path(tmp) / label
            sides[label] = (install(revision, root) + [f"-j{args.jobs}"],
                            project(root / "project", args.n, args.shape))
        for argv, directory in sides.values():
            timed(argv, directory, env, None)  # the build the scenarios start from
        seconds: dict[str, list[float]] = {label: [] for label in sides}
        ran: dict[str, set[int]] = {label: set() for label in sides}
        for rep in range(args.reps + 1):
            for label in (("old", "new") if rep % 2 else ("new", "old")):
                argv, directory = sides[label]
                if args.scenario == "load":
                    shutil.rmtree(directory / ".bflow", ignore_errors=True)
                    argv = [argv[0], "list"]
                prepare(directory, args.scenario, "bflow", rep, args.n)
                before = snapshot(directory, outputs)
                took = timed(argv, directory, env, None)
                if rep:  # the first is the untimed warm-up
                    seconds[label].append(took)
                    after = snapshot(directory, outputs)
                    ran[label].add(sum(1 for o in outputs if after[o] != before[o]))
    print(f"{args.scenario}, {args.shape}, N = {args.n:,}, median of {args.reps}, "
          "alternating:")
    for label, revision in (("old", args.old), ("new", args.new)):
        times = sorted(seconds[label])
        print(f"  {label} {revision}: median {statistics.median(times) * 1000:.1f} ms, "
              f"lower quartile {times[len(times) // 4] * 1000:.1f}, "
              f"min {times[0] * 1000:.1f}; tasks run {sorted(ran[label])}")
    ratio = statistics.median(seconds["new"]) / statistics.median(seconds["old"])
    print(f"  new / old: {ratio:.3f}")


if __name__ == "__main__":
    main()
