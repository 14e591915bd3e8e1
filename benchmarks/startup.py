"""What each start-up trick of the no-op saves: the import of what it avoids, timed on top of
what a no-op build imports.

The CLI and the fast path avoid some modules (docs/speed.md says which and why). For each,
this times a bare interpreter (`-S`: no site start-up) importing the no-op's modules, then the
same plus the avoided module, alternating, and prints the median of the paired differences:

    python3 benchmarks/startup.py --reps 30
    python3 benchmarks/startup.py --instructions

On a busy machine the milliseconds grow with the load; the share of the no-op's own imports
holds better. `--instructions` counts instructions under callgrind instead (needs valgrind):
the same on every run and on a busy machine, so a before/after that the clock cannot tell
apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# What a no-op build of a plain `bflow` imports of bflow (the rest follows from these).
NO_OP = "import buildflow.cli, buildflow.fastpath.proof, buildflow.reporters.summary"

# What a trick spares the no-op, as code that would pay for it.
AVOIDED = {
    "typing (TYPE_CHECKING = False)": "import typing",
    "argparse, set up and run (the fast path's own reader)":
        "from buildflow.arguments import parse_args; parse_args(['-j2'])",
    "signal (signals.py takes _signal)": "import signal",
    "contextlib (gcpause.paused is a plain class)": "import contextlib",
    "re (the bflow script, no generated launcher)": "import re",
    "dataclasses (FastOptions is a plain class)": "import dataclasses",
    "rich.console (the no-op's summary line in ANSI)": "import rich.console",
}


def timed(python: str, code: str, env: dict[str, str]) -> float:
    """Milliseconds `code` takes to run in a fresh bare interpreter."""
    probe = (f"import time\nstart = time.perf_counter()\n{code}\n"
             "print(time.perf_counter() - start)")
    out = subprocess.run([python, "-S", "-c", probe], env=env, capture_output=True,
                         text=True, check=True).stdout
    return float(out.split()[-1]) * 1000


def instructions(python: str, code: str, env: dict[str, str]) -> float:
    """Millions of instructions a fresh bare interpreter runs for `code`, start-up included."""
    err = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          python, "-S", "-c", code], env=env, capture_output=True, text=True,
                         check=True).stderr
    collected = next(line for line in err.splitlines() if "Collected :" in line)
    return int(collected.rsplit(":", 1)[1]) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions under callgrind (one run each) instead")
    args = parser.parse_args()
    import rich
    import xxhash

    site = {str(Path(module.__file__).resolve().parents[1]) for module in (xxhash, rich)}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sorted(site)])}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte code cached, as in an installed bflow
    python = sys.executable
    if args.instructions:
        timed(python, f"{NO_OP}\n" + "\n".join(AVOIDED.values()), env)  # byte code cached
        whole = instructions(python, NO_OP, env)
        print(f"a no-op's imports, interpreter start-up included: {whole:.1f} M instructions")
        print("| avoided | instructions on top |\n|---|---:|")
        for name, code in AVOIDED.items():
            more = instructions(python, f"{NO_OP}\n{code}", env) - whole
            print(f"| {name} | {more:.1f} M ({more / whole:.0%}) |")
        return
    base: list[float] = []
    extra: dict[str, list[float]] = {name: [] for name in AVOIDED}
    for _ in range(args.reps + 1):  # the first round fills the byte-code caches
        for name, code in AVOIDED.items():
            base.append(timed(python, NO_OP, env))
            extra[name].append(timed(python, f"{NO_OP}\n{code}", env) - base[-1])
    whole = statistics.median(base[len(AVOIDED):])
    print(f"a no-op's imports: median {whole:.1f} ms")
    print("| avoided | median cost on top | of the no-op's imports |\n|---|---:|---:|")
    for name, differences in extra.items():
        cost = statistics.median(differences[1:])
        print(f"| {name} | {cost:.1f} ms | {cost / whole:.0%} |")


if __name__ == "__main__":
    main()
