"""Time GNU Make, Ninja and bflow side by side on the synthetic project of `synth.py`.

Each repetition runs every scenario for every tool, the tools alternating (and rotating who
goes first), so a slow moment of the machine hits all of them alike:

    full   clean outputs and state, build with -j2
    noop   build again: nothing to do
    noop2  and again (bflow's first no-op re-hashes the outputs written in the full build's
           last second, whose stat cannot vouch for their content yet; this one does not)
    edit   change one source's content: 4 tasks must run
    touch  bump one source's mtime, same content: bflow runs 0 tasks, Make and Ninja 4

Tasks run are counted from the side effect every command has, rewriting its output: the
outputs whose (inode, mtime, ctime) changed across the run.

A first, untimed repetition warms the page cache and measures peak RSS under GNU time
(`/usr/bin/time -f %M`): a process spawned straight from this Python script would report at
least the script's own RSS, since Linux carries the parent's peak across fork and exec. The
timed repetitions spawn each tool directly, so the wrapper's ~1 ms is not in their times.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import LEAF, SHAPES, TOOLS, Graph, generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = ("full", "noop", "noop2", "edit", "touch")
GNU_TIME = "/usr/bin/time"
HAVE_TIME = os.access(GNU_TIME, os.X_OK)
STATE = {"make": (), "ninja": (".ninja_log", ".ninja_deps"), "bflow": (".bflow",)}


def command(tool: str, jobs: int, bflow: list[str]) -> list[str]:
    if tool == "make":
        return ["make", f"-j{jobs}"]
    if tool == "ninja":
        return ["ninja", f"-j{jobs}"]
    return [*bflow, f"-j{jobs}"]


def install_bflow(root: Path, source: Path = REPO) -> list[str]:
    """bflow as a user has it: this checkout (or `source`) installed, not editable, into a
    fresh venv under `root`, run through its `bflow` script. Interpreter start-up then costs
    what it costs in such a venv (about 9 ms here), not what this script's interpreter pays
    for its site-packages' `.pth` files (35 ms on the machine of the results below)."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(source)], check=True)
    return [str(venv / "bin" / "bflow")]


