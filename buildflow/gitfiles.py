"""What git tracks and ignores in a directory: `bflow status --outputs` builds a copy of the
tracked files, so it checks what a commit holds (under pre-commit, which stashes unstaged
changes, the working tree holds what is staged)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable

from buildflow.errors import UsageError


def tracked(directory: str) -> set[str]:
    """The files git tracks in `directory` (and in its submodules), relative to it, whether or
    not they are on disk."""
    return _paths(_git(directory, "ls-files", "-z", "--recurse-submodules"))


def tracked_among(directory: str, paths: Iterable[str]) -> set[str]:
    """Those files git tracks of `paths` (relative to `directory`) and in those of them that
    are directories; none when git is missing or `directory` is in no repository."""
    listed = list(paths)
    if not listed:
        return set()
    try:
        return _paths(_git(directory, "--literal-pathspecs", "ls-files", "-z", "--", *listed))
    except UsageError:  # no git, or no repository: nothing is tracked
        return set()


def place(directory: str) -> str:
    """Where `directory` is in its repository: its path from the work tree's top, with a
    trailing `/` ("apps/web/"), or "" at the top."""
    return os.fsdecode(_git(directory, "rev-parse", "--show-prefix")).strip()


def ignored(directory: str, paths: Iterable[str]) -> set[str]:
    """Those of `paths` (relative to `directory`) that git ignores."""
    listed = b"\0".join(os.fsencode(path) for path in paths)
    if not listed:
        return set()
    # Exit status 1 means "none of them is ignored".
    return _paths(_git(directory, "check-ignore", "-z", "--stdin", stdin=listed, ok=(0, 1)))


def same_blob(directory: str, path: str, other: str) -> bool:
    """Whether git would store the file `other` at `path` (relative to `directory`) as the
    blob it stores the file there now: the same once git's filters have run on each (line
    endings converted under `core.autocrlf` or an `eol` attribute)."""
    here = _git(directory, "hash-object", "--", path)
    there = _git(directory, "hash-object", f"--path={path}", "--", other)
    return here.strip() == there.strip()


def minds_modes(directory: str) -> bool:
    """Whether git records a file's executable bit here (`core.fileMode`, true unless set
    false, as on file systems without one)."""
    value = _git(directory, "config", "--type=bool", "--get", "core.fileMode", ok=(0, 1))
    return value.strip() != b"false"


def _paths(output: bytes) -> set[str]:
    return {os.fsdecode(path) for path in output.split(b"\0") if path}


def _environment() -> dict[str, str] | None:
    """bflow's environment for git, less a GIT_DIR set without GIT_WORK_TREE, as git sets it
    for the hooks of a linked worktree: git would take the directory it runs in for the top
    of the work tree, and bflow runs it in the project's directory, which may be below the
    top (`bflow -C apps/web`): every path was then wrong, a tracked file taken for an
    untracked one. Without it, git finds the repository that holds the directory, as it does
    outside hooks."""
    if "GIT_DIR" in os.environ and "GIT_WORK_TREE" not in os.environ:
        return {name: value for name, value in os.environ.items() if name != "GIT_DIR"}
    return None


def _git(directory: str, *args: str, stdin: bytes = b"", ok: tuple[int, ...] = (0,)) -> bytes:
    try:
        result = subprocess.run(["git", *args], cwd=directory, input=stdin,
                                capture_output=True, check=False, env=_environment())
    except FileNotFoundError:
        raise UsageError(f"{directory}: bflow status --outputs builds a copy of the files git "
                         "tracks, and git is not installed (install it, or put it on PATH)"
                         ) from None
    if result.returncode not in ok:
        message = os.fsdecode(result.stderr).strip().splitlines() or [
            f"exit status {result.returncode}"]
        raise UsageError(f"{directory}: git {args[0]}: {message[-1]}; bflow status --outputs "
                         "builds a copy of the files git tracks, so run it in a git work tree")
    return result.stdout
