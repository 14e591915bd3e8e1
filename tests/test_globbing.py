"""Globs over files on disk and over declared outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buildflow import globbing
from buildflow.fs import LocalFileSystem
from memfs import MemoryFileSystem

NONE = globbing.PathIndex(())  # no task declares an output


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
    disk = globbing.DiskIndex(LocalFileSystem(str(tmp_path)), skip=[".bflow"])
    declared = globbing.PathIndex(["build/a.o", "build/b.o", "other/c.o"])
    found = globbing.match("build/**/*.o", disk, declared)
    assert found == ["build/a.o", "build/b.o", "build/sub/z.o"]
    assert globbing.match("build/**/*.o", disk, declared, exclude={"build/a.o"}) == \
        ["build/b.o", "build/sub/z.o"]


def test_skipped_directories_are_not_listed(tmp_path: Path) -> None:
    _tree(tmp_path, "cache/x.txt", "keep/y.txt")
    disk = globbing.DiskIndex(LocalFileSystem(str(tmp_path)), skip=["cache"])
    assert globbing.match("**/*.txt", disk, NONE) == ["keep/y.txt"]


def test_a_glob_segment_with_a_leading_dot_reaches_into_hidden_directories(
        tmp_path: Path) -> None:
    # as a shell's `.*/*.txt` does; a glob without one still skips them
    _tree(tmp_path, ".cfg/x.txt", "d/.e/y.txt", "d/.e/deep/z.txt", "d/f/w.txt", ".bflow/c.txt",
          ".git/objects/ab/o.txt")
    disk = globbing.DiskIndex(LocalFileSystem(str(tmp_path)), skip=[".bflow"])
    assert globbing.match(".*/*.txt", disk, NONE) == [".cfg/x.txt"]
    assert globbing.match("d/.?/*", disk, NONE) == ["d/.e/y.txt"]
    assert globbing.match("d/.e*/y.txt", disk, NONE) == ["d/.e/y.txt"]
    assert globbing.match(".c*/**/*.txt", disk, NONE) == [".cfg/x.txt"]
    assert globbing.match("d/.*/**", disk, NONE) == ["d/.e/deep/z.txt", "d/.e/y.txt"]
    assert globbing.match("d/*/*.txt", disk, NONE) == ["d/f/w.txt"]
    assert globbing.match("**/.e/*.txt", disk, NONE) == ["d/.e/y.txt"]  # `**` before them too
    assert globbing.match("d/**/.e/**/*.txt", disk, NONE) == ["d/.e/deep/z.txt", "d/.e/y.txt"]
    assert ".git/objects" not in disk.dirs_read  # only what the segments reach is listed


def test_a_symlink_loop_is_listed_once(tmp_path: Path) -> None:
    _tree(tmp_path, "src/a.c")
    os.symlink("..", tmp_path / "src" / "up")
    disk = globbing.DiskIndex(LocalFileSystem(str(tmp_path)))
    assert globbing.match("src/**/*.c", disk, NONE) == ["src/a.c"]


@pytest.mark.parametrize("link", ["a", "m", "zz"])
def test_a_directory_and_a_link_beside_it_are_both_walked(tmp_path: Path, link: str) -> None:
    """The walk kept whichever of the two it met first, in the order the directory listed
    its entries: with the link `a` or `zz`, the real file was dropped. `glob` and bash's
    globstar list both."""
    _tree(tmp_path, "src/real/x.c")
    os.symlink("real", tmp_path / "src" / link)
    disk = globbing.DiskIndex(LocalFileSystem(str(tmp_path)))
    assert globbing.match("src/**/*.c", disk, NONE) == sorted([f"src/{link}/x.c",
                                                               "src/real/x.c"])


def test_a_link_up_out_of_a_linked_directory_is_a_loop(tmp_path: Path) -> None:
    _tree(tmp_path, "src/a.c", "outside/b.c")
    os.symlink("../outside", tmp_path / "src" / "ext")
    os.symlink("../src", tmp_path / "outside" / "back")
    disk = globbing.DiskIndex(LocalFileSystem(str(tmp_path)))
    assert globbing.match("src/**/*.c", disk, NONE) == ["src/a.c", "src/ext/b.c"]


NAMES = ["a", "b.c", "ab", ".h", "x.c", "a.b.c"]
SEGMENT_GLOBS = ["*", "*.c", "a*", "?", "?.c", "[ab]*", "[!a]*", ".*", "*b*"]


@st.composite
def paths(draw: st.DrawFn) -> str:
    return "/".join(draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4)))


@st.composite
def globs_of(draw: st.DrawFn, path: str) -> str:
    """A glob that may match `path`: each segment kept, made a wildcard, or taken into a `**`
    (which may also stand for no segment)."""
    shown = [draw(st.sampled_from([segment, "**", *SEGMENT_GLOBS]))
             for segment in path.split("/")]
    if draw(st.booleans()):
        shown.insert(draw(st.integers(0, len(shown))), "**")
    return "/".join(glob for i, glob in enumerate(shown)
                    if not (glob == "**" and shown[i - 1:i] == ["**"]))


@given(paths(), st.data())
def test_two_globs_that_match_one_path_may_overlap(path: str, data: st.DataObject) -> None:
    # Soundness is what matters: a "no" would hide a reader of files a build writes.
    first, second = data.draw(globs_of(path)), data.draw(globs_of(path))
    if globbing.compile_glob(first).match(path) and globbing.compile_glob(second).match(path):
        assert globbing.may_overlap(first, second)
        assert globbing.may_overlap(second, first)
        assert globbing.may_overlap(path, first)  # the path read by name


@given(paths(), st.data())
def test_every_path_a_glob_matches_starts_with_its_fixed_prefix(path: str,
                                                               data: st.DataObject) -> None:
    glob = data.draw(globs_of(path))
    prefix = globbing.fixed_prefix(glob)
    if globbing.compile_glob(glob).match(path):
        assert path == prefix or path.startswith(prefix + "/") or not prefix


@given(paths(), paths(), st.data())
def test_a_glob_matched_past_its_fixed_prefix_matches_as_its_whole_regex(
        path: str, other: str, data: st.DataObject) -> None:
    # `matcher` compares the fixed directories as text and shares the regex of the rest.
    segments = path.split("/")
    kept = data.draw(st.integers(0, len(segments) - 1))
    glob = "/".join([*segments[:kept], data.draw(globs_of("/".join(segments[kept:])))])
    for candidate in (path, other):
        assert bool(globbing.matcher(glob)(candidate)) == \
            bool(globbing.compile_glob(glob).match(candidate))


TREE_PATHS = st.lists(st.sampled_from(["a", ".h", "b.c"]), min_size=1, max_size=4).map("/".join)


@given(st.lists(TREE_PATHS, min_size=1, max_size=6), st.data())
def test_a_glob_finds_on_disk_every_file_it_matches(files: list[str],
                                                    data: st.DataObject) -> None:
    # The walk lists only some directories (none hidden, unless a segment with a leading dot
    # names them): it must still reach every file the glob's own pattern accepts.
    files = [f for f in files if not any(other.startswith(f + "/") for other in files)]
    disk = MemoryFileSystem()
    for path in files:
        disk.write(path, path)
    glob = data.draw(globs_of(data.draw(st.sampled_from(files))))
    regex = globbing.compile_glob(glob)
    assert globbing.match(glob, globbing.DiskIndex(disk), NONE) == \
        sorted(path for path in set(files) if regex.match(path))



@given(st.lists(TREE_PATHS, min_size=1, max_size=6), st.data())
def test_a_glob_finds_every_declared_path_it_matches(files: list[str],
                                                     data: st.DataObject) -> None:
    # Only declared paths that start as the glob does are tried (found by bisection).
    glob = data.draw(globs_of(data.draw(st.sampled_from(files))))
    regex = globbing.compile_glob(glob)
    assert globbing.match(glob, globbing.DiskIndex(MemoryFileSystem()),
                          globbing.PathIndex(files)) == \
        sorted(path for path in set(files) if regex.match(path))

GLOB_CHARACTER_PATHS = st.lists(st.text(st.sampled_from("ab.*?[]!-"), min_size=1, max_size=3),
                                min_size=1, max_size=2).map("/".join)


@given(GLOB_CHARACTER_PATHS, GLOB_CHARACTER_PATHS)
def test_an_escaped_path_matches_that_path_alone(path: str, other: str) -> None:
    glob = globbing.compile_glob(globbing.escape(path))
    assert glob.match(path)
    assert not glob.match(other) or other == path
