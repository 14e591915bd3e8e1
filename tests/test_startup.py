"""What a no-op build imports: the start-up tricks at the command line and the fast path (a
hand-read command line, no `typing`, no `argparse`, `_signal` for `signal`, no `contextlib`)
are kept because they pay there (docs/speed.md measures each); these tests keep them paying.
An edit's build imports the engine, which is plain Python, and may import what it needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import xxhash

import buildflow
from conftest import Project, settle

# Imported by a no-op, each would be most of a millisecond or more of its start.
AVOIDED = ("typing", "argparse", "re", "pathlib", "enum", "signal", "contextlib",
           "dataclasses", "shutil", "buildflow.scheduler", "buildflow.project", "rich")

FLOWFILE = """
[tasks.copy]
foreach = "src/*.txt"
cmd = "cp {item} {output}"
outputs = ["out/{stem}.out"]
"""


def imported_by(argv: list[str], cwd: Path) -> tuple[int, set[str]]:
    """(exit status, the modules imported) of `bflow ARGV` run in-process from a bare
    interpreter (-S: an editable install's start-up imports pathlib), on the plain path."""
    paths = [str(Path(buildflow.__file__).parents[1]), str(Path(xxhash.__file__).parents[1])]
    probe = (f"import os, sys; sys.path[:0] = {paths!r}; os.environ['BFLOW_VERIFY'] = '0'; "
             "os.environ['NO_COLOR'] = '1'; from buildflow.cli import main; "
             f"status = main({argv!r}); sys.stdout.flush(); "
             "print('\\nMODULES', status, ' '.join(sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                         check=True, cwd=cwd).stdout
    status, *modules = out.rsplit("MODULES ", 1)[1].split()
    return int(status), set(modules)


@pytest.mark.parametrize("argv", [["-j2"], ["build", "-q", "--plain", "copy"], ["-k", "-j", "2"]])
def test_a_no_op_imports_none_of_what_it_does_without(project: Project, argv: list[str]) -> None:
    project.flowfile(FLOWFILE)
    for name in "abc":
        project.write(f"src/{name}.txt", name)
    assert project.bflow(*argv).returncode == 0
    settle(*(project.root / "out").iterdir(), project.root / "src")
    assert project.bflow(*argv).returncode == 0  # the proof now vouches for every stat
    status, modules = imported_by(argv, project.root)
    assert status == 0
    assert "buildflow.fastpath.proof" in modules  # answered by the fast path
    assert sorted(modules & set(AVOIDED)) == []


def test_version_imports_no_argparse(project: Project) -> None:
    status, modules = imported_by(["--version"], project.root)
    assert status == 0 and "argparse" not in modules and "typing" not in modules


@pytest.mark.output_cache
def test_an_edits_build_with_no_remote_cache_imports_no_http_client(project: Project) -> None:
    """The output cache's HTTP client (`http.client` brings `email`, `ssl` and `socket`) is
    imported only when a remote cache is configured."""
    project.flowfile(FLOWFILE)
    project.write("src/a.txt", "a")
    assert project.bflow("-q").returncode == 0
    project.write("src/a.txt", "edited")
    status, modules = imported_by(["-q"], project.root)
    assert status == 0 and project.read("out/a.out") == "edited"
    assert "buildflow.cache.store" in modules  # the output cache was open
    assert "http.client" not in modules and "buildflow.cache.remote" not in modules
