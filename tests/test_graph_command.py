"""`bflow graph` end to end: the real CLI on a real project, states taken from real builds."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time

import pytest

from conftest import Project, terminal_env
from test_build import CHAIN

FLOWFILE = CHAIN + """
[tasks.copy]
foreach = "pages/*.txt"
cmd = "echo copy >> runs.log && cp {item} {output}"
outputs = ["build/pages/{name}"]

[tasks.all]
deps = ["upper", "copy"]
"""


@pytest.fixture
def built(project: Project) -> Project:
    project.flowfile(FLOWFILE)
    project.write("src.txt", "hello\n")
    project.write("pages/a.txt", "a\n")
    project.write("pages/b.txt", "b\n")
    assert project.bflow().returncode == 0
    return project


def graph_json(project: Project, *args: str) -> dict[str, dict[str, object]]:
    result = project.bflow("graph", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return {"nodes": {n["name"]: n for n in data["nodes"]},
            "edges": {(e["from"], e["to"]) for e in data["edges"]}}  # type: ignore[dict-item]


def stale_names(project: Project, *args: str) -> set[str]:
    nodes = graph_json(project, *args)["nodes"]
    return {name for name, node in nodes.items() if node["stale"]}  # type: ignore[index]


def test_json_describes_every_task_and_edge(built: Project) -> None:
    data = graph_json(built)
    nodes = data["nodes"]
    assert set(nodes) == {"gen", "upper", "copy:pages/a.txt", "copy:pages/b.txt", "all"}
    assert nodes["upper"]["inputs"] == ["build/gen.txt"]  # type: ignore[index]
    assert nodes["upper"]["outputs"] == ["build/upper.txt"]  # type: ignore[index]
    assert nodes["copy:pages/a.txt"]["inputs"] == ["pages/a.txt"]  # type: ignore[index]
    assert nodes["all"]["group"] is True  # type: ignore[index]
    assert data["edges"] == {("gen", "upper"), ("upper", "all"), ("copy:pages/a.txt", "all"),
                             ("copy:pages/b.txt", "all")}


def test_states_follow_the_build_and_graph_runs_nothing(built: Project) -> None:
    assert stale_names(built) == set()
    built.write("src.txt", "changed\n")
    # gen's input changed, upper will see a new input, the group needs them.
    assert stale_names(built) == {"gen", "upper", "all"}
    node = graph_json(built)["nodes"]["gen"]
    assert node["state"] == "stale" and "src.txt" in node["reason"]  # type: ignore[index]
    (built.root / "build/pages/b.txt").unlink()
    assert "copy:pages/b.txt" in stale_names(built)
    assert built.runs().count("gen") == 1  # graph only looked
    assert built.bflow().returncode == 0
    assert stale_names(built) == set()


def test_targets_select_what_they_need(built: Project) -> None:
    assert set(graph_json(built, "upper")["nodes"]) == {"gen", "upper"}
    assert set(graph_json(built, "copy")["nodes"]) == {"copy:pages/a.txt", "copy:pages/b.txt"}
    assert set(graph_json(built, "build/gen.txt")["nodes"]) == {"gen"}
    result = built.bflow("graph", "uper")
    assert result.returncode == 2 and "did you mean 'upper'" in result.stderr


def test_text_tree_is_the_default(built: Project) -> None:
    built.write("src.txt", "changed\n")
    result = built.bflow("graph")
    assert result.returncode == 0, result.stderr
    text = re.sub(r"\([0-9a-f]{12} -> [0-9a-f]{12}\)", "(HASHES)", result.stdout)
    assert text.splitlines() == [
        "all (group, stale: needs stale upper)",
        "├── upper (stale: task gen it depends on will run first)",
        "│   └── gen (stale: input src.txt changed (HASHES))",
        "├── copy:pages/a.txt (up to date)",
        "└── copy:pages/b.txt (up to date)",
    ]
    assert "\x1b[" not in result.stdout  # not a terminal: no colour


def test_output_file(built: Project) -> None:
    result = built.bflow("graph", "--format", "mermaid", "-o", "graph.mmd")
    assert result.returncode == 0 and result.stdout == ""
    text = built.read("graph.mmd")
    assert text.startswith("flowchart LR\n") and '["gen"]' in text
    result = built.bflow("graph", "-o", "no/such/dir/graph.txt")
    assert result.returncode == 2 and "directory no/such/dir does not exist" in result.stderr


@pytest.mark.parametrize(("path", "what"), [
    ("Flowfile", "is the Flowfile"),
    ("src.txt", "is an input of task 'gen'"),
    ("build/upper.txt", "is an output of task 'upper'"),
    (".bflow/state", "is in the cache dir .bflow"),
])
def test_a_graph_over_a_file_of_the_project_is_a_usage_error(built: Project, path: str,
                                                              what: str) -> None:
    """`graph -o Flowfile` wrote the graph over the Flowfile, `-o src.txt` over a source,
    `-o .bflow/state` over every record; each exited 0."""
    before = {name: (built.root / name).read_bytes()
              for name in ("Flowfile", "src.txt", "build/upper.txt", ".bflow/state")}
    result = built.bflow("graph", "-o", path)
    assert result.returncode == 2
    assert result.stderr == f"bflow: error: -o {path}: {what}; name a file of your own for " \
                            "the graph\n"
    assert {name: (built.root / name).read_bytes() for name in before} == before


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz (dot) is not installed")
def test_dot_output_renders_with_graphviz(built: Project) -> None:
    built.write("pages/quote\"d.txt", "q\n")
    assert built.bflow("graph", "--format", "dot", "-o", "graph.dot").returncode == 0
    result = subprocess.run(["dot", "-Tsvg", "graph.dot", "-o", "graph.svg"], cwd=built.root,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    svg = built.read("graph.svg")
    assert svg.count('class="node"') == 6 and svg.count('class="edge"') == 5
    assert "copy:pages/quote&quot;d.txt" in svg


def run_on_terminal(project: Project, *args: str) -> str:
    """Run bflow with stdout on a pseudo-terminal and return what it printed."""
    leader, follower = pty.openpty()
    env = terminal_env(term="xterm")
    process = subprocess.Popen([sys.executable, "-m", "buildflow", *args], cwd=project.root,
                               env=env, stdout=follower, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not select.select([leader], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode()


def test_text_is_coloured_on_a_terminal_only(built: Project) -> None:
    built.write("src.txt", "changed\n")
    coloured = run_on_terminal(built, "graph")
    assert "gen \x1b[31m(stale:" in coloured
    assert "copy:pages/a.txt \x1b[32m(up to date)" in coloured
    assert "\x1b[" not in run_on_terminal(built, "graph", "--plain")


NOT_UTF8 = b"caf\xe9"  # a Latin-1 name, as old archives unpack on Linux


@pytest.mark.parametrize("fmt", ["text", "dot", "mermaid", "json"])
def test_a_file_name_that_is_no_utf8_is_written_to_a_graph_file(project: Project,
                                                                fmt: str) -> None:
    """`graph -o` in text, dot and mermaid was an internal error (exit 3); stdout was not."""
    project.flowfile('[tasks.each]\nforeach = "src/*.txt"\ncmd = "cp {item} {output}"\n'
                     'outputs = ["out/{stem}.o"]\n')
    (project.root / "src").mkdir()
    (project.root / "src").joinpath(os.fsdecode(NOT_UTF8 + b".txt")).write_text("x\n")
    result = project.bflow("graph", "--format", fmt, "-o", "graph.out")
    assert result.returncode == 0, result.stderr
    written = (project.root / "graph.out").read_bytes()
    assert (b"caf\\udce9" if fmt == "json" else NOT_UTF8) in written


def test_a_file_name_that_is_no_utf8_is_shown_escaped_in_the_page(project: Project) -> None:
    """`--report` was an internal error before any command ran."""
    project.flowfile('[tasks.each]\nforeach = "src/*.txt"\ncmd = "echo x >> runs.log && '
                     'cp {item} {output}"\noutputs = ["out/{stem}.o"]\n')
    (project.root / "src").mkdir()
    (project.root / "src").joinpath(os.fsdecode(NOT_UTF8 + b".txt")).write_text("x\n")
    (project.root / "src/ok.txt").write_text("x\n")
    result = project.bflow("-q", "--report", "r.html")  # the plain lines hold the raw name
    assert result.returncode == 0, result.stderr
    assert project.runs() == ["x", "x"]
    assert "caf\\xe9.txt" in (project.root / "r.html").read_text(encoding="utf-8")


def test_control_characters_in_names_are_shown_escaped(project: Project) -> None:
    """A foreach item named with an ESC sequence reached the terminal raw from graph, list,
    explain and status (`\\x1b[2J` cleared the screen), also with --plain or NO_COLOR."""
    project.flowfile('[tasks.c]\nforeach = "src/*.txt"\ncmd = "cat {item}"\n')
    project.write("src/a\x1b[2Jb.txt", "x\n")
    for args in (("graph", "--plain"), ("status",), ("list", "c:*"), ("explain", "c")):
        result = project.bflow(*args)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "c:src/a\\x1b[2Jb.txt" in result.stdout, args
