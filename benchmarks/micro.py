"""Start-up and hashing targets: `bflow --version`, a no-op on a 3-task Flowfile, and hashing
1 GiB of new inputs (1,000 files of 1 MiB, page cache warm) against a plain read + xxh3 loop.
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

import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, bflow_env, install_bflow  # noqa: E402

sys.path.insert(0, str(REPO))
from buildflow.fs import LocalFileSystem  # noqa: E402
from buildflow.hashing import Hasher  # noqa: E402

THREE_TASKS = """\
[tasks.a]
cmd = "cp a.txt b.txt"
inputs = ["a.txt"]
outputs = ["b.txt"]

[tasks.b]
cmd = "cp b.txt c.txt"
inputs = ["b.txt"]
outputs = ["c.txt"]

[tasks.c]
cmd = "cp c.txt d.txt"
inputs = ["c.txt"]
outputs = ["d.txt"]
"""
MIB = 1 << 20


def wall(argv: list[str], cwd: Path, runs: int) -> list[float]:
    env = bflow_env()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def startup(root: Path, runs: int, bflow: list[str]) -> dict[str, list[float]]:
    (root / "Flowfile").write_text(THREE_TASKS)
    (root / "a.txt").write_text("a\n")
    python = str(Path(bflow[0]).with_name("python"))
    wall(bflow, root, 2)  # build, then let the cache and byte code settle
    time.sleep(1.1)  # past the racy window of what the build wrote, as between real builds
    wall(bflow, root, 1)
    return {"python -c pass (the venv's)": wall([python, "-c", "pass"], root, runs),
            "bflow --version": wall([*bflow, "--version"], root, runs),
            "bflow no-op, 3 tasks": wall(bflow, root, runs)}


def hashing(root: Path, runs: int, files: int) -> dict[str, list[float]]:
    names = [f"in{i:04d}.bin" for i in range(files)]
    for i, name in enumerate(names):
        (root / name).write_bytes(os.urandom(MIB - 16) + i.to_bytes(16, "little"))
    plain, bflow = [], []
    for _ in range(runs):
        start = time.perf_counter()
        for name in names:
            with open(root / name, "rb") as handle:
                xxhash.xxh3_128_hexdigest(handle.read())
        plain.append(time.perf_counter() - start)
        hasher = Hasher(LocalFileSystem(str(root)), {})  # no records: every input is new
        start = time.perf_counter()
        for name in names:
            hasher.file_hash(name)
        bflow.append(time.perf_counter() - start)
    return {"plain read + xxh3": plain, "bflow Hasher": bflow}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--files", type=int, default=1000, help="1 MiB files to hash")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bflow-micro-") as tmp:
        root = Path(tmp)
        (root / "tiny").mkdir()
        (root / "hash").mkdir()
        results = startup(root / "tiny", args.runs, install_bflow(root))
        hashed = hashing(root / "hash", max(3, args.runs // 3), args.files)
    print("| measure | median | min–max |\n|---|---:|---:|")
    for name, times in results.items():
        print(f"| {name} | {statistics.median(times) * 1000:.1f} ms | "
              f"{min(times) * 1000:.1f}–{max(times) * 1000:.1f} ms |")
    size = args.files * MIB / (1 << 30)
    for name, times in hashed.items():
        print(f"| {name}, {size:.2f} GiB | {size / statistics.median(times):.2f} GiB/s | "
              f"{size / max(times):.2f}–{size / min(times):.2f} GiB/s |")
    ratio = statistics.median(hashed["plain read + xxh3"]) / statistics.median(hashed["bflow Hasher"])
    print(f"\nbflow hashing speed / plain loop: {ratio:.0%}")


if __name__ == "__main__":
    main()
