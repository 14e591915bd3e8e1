"""The two checks every load makes, on real directories and symlinks: outputs stay inside the
root, and an input named on its own is a file."""

from __future__ import annotations

import os
from pathlib import Path

from buildflow.rootcheck import escape_of, first_escape, is_input_file, output_prefixes


def test_the_prefixes_are_every_directory_on_the_way_to_the_outputs() -> None:
    assert output_prefixes(["build/obj/x", "build/bin", "", "docs"]) == (
        "build", "build/bin", "build/obj", "build/obj/x", "docs")


def test_a_symlink_out_of_the_root_is_the_first_escape(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "build" / "inner").mkdir(parents=True)
    outside.mkdir()
    (root / "build" / "out").symlink_to(outside)
    (root / "build" / "in").symlink_to(root / "build" / "inner")  # a link that stays inside
    prefixes = output_prefixes(["build/in", "build/out/x", "build/gone"])
    assert first_escape(str(root), prefixes) == "build/out"
    real_root = os.path.realpath(root)

    def escape(path: str) -> str | None:
        return escape_of(real_root, os.path.realpath(root / path))

    assert escape("build/out/x") == os.path.realpath(outside / "x")
    assert escape("build/in") is None
    assert escape("build/gone") is None  # made inside when needed


def test_a_root_reached_through_a_symlink_is_no_escape(tmp_path: Path) -> None:
    (tmp_path / "real" / "build").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "out").symlink_to(tmp_path / "real" / "build")
    assert first_escape(str(tmp_path / "link"), ["build", "out"]) is None


def test_a_sibling_directory_sharing_the_roots_name_is_outside(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root-other").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path / "root-other")
    assert first_escape(str(tmp_path / "root"), ["out"]) == "out"


def test_an_input_named_on_its_own_is_a_file_through_links(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a.txt")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert [is_input_file(str(tmp_path / name)) for name in
            ("a.txt", "link", "dir", "dangling", "missing")] == [True, True, False, False, False]
