"""Globs over files on disk and over declared outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildflow import globbing


@pytest.mark.parametrize("pattern, path, matches", [
    ("src/**/*.c", "src/a.c", True),
    ("src/**/*.c", "src/net/tcp.c", True),
    ("src/**/*.c", "src/net/tcp.h", False),
    ("src/*.c", "src/net/tcp.c", False),
    ("**", "a/b/c", True),
    ("**/*.c", "a.c", True),
    ("*.c", ".hidden.c", False),
    ("src/**/*.c", "src/.git/x.c", False),
    (".github/*.yml", ".github/ci.yml", True),
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file10.txt", False),
    ("v[0-9].txt", "v3.txt", True),
    ("v[!0-9].txt", "v3.txt", False),
    ("v[!0-9].txt", "vx.txt", True),
    ("a+b(c).txt", "a+b(c).txt", True),
])
def test_compile_glob(pattern: str, path: str, matches: bool) -> None:
    assert bool(globbing.compile_glob(pattern).match(path)) is matches


def test_fixed_prefix() -> None:
    assert globbing.fixed_prefix("src/net/**/*.c") == "src/net"
    assert globbing.fixed_prefix("*.c") == ""
    assert globbing.fixed_prefix("a/b*/c.txt") == "a"


def test_normalize_and_outside() -> None:
    assert globbing.normalize("./build//x/../y.o") == "build/y.o"
    assert globbing.normalize(".") == ""
    assert globbing.is_outside("../x") and globbing.is_outside("/abs")
    assert not globbing.is_outside("..x/y")


def _tree(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(path)


def test_match_merges_disk_and_declared_sorted_and_excludes(tmp_path: Path) -> None:
    _tree(tmp_path, "build/b.o", "build/sub/z.o", ".bflow/c.o", "build/.hidden/h.o")
    disk = globbing.DiskIndex(str(tmp_path), skip=[".bflow"])
    found = globbing.match("build/**/*.o", disk, ["build/a.o", "build/b.o", "other/c.o"])
    assert found == ["build/a.o", "build/b.o", "build/sub/z.o"]
    assert globbing.match("build/**/*.o", disk, ["build/a.o"], exclude={"build/a.o"}) == \
        ["build/b.o", "build/sub/z.o"]


def test_skipped_directories_are_not_listed(tmp_path: Path) -> None:
    _tree(tmp_path, "cache/x.txt", "keep/y.txt")
    disk = globbing.DiskIndex(str(tmp_path), skip=["cache"])
    assert globbing.match("**/*.txt", disk, []) == ["keep/y.txt"]


def test_a_symlink_loop_is_listed_once(tmp_path: Path) -> None:
    _tree(tmp_path, "src/a.c")
    os.symlink("..", tmp_path / "src" / "up")
    disk = globbing.DiskIndex(str(tmp_path))
    assert globbing.match("src/**/*.c", disk, []) == ["src/a.c"]
