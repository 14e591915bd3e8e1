"""The project's modules are imported from their source, never from a .pyc Python would take
as current; everything else is left to Python's own finders."""

from __future__ import annotations

import os
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import importlib, sys
from buildflow import sourceimport
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "install":
    sourceimport.install(sys.argv[1])
for name in sys.argv[3:]:
    module = importlib.import_module(name)
    print(name, getattr(module, "VALUE", None), type(module.__spec__.loader).__name__)
"""


def imported(root: Path, *names: str, install: bool = True) -> dict[str, tuple[str, str]]:
    """Each module's VALUE and loader class, as a fresh interpreter imports them (with the
    finder installed, or not)."""
    result = subprocess.run([sys.executable, "-c", PROBE, str(root),
                             "install" if install else "plain", *names], check=True,
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return {name: (value, loader) for name, value, loader in
            (line.split() for line in result.stdout.splitlines())}


def stale_pyc(path: Path, new_source: str) -> None:
    """Compile `path` to its .pyc, then give it other source of the same size and mtime: what
    an edit within the second after an import leaves."""
    py_compile.compile(str(path))
    before = path.stat()
    assert len(new_source.encode()) == before.st_size
    path.write_text(new_source)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_the_project_s_modules_come_from_their_source(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "top.py").write_text("VALUE = 'a'\n")
    (tmp_path / "pkg" / "sub.py").write_text("VALUE = 'a'\n")
    (tmp_path / "spaced").mkdir()  # a namespace package: no __init__.py
    (tmp_path / "spaced" / "inner.py").write_text("VALUE = 'a'\n")
    for path in ("top.py", "pkg/sub.py", "spaced/inner.py"):
        stale_pyc(tmp_path / path, "VALUE = 'b'\n")
    names = ("top", "pkg.sub", "spaced.inner")
    assert imported(tmp_path, *names, install=False) == dict.fromkeys(  # Python's own way
        names, ("a", "SourceFileLoader"))
    assert imported(tmp_path, *names) == dict.fromkeys(names, ("b", "_FromSource"))


@pytest.mark.parametrize("directory", [".venv/lib/site-packages", "lib/site-packages"])
def test_an_installed_package_inside_the_root_keeps_its_pyc(tmp_path: Path,
                                                            directory: str) -> None:
    packages = tmp_path / directory
    (packages / "lib_pkg").mkdir(parents=True)
    (packages / "lib_pkg" / "__init__.py").write_text("VALUE = 'a'\n")
    (packages / "lib_pkg" / "sub.py").write_text("VALUE = 'a'\n")  # found below the root
    probe = PROBE.replace("sys.path.insert(0, sys.argv[1])",
                          f"sys.path.insert(0, sys.argv[1]); sys.path.append({str(packages)!r})")
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path), "install", "json",
                             "lib_pkg", "lib_pkg.sub"],
                            check=True, capture_output=True, text=True)
    loaders = {line.split()[0]: line.split()[2] for line in result.stdout.splitlines()}
    assert loaders == dict.fromkeys(["json", "lib_pkg", "lib_pkg.sub"], "SourceFileLoader")
