"""What git tracks and ignores in a directory: `bflow status --outputs` builds a copy of the
files the index holds, written as a checkout writes them, so it checks what a commit holds."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from buildflow.errors import UsageError

SYMLINK, GITLINK = "120000", "160000"


class Entry(NamedTuple):
    """A file as the index records it: its mode ("100644", "100755" or SYMLINK) and the id of
    its blob."""

    mode: str
    blob: str


class Index(NamedTuple):
    """The files an index holds below a directory, relative to it (with those of each
    submodule checked out there, at the commit its gitlink records), those submodules, and
    the paths it holds unmerged (in conflict), which no commit can hold yet."""

    files: dict[str, Entry]
    submodules: list[str]
    unmerged: set[str]


def check_out(directory: str, top: str, index: str | None = None) -> Index:
    """Write the files of the index below `directory` under `top`, at their place in the
    repository, as `git checkout` writes them: filters run, modes and symlinks as recorded,
    entries that skip the work tree (a sparse checkout, `--skip-worktree`) included, no file
    on disk read. A submodule checked out here is written as the commit its gitlink records
    holds it (read into an index of its own); one not checked out is an empty directory, as
    a clone without `--recurse-submodules` leaves it."""
    env = None if index is None else _submodule_environment(index)
    files, gitlinks, unmerged = {}, {}, set()
    for line in _git(directory, "ls-files", "-z", "--stage", env=env).split(b"\0"):
        if not line:
            continue
        info, path = line.split(b"\t", 1)
        mode, blob, stage = os.fsdecode(info).split()
        if stage != "0":  # a commit holds none of its stages, and checkout-index writes none
            unmerged.add(os.fsdecode(path))
            continue
        if mode == GITLINK:
            gitlinks[os.fsdecode(path)] = blob
        else:
            files[os.fsdecode(path)] = Entry(mode, blob)
    _git(directory, "checkout-index", "-a", "--ignore-skip-worktree-bits",
         f"--prefix={os.path.join(top, '')}", env=env)
    if index is None and gitlinks:  # the superproject's `directory` may be below its top
        top = os.path.join(top, place(directory))
    submodules = []
    for name, commit in gitlinks.items():
        sub = os.path.join(directory, name)
        if not os.path.exists(os.path.join(sub, ".git")):
            continue
        with tempfile.TemporaryDirectory(prefix="bflow-index-") as temp:
            its_index = os.path.join(temp, "index")
            try:
                _git(sub, "read-tree", commit, env=_submodule_environment(its_index))
            except UsageError:
                raise UsageError(f"{sub}: a submodule without the commit {commit} its gitlink "
                                 "records (git submodule update, or fetch it there)") from None
            inner = check_out(sub, os.path.join(top, name), its_index)
        files.update((f"{name}/{path}", entry) for path, entry in inner.files.items())
        submodules += [name, *(f"{name}/{path}" for path in inner.submodules)]
        unmerged.update(f"{name}/{path}" for path in inner.unmerged)
    return Index(files, submodules, unmerged)


def held(directory: str, paths: Iterable[str]) -> set[str]:
    """The files the index holds, merged or not, among `paths` (relative to `directory`, `../`
    leading as far up as the top of its work tree) and under those that are directories,
    whatever the disk holds."""
    listed = list(paths)
    if not listed:
        return set()
    return _paths(_git(directory, "--literal-pathspecs", "ls-files", "-z", "--", *listed))


def tracked_among(directory: str, paths: Iterable[str]) -> set[str]:
    """`held`; none when git is missing or `directory` is in no repository."""
    try:
        return held(directory, paths)
    except UsageError:  # no git, or no repository: nothing is tracked
        return set()


def place(directory: str) -> str:
    """Where `directory` is in its repository: its path from the work tree's top, with a
    trailing `/` ("apps/web/"), or "" at the top."""
    return os.fsdecode(_git(directory, "rev-parse", "--show-prefix")).strip()


def ignored(directory: str, copy: str, paths: Iterable[str],
            submodules: Iterable[str] = ()) -> set[str]:
    """Those of `paths` (relative to `directory`, in no commit) that git ignores, by the
    `.gitignore` files of `copy`, the checkout of the index at `directory`'s place (`in_copy`);
    a path in one of `submodules` asked of that submodule (the superproject refuses it)."""
    found: set[str] = set()
    for repository, names in _by_repository(paths, submodules).items():
        listed = b"\0".join(os.fsencode(name) for name in names)
        env = _submodule_environment() if repository else None
        where, options = in_copy(os.path.join(directory, repository),
                                 os.path.join(copy, repository), env)
        # Exit status 1 means "none of them is ignored".
        answer = _git(where, *options, "check-ignore", "--no-index", "-z", "--stdin",
                      stdin=listed, ok=(0, 1), env=env)
        found.update(names[name] for name in _paths(answer))
    return found


def in_copy(directory: str, copy: str, env: Mapping[str, str] | None
            ) -> tuple[str, tuple[str, ...]]:
    """Where to run git, and the options to give it, to ask of `copy`, the checkout of the
    index at the place of `directory` in its repository: the `.gitignore` and
    `.gitattributes` files it reads are then the copy's, what the commit holds (the disk's may
    hold an edit not staged, or lack a file git skips), with the repository's own config."""
    git_dir, prefix = os.fsdecode(_git(directory, "rev-parse", "--absolute-git-dir",
                                       "--show-prefix", env=env)).split("\n")[:2]
    top = os.path.normpath(os.path.join(copy, *[os.pardir] * prefix.count("/")))
    return copy, (f"--git-dir={git_dir}", f"--work-tree={top}")


