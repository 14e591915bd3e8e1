"""Synthetic projects: the same four-level graph as a Makefile, a build.ninja and a Flowfile.

N leaf tasks copy src/fNNNNN.txt to out/fNNNNN.out; `cat` joins them in groups of 100
(out/g100-NNN.out), those in groups of 10 (out/g1000-NN.out), and those into out/final.out.
Editing one source therefore re-runs exactly four tasks, whatever N is.

Two shapes of the same graph, as people write them:

    foreach   the leaves as one `foreach` task in the Flowfile, one pattern rule in the
              Makefile: what a person writes by hand
    explicit  one `[tasks.NAME]` table per leaf with its own `inputs` and `outputs`, and one
              explicit rule per leaf in the Makefile: what a generator (CMake-style, or a
              script) writes; Make's fastest form of it
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path

TOOLS = ("make", "ninja", "bflow")
SHAPES = ("foreach", "explicit")
LEAF = "f{:05d}"


def _chunks(items: list[str], size: int) -> Iterator[tuple[int, list[str]]]:
    for start in range(0, len(items), size):
        yield start // size, items[start:start + size]


class Graph:
    """Every non-leaf step as (output, inputs), bottom-up; leaves are implied by `n`."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.leaves = [f"out/{LEAF.format(i)}.out" for i in range(n)]
        self.steps: list[tuple[str, list[str]]] = []
        level = self.leaves
        for size, prefix in ((100, "g100"), (10, "g1000")):
            upper = []
            for index, chunk in _chunks(level, size):
                output = f"out/{prefix}-{index:03d}.out"
                self.steps.append((output, chunk))
                upper.append(output)
            level = upper
        self.steps.append(("out/final.out", level))

    @property
    def outputs(self) -> list[str]:
        return self.leaves + [output for output, _ in self.steps]


def makefile(graph: Graph, shape: str) -> str:
    lines = ["MAKEFLAGS += --no-builtin-rules", ".SUFFIXES:", "all: out/final.out", ""]
    if shape == "foreach":
        lines += ["out/%.out: src/%.txt", "\tcp $< $@", ""]
    else:
        for i, output in enumerate(graph.leaves):
            lines += [f"{output}: src/{LEAF.format(i)}.txt", "\tcp $< $@", ""]
    for output, inputs in graph.steps:
        lines += [f"{output}: {' '.join(inputs)}", "\tcat $^ > $@", ""]
    return "\n".join(lines)


def ninja(graph: Graph, shape: str) -> str:
    """One `build` line per task in either shape: Ninja has no other form."""
    lines = ["rule cp", "  command = cp $in $out", "rule cat", "  command = cat $in > $out", ""]
    for i, output in enumerate(graph.leaves):
        lines.append(f"build {output}: cp src/{LEAF.format(i)}.txt")
    for output, inputs in graph.steps:
        lines.append(f"build {output}: cat {' '.join(inputs)}")
    lines += ["", "default out/final.out", ""]
    return "\n".join(lines)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def flowfile(graph: Graph, shape: str) -> str:
    lines = ['[settings]', 'default = ["final"]', ""]
    if shape == "foreach":
        lines += ["[tasks.copy]", 'foreach = "src/*.txt"', 'cmd = "cp {item} {output}"',
                  'outputs = ["out/{stem}.out"]', ""]
    else:
        for i, output in enumerate(graph.leaves):
            name = LEAF.format(i)
            lines += [f"[tasks.{name}]", 'cmd = "cp {inputs} {output}"',
                      f'inputs = ["src/{name}.txt"]', f'outputs = ["{output}"]', ""]
    for output, inputs in graph.steps:
        name = Path(output).stem
        lines += [f"[tasks.{name}]", 'cmd = "cat {inputs} > {output}"',
                  f"inputs = {_toml_list(inputs)}", f'outputs = ["{output}"]', ""]
    return "\n".join(lines)


BUILD_FILES = {"make": ("Makefile", makefile), "ninja": ("build.ninja", ninja),
               "bflow": ("Flowfile", flowfile)}


def write_sources(directory: Path, n: int) -> None:
    (directory / "src").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        name = LEAF.format(i)
        (directory / "src" / f"{name}.txt").write_text(f"{name}\n")


def generate(root: Path, n: int, shape: str = "foreach") -> dict[str, Path]:
    """One directory per tool under `root`, each with its own sources and build file."""
    graph = Graph(n)
    dirs = {}
    for tool in TOOLS:
        directory = root / tool
        write_sources(directory, n)
        (directory / "out").mkdir(exist_ok=True)
        name, render = BUILD_FILES[tool]
        (directory / name).write_text(render(graph, shape))
        dirs[tool] = directory
    return dirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("-n", type=int, default=1000, help="leaf tasks (default 1000)")
    parser.add_argument("--shape", choices=SHAPES, default="foreach")
    args = parser.parse_args()
    for tool, directory in generate(args.root, args.n, args.shape).items():
        print(f"{tool}: {os.path.relpath(directory)}")


if __name__ == "__main__":
    main()