def bflow_env(cache_dir: Path | None = None) -> dict[str, str]:
    """No colour, byte-code caching on, as in an installed bflow; the output cache in
    `cache_dir`, or off (a full build here means every command runs, and a benchmark never
    touches the user's own cache)."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in [n for n in env if n.startswith("BFLOW_")]:
        del env[name]
    if cache_dir is None:
        env["BFLOW_CACHE"] = "0"
    else:
        env["BFLOW_CACHE_DIR"] = str(cache_dir)
    return env


@dataclass
class Results:
    seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    tasks: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    rss_kib: dict[tuple[str, str], int] = field(default_factory=dict)


def snapshot(directory: Path, outputs: list[str]) -> dict[str, tuple[int, int, int] | None]:
    marks: dict[str, tuple[int, int, int] | None] = {}
    for output in outputs:
        try:
            st = os.stat(directory / output)
        except FileNotFoundError:
            marks[output] = None
        else:
            marks[output] = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    return marks


def timed(argv: list[str], cwd: Path, env: dict[str, str], rss_file: Path | None) -> float:
    """Wall seconds of one run, which must succeed; under GNU time when `rss_file` is set."""
    if rss_file is not None:
        argv = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *argv]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} in {cwd} failed ({proc.returncode}):\n"
                         f"{proc.stderr.decode(errors='replace')}")
    return seconds


def clean(directory: Path, tool: str) -> None:
    shutil.rmtree(directory / "out")
    (directory / "out").mkdir()
    for name in STATE[tool]:
        path = directory / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def prepare(directory: Path, scenario: str, tool: str, rep: int, n: int) -> None:
    if scenario == "full":
        clean(directory, tool)
    elif scenario == "edit":
        name = LEAF.format((rep * 37) % n)
        with open(directory / "src" / f"{name}.txt", "a") as handle:
            handle.write(f"edit {rep}\n")
    elif scenario == "touch":
        path = directory / "src" / f"{LEAF.format((rep * 53 + 11) % n)}.txt"
        later = time.time_ns() + 1_000_000
        os.utime(path, ns=(later, later))


def run(n: int, reps: int, jobs: int, root: Path, bflow: list[str],
        scenarios: tuple[str, ...] = SCENARIOS, shape: str = "foreach") -> Results:
    dirs = generate(root, n, shape)
    outputs = Graph(n).outputs
    results = Results()
    env = {"make": dict(os.environ), "ninja": dict(os.environ), "bflow": bflow_env()}
    rss_file = root / "rss.txt"
    for rep in range(reps + 1):
        warm_up = rep == 0
        order = TOOLS[rep % 3:] + TOOLS[:rep % 3]
        for scenario in SCENARIOS if warm_up else scenarios:
            for tool in order:
                key = (scenario, tool)
                directory = dirs[tool]
                prepare(directory, scenario, tool, rep, n)
                before = snapshot(directory, outputs)
                seconds = timed(command(tool, jobs, bflow), directory, env[tool],
                                rss_file if warm_up and HAVE_TIME else None)
                after = snapshot(directory, outputs)
                ran = sum(1 for o in outputs if after[o] != before[o])
                results.tasks.setdefault(key, set()).add(ran)
                if warm_up:
                    if HAVE_TIME:
                        results.rss_kib[key] = int(rss_file.read_text().split()[-1])
                else:
                    results.seconds.setdefault(key, []).append(seconds)
                print(f"  {'warm-up' if warm_up else f'rep {rep}':7} {scenario:5} {tool:5} "
                      f"{seconds * 1000:9.1f} ms {ran:6} tasks", file=sys.stderr, flush=True)
    return results


def report(n: int, reps: int, results: Results,
           scenarios: tuple[str, ...] = SCENARIOS, shape: str = "foreach") -> str:
    lines = [f"### N = {n:,}, {shape} (median of {reps}, -j2)", "",
             "| scenario | tool | median | min–max | × Make | tasks run | peak RSS |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for scenario in scenarios:
        make_median = statistics.median(results.seconds[(scenario, "make")])
        for tool in TOOLS:
            times = results.seconds[(scenario, tool)]
            median = statistics.median(times)
            tasks = sorted(results.tasks[(scenario, tool)])
            rss = results.rss_kib.get((scenario, tool), 0) / 1024
            lines.append(f"| {scenario} | {tool} | {_ms(median)} | {_ms(min(times))}–"
                         f"{_ms(max(times))} | {median / make_median:.2f} | "
                         f"{'/'.join(map(str, tasks))} | {rss:.1f} MiB |")
    return "\n".join(lines) + "\n"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    make = subprocess.run(["make", "--version"], capture_output=True, text=True).stdout
    ninja = subprocess.run(["ninja", "--version"], capture_output=True, text=True).stdout
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, {make.splitlines()[0]}, "
            f"Ninja {ninja.strip()}")


def size_parser(description: str) -> argparse.ArgumentParser:
    """The options every comparison with Make takes: sizes, repetitions, jobs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-n", type=int, action="append", help="leaf tasks (repeatable; "
                        "default 1000 and 10000)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    return parser


def main() -> None:
    parser = size_parser(__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the projects here and keep them")
    parser.add_argument("--bflow", nargs="+", metavar="ARGV",
                        help="how to run bflow (default: install this checkout in a new venv)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=SCENARIOS,
                        metavar="SCENARIO", help="time only these scenarios (the untimed "
                        "warm-up still runs them all, so each tool starts from a built project)")
    parser.add_argument("--shape", nargs="+", choices=SHAPES, default=SHAPES,
                        help="how the build files are written (default both; see synth.py)")
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    with tempfile.TemporaryDirectory(prefix="bflow-bench-") as tmp:
        bflow = args.bflow or install_bflow(Path(tmp))
        print(f"bflow: {' '.join(bflow)}", file=sys.stderr)
        for shape in args.shape:
            for n in args.n or [1000, 10000]:
                print(f"N = {n}, {shape}", file=sys.stderr)
                where = (args.keep or Path(tmp)) / f"{shape}-{n}"
                results = run(n, args.reps, args.jobs, where, bflow, tuple(args.only), shape)
                print(report(n, args.reps, results, tuple(args.only), shape), flush=True)


if __name__ == "__main__":
    main()