def differing(directory: str, copy: str, files: Mapping[str, str], index: Index) -> set[str]:
    """Those of `files` (each a path `index` holds, mapped to a file elsewhere) that git would
    not store as the blob the index records there: compared once git's filters have run on
    the file as at that path (line endings converted under `core.autocrlf` or an `eol`
    attribute of `copy`'s `.gitattributes`, `in_copy`), a symlink as the path it holds."""
    plain = [path for path in files
             if not os.path.islink(files[path]) and "\n" not in files[path]]
    listed = os.fsencode("".join(f"{files[path]}\n" for path in plain))
    raw = _git(directory, "hash-object", "--no-filters", "--stdin-paths", stdin=listed)
    as_they_are = dict(zip(plain, os.fsdecode(raw).split()))  # one process: the usual answer
    different = set()
    for repository, names in _by_repository(files, index.submodules).items():
        env = _submodule_environment() if repository else None
        filtered: list[tuple[str, str]] = []  # (name, path) of those to hash through filters
        for name, path in names.items():
            entry = index.files[path]
            if os.path.islink(files[path]) != (entry.mode == SYMLINK):
                different.add(path)
            elif as_they_are.get(path) != entry.blob:
                filtered.append((name, path))
        if not filtered:
            continue
        where, options = in_copy(os.path.join(directory, repository),
                                 os.path.join(copy, repository), env)
        batch = [(os.path.join(where, name), path) for name, path in filtered
                 if "\n" not in os.path.join(where, name) and not os.path.islink(files[path])]
        # one process for the files (under core.autocrlf, each text file), each hashed as at
        # its place in the copy, where git finds its attributes
        raw = _git(where, *options, "hash-object", "--stdin-paths",
                   stdin=os.fsencode("".join(f"{file}\n" for file, _ in batch)),
                   env=env) if batch else b""
        stored = dict(zip((path for _, path in batch), os.fsdecode(raw).split()))
        for name, path in filtered:
            blob = stored.get(path) or _stored(where, options, name, files[path], env)
            if blob != index.files[path].blob:
                different.add(path)
    return different


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


def _submodule_environment(index: str | None = None) -> dict[str, str]:
    """bflow's environment for git in a submodule: without the variables git sets for the
    superproject's hooks (its GIT_DIR, GIT_WORK_TREE and GIT_INDEX_FILE), with `index` for
    its index."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    return env if index is None else {**env, "GIT_INDEX_FILE": index}


def _by_repository(paths: Iterable[str], submodules: Iterable[str]
                   ) -> dict[str, dict[str, str]]:
    """`paths` by the repository that holds each, the directory's ("") or a submodule's, each
    mapped from its name there."""
    deepest = sorted(submodules, key=len, reverse=True)
    grouped: dict[str, dict[str, str]] = {}
    for path in paths:
        repository = next((sub for sub in deepest if path.startswith(f"{sub}/")), "")
        grouped.setdefault(repository, {})[path[len(repository):].lstrip("/")] = path
    return grouped


def _stored(directory: str, options: tuple[str, ...], path: str, file: str,
            env: Mapping[str, str] | None) -> str:
    """The id of the blob git (run in `directory` with `options`) would store `file` as at
    `path` (relative to `directory`)."""
    if os.path.islink(file):
        blob = _git(directory, *options, "hash-object", "--no-filters", "--stdin",
                    stdin=os.fsencode(os.readlink(file)), env=env)
    else:
        blob = _git(directory, *options, "hash-object", f"--path={path}", "--", file, env=env)
    return os.fsdecode(blob).strip()


def _git(directory: str, *args: str, stdin: bytes = b"", ok: tuple[int, ...] = (0,),
         env: Mapping[str, str] | None = None) -> bytes:
    """What git run in `directory` printed; a UsageError with what it printed on stderr if it
    exits other than `ok`, which says to run the check in a work tree only outside one."""
    result = _run(directory, args, stdin, env)
    if result.returncode not in ok:
        printed = "; ".join(os.fsdecode(result.stderr).strip().splitlines()) or \
            f"exit status {result.returncode}"
        command = next(arg for arg in args if not arg.startswith("-"))
        inside = _run(directory, ("rev-parse", "--is-inside-work-tree"), b"", env)
        if inside.stdout.strip() == b"true":
            raise UsageError(f"{directory}: git {command} failed: {printed} (bflow status "
                             "--outputs copies and compares the files git's index holds with "
                             "git: fix what git says, then run it again)")
        raise UsageError(f"{directory}: git {command}: {printed}; bflow status --outputs "
                         "builds a copy of the files git tracks, so run it in a git work tree")
    return result.stdout


def _run(directory: str, args: Iterable[str], stdin: bytes,
         env: Mapping[str, str] | None) -> subprocess.CompletedProcess[bytes]:
    """git run in `directory`; a UsageError when there is no git, or no such directory."""
    try:
        return subprocess.run(["git", *args], cwd=directory, input=stdin,
                              capture_output=True, check=False,
                              env=_environment() if env is None else env)
    except FileNotFoundError:
        if not os.path.isdir(directory):  # `-f apps/web/Flowfile`, left out of the disk
            raise UsageError(f"{directory}: no such directory, and bflow status --outputs runs "
                             "git in the project's directory (a sparse checkout leaves it out: "
                             "git sparse-checkout add it)") from None
        raise UsageError(f"{directory}: bflow status --outputs builds a copy of the files git "
                         "tracks, and git is not installed (install it, or put it on PATH)"
                         ) from None
