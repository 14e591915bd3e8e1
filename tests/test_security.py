"""Security: `bflow clean` deletes only declared outputs inside the root, whatever the Flowfile
says; files bflow creates follow the user's umask; secret env values are never printed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project, bflow_env


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A directory outside the project standing in for $HOME: nothing in it may disappear."""
    home = tmp_path / "home"
    (home / "docs").mkdir(parents=True)
    (home / "docs" / "precious.txt").write_text("keep me\n")
    (home / "precious.txt").write_text("keep me\n")
    return home


@pytest.fixture
def inner(tmp_path: Path) -> Project:
    root = tmp_path / "work" / "proj"
    root.mkdir(parents=True)
    (root.parent / "sibling.txt").write_text("keep me\n")
    return Project(root)


def assert_intact(victim: Path, inner: Project) -> None:
    assert (victim / "precious.txt").read_text() == "keep me\n"
    assert (victim / "docs" / "precious.txt").read_text() == "keep me\n"
    assert (inner.root.parent / "sibling.txt").read_text() == "keep me\n"
    assert (inner.root / "Flowfile").exists()


@pytest.mark.parametrize("outputs", [["../.."], ["/"], [".."], ["."], ["a/../.."],
                                     ["{HOME_DIR}"], ["{HOME_DIR}/precious.txt"],
                                     ["via-link/precious.txt"], ["via-link/docs/"]])
def test_clean_refuses_outputs_outside_the_root(inner: Project, victim: Path,
                                                outputs: list[str]) -> None:
    (inner.root / "via-link").symlink_to(victim)
    inner.flowfile(f"""
    [vars]
    HOME_DIR = "{victim}"

    [tasks.evil]
    cmd = "true"
    outputs = {json.dumps(outputs)}
    """)
    result = inner.bflow("clean")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "tasks.evil.outputs[0]" in result.stderr and "project root" in result.stderr
    assert_intact(victim, inner)


def test_clean_removes_a_link_to_home_not_home(inner: Project, victim: Path) -> None:
    """A declared output that is itself a symlink to $HOME is unlinked, never followed; so is
    a link inside a declared output directory."""
    inner.flowfile(f"""
    [tasks.link]
    cmd = "true"
    outputs = ["home-link"]
    [tasks.tree]
    cmd = "mkdir -p build && ln -s {victim} build/also-home && echo object > build/made.o"
    outputs = ["build/"]
    """)
    (inner.root / "home-link").symlink_to(victim)
    (inner.root / "kept.txt").write_text("not an output\n")
    assert inner.bflow("tree").returncode == 0  # so the tree is known to be its
    assert (inner.root / "build" / "also-home").is_symlink()
    result = inner.bflow("clean")
    assert result.returncode == 0, result.stderr
    assert not os.path.lexists(inner.root / "home-link")
    assert not (inner.root / "build").exists()
    assert (inner.root / "kept.txt").exists()
    assert_intact(victim, inner)


def _bflow_with_umask(project: Project, umask: int, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "buildflow", *args], cwd=project.root,
                   env=bflow_env(), capture_output=True, check=False, timeout=60,
                   preexec_fn=lambda: os.umask(umask))


@pytest.mark.parametrize("umask", [0o077, 0o022])
def test_cache_dir_and_logs_follow_the_umask(project: Project, umask: int) -> None:
    project.flowfile("""
    [tasks.hello]
    cmd = "echo hello | tee {output}"
    outputs = ["build/hello.txt"]

    [tasks.masked]
    cmd = "echo $API_TOKEN"
    env = { API_TOKEN = "s3cret" }
    """)
    _bflow_with_umask(project, umask)
    cache = project.root / ".bflow"
    created = [cache, *cache.rglob("*")]
    assert len([p for p in created if p.parent.name == "logs"]) == 2
    for path in created:
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert mode == expected, (path, oct(mode), oct(expected))


SECRETS = """
[settings]
env = { DB_PASSWORD = "pw-from-settings-4411" }

[tasks.leak]
cmd = "printenv API_TOKEN > got.txt && echo token=$API_TOKEN pw=$DB_PASSWORD && {FAIL}"
env = { API_TOKEN = "tok-secret-9876", PLAIN = "visible-value" }
outputs = ["got.txt"]

[vars]
FAIL = "true"
"""


@pytest.mark.parametrize("mode", [["-v", "--plain"], ["--json"], ["-v", "--plain", "FAIL=false"],
                                  ["--json", "FAIL=false"]])
def test_secrets_are_never_printed(project: Project, mode: list[str]) -> None:
    project.flowfile(SECRETS)
    result = project.bflow(*mode)
    assert result.returncode == (1 if "FAIL=false" in mode else 0), result.stderr
    assert project.read("got.txt") == "tok-secret-9876\n"  # the command saw the real value
    printed = result.stdout + result.stderr
    assert "token=*** pw=***" in printed
    saved = b"".join(p.read_bytes() for p in (project.root / ".bflow" / "logs").iterdir())
    explain = project.bflow("explain", "leak", "-v")
    for text in (printed, saved.decode(), explain.stdout + explain.stderr):
        assert "tok-secret-9876" not in text and "pw-from-settings-4411" not in text


@pytest.mark.parametrize("cache_dir", ["/", "..", ".", "../elsewhere", "/tmp/cache"])
def test_the_cache_dir_must_be_inside_the_project(project: Project, cache_dir: str) -> None:
    project.flowfile(f'[settings]\ncache_dir = "{cache_dir}"\n[tasks.t]\ncmd = "true"\n')
    result = project.bflow()
    assert result.returncode == 2
    assert "settings.cache_dir" in result.stderr and "inside the project root" in result.stderr
