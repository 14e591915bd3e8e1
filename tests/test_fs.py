"""The real disk: a file written whole is the old one or the new one, never a part, and a
log appended to keeps every whole record."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildflow.fs import LocalFileSystem, is_temp_file, replace_file


def test_a_file_replaced_is_whole_with_its_mode_and_no_temp_file_beside_it(
        tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "file"  # its directory is made
    replace_file(str(target), b"one ", b"two", mode=0o755)
    assert target.read_bytes() == b"one two"
    assert target.stat().st_mode & 0o777 == 0o755  # whatever the umask
    old_umask = os.umask(0o077)
    try:
        replace_file(str(target), b"three")
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"three"
    assert target.stat().st_mode & 0o777 == 0o600  # no mode given: the umask's
    assert os.listdir(target.parent) == ["file"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        replace_file(str(target), b"new", "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file"]


def test_a_temp_file_a_killed_write_leaves_is_known_as_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(*args: object) -> None:
        raise OSError("killed before the rename")

    with monkeypatch.context() as patched, pytest.raises(OSError):
        patched.setattr(os, "replace", killed)
        patched.setattr(os, "unlink", lambda path: None)  # and before the clean-up
        replace_file(str(tmp_path / "file"), b"data")
    left = os.listdir(tmp_path)
    assert len(left) == 1 and is_temp_file(left[0]) and not is_temp_file("file")


def test_an_append_keeps_what_it_was_told_to_and_adds_whole_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    disk = LocalFileSystem("")  # paths as given: relative to where bflow runs
    Path("log").write_bytes(b"keep|torn")
    log = disk.append("log", keep=5)
    log.write(b"one|")
    log.write(b"two|")
    assert log.size == len(b"keep|one|two|")
    log.close()
    assert disk.read("log") == b"keep|one|two|"
    disk.append("new/log", keep=0).close()  # made, with its directory
    assert disk.read("new/log") == b""
