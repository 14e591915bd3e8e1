"""Globs over files on disk and over paths declared by tasks (which may not exist yet).

`*`, `?` and `[..]` match within one path segment, `**` matches any number of segments, and
no wildcard matches a name that starts with a dot (as in the shell). All paths here are POSIX
paths relative to the project root.
"""

from __future__ import annotations

import os
import posixpath
import re
from bisect import bisect_left, insort
from collections.abc import Callable, Collection, Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

if TYPE_CHECKING:
    from buildflow.fs import FileSystem

_MAGIC = re.compile(r"[*?\[]")


def normalize(path: str) -> str:
    """A POSIX path relative to the root ('..' kept when it leaves it; absolute stays so)."""
    normal = posixpath.normpath(path.replace(os.sep, "/"))
    return "" if normal == "." else normal


def is_outside(path: str) -> bool:
    """True for a normalized path that leaves the project root."""
    return path.startswith("/") or path == ".." or path.startswith("../")


def is_glob(pattern: str) -> bool:
    return _MAGIC.search(pattern) is not None


def escape(path: str) -> str:
    """A glob matching exactly `path`, whatever `*`, `?` or `[` its names hold (`[[]`)."""
    return _MAGIC.sub(r"[\g<0>]", path)


@lru_cache(maxsize=4096)
def fixed_prefix(pattern: str) -> str:
    """The leading directories of `pattern` that hold no wildcard ("" for the root). Asked
    again for every item a foreach glob matches."""
    fixed: list[str] = []
    for segment in pattern.split("/")[:-1]:
        if is_glob(segment):
            break
        fixed.append(segment)
    return "/".join(fixed)


def _segment_regex(segment: str, hidden: bool = True) -> str:
    """`hidden`: a leading wildcard matches no leading dot (`*` skips `.env`), as in a shell."""
    out = [] if not hidden or segment.startswith(".") or not is_glob(segment[:1]) \
        else [r"(?!\.)"]
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = segment[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                bracket = "[" + body.replace("\\", "\\\\").replace("[", "\\[") + "]"
                if _valid(bracket):
                    out.append(bracket)
                    i = end
                else:  # an empty or reversed range: the '[' is a literal character
                    out.append(re.escape(char))
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _valid(regex: str) -> bool:
    try:
        re.compile(regex)
    except re.error:
        return False
    return True


@lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    segments = pattern.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(r"(?:(?!\.)[^/]+)(?:/(?!\.)[^/]+)*" if last else r"(?:(?!\.)[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(parts) + r"\Z")


Value = TypeVar("Value")


def exclude(paths: dict[str, Value], exclusion: str) -> None:
    """Take out of `paths` those the `exclusion` (a `!pattern`, the `!` taken off) matches:
    a path written as it is by a lookup, a glob by a pass over them all (a generated list of
    thousands of files to leave out took a pass over every match for each)."""
    if not is_glob(exclusion):
        paths.pop(exclusion, None)
        return
    regex = compile_glob(exclusion)
    for path in [path for path in paths if regex.match(path)]:
        del paths[path]


class _Walked(NamedTuple):
    """A directory a `**` walk is in: where it really is, and the one it was reached from."""

    real: str
    parent: _Walked | None

    def below(self, real: str) -> bool:
        """Whether the directory at `real` holds this one or one it was reached from: a
        link there leads back up, into what the walk is in."""
        inside = real.rstrip("/") + "/"
        node: _Walked | None = self
        while node is not None:
            if node.real == real or node.real.startswith(inside):
                return True
            node = node.parent
        return False


class DiskIndex:
    """Lists directories once per load, so many globs over one tree cost one walk."""

    def __init__(self, fs: FileSystem, skip: Iterable[str] = (),
                 hidden: frozenset[str] = frozenset()) -> None:
        """`fs`: the disk, rooted at the project root. `hidden`: files to leave out, as if
        deleted."""
        self.fs = fs
        self.skip = {s.rstrip("/") for s in skip}
        self.hidden = hidden
        self._trees: dict[str, tuple[list[str], list[str]]] = {}
        self._sorted: dict[str, list[str]] = {}  # prefix -> the files under it, sorted
        self.dirs_read: set[str] = set()
        self.globs: set[str] = set()  # every pattern matched against the listings

    def files_under(self, prefix: str) -> list[str]:
        """Every file below `prefix` (root-relative), skipping hidden and skipped directories."""
        return self._tree(prefix)[1]

    def _tree(self, prefix: str) -> tuple[list[str], list[str]]:
        """The directories from `prefix` down (itself first) and the files in them, skipping
        hidden and skipped directories: what a `**` there reaches."""
        cached = self._trees.get(prefix)
        if cached is not None:
            return cached
        dirs: list[str] = []
        found: list[str] = []
        # Each directory with where it really is and the directories above it, so that a
        # symlink back up (a loop) is not followed, while a directory reached both as itself
        # and through a link beside it is walked under both names, as `glob` and bash's
        # globstar list it (which of the two a walk kept depended on the order of the
        # entries). Resolved at a symlink only, else its parent's real path and its name (a
        # realpath of each made the walk of a tree 1,000 deep quadratic).
        stack: list[tuple[str, _Walked]] = [(prefix, _Walked(self.fs.real_path(prefix), None))]
        while stack:
            rel, here = stack.pop()
            dirs.append(rel)
            for name, path, is_dir in self._listing(rel):
                if not is_dir:
                    if path not in self.hidden:
                        found.append(path)
                elif not name.startswith(".") and path not in self.skip:
                    if self.fs.link_target(path) is None:
                        stack.append((path, _Walked(f"{here.real}/{name}", here)))
                    elif here.below(real := self.fs.real_path(path)):
                        self.dirs_read.add(path)  # a loop: listed, not walked again
                    else:
                        stack.append((path, _Walked(real, here)))
        self._trees[prefix] = dirs, found
        return dirs, found

    def files_for(self, pattern: str, start: str = "") -> list[str]:
        """The files `pattern` may match: every file below its fixed prefix outside hidden
        directories (`files_under`) that starts with `start` (`literal_start`), unless one of
        its directory segments has a leading dot (`.*/*.txt`, `docs/.?/*`, `src/**/.gen/*`),
        which names hidden directories: then the
        directories its segments match, level by level (a `**` reaching every directory
        below, as it matches them; a last `**` every file below them), so a glob reaching
        into `.config` never walks `.git`."""
        self.globs.add(pattern)
        prefix = fixed_prefix(pattern)
        segments = pattern.split("/")[len(prefix.split("/")) if prefix else 0:]
        last = segments.pop()  # what names the files themselves
        if not any(segment.startswith(".") for segment in segments):
            if len(start) <= len(prefix) + 1:  # no narrower than the directory: all of it
                return self.files_under(prefix)
            sorted_files = self._sorted.get(prefix)
            if sorted_files is None:
                sorted_files = self._sorted[prefix] = sorted(self.files_under(prefix))
            return _starting_with(sorted_files, start)
        walk = [*segments, "**"] if last == "**" else segments
        dirs = [prefix]
        for index, segment in enumerate(walk):
            if segment == "**":
                if index == len(walk) - 1:
                    return [path for rel in dirs for path in self.files_under(rel)]
                dirs = [below for rel in dirs for below in self._tree(rel)[0]]
                continue
            name_matches = re.compile(_segment_regex(segment) + r"\Z").match
            dirs = [path for rel in dirs for name, path, is_dir in self._listing(rel)
                    if is_dir and name_matches(name) and path not in self.skip]
        return [path for rel in dirs for _, path, is_dir in self._listing(rel)
                if not is_dir and path not in self.hidden]

    def _listing(self, rel: str) -> list[tuple[str, str, bool]]:
        """The entries of directory `rel`: name, root-relative path, whether a directory."""
        self.dirs_read.add(rel)
        try:
            entries = self.fs.list_dir(rel)
        except OSError:
            return []
        return [(name, f"{rel}/{name}" if rel else name, is_dir) for name, is_dir in entries]


def match(pattern: str, disk: DiskIndex, declared: PathIndex | SortedPaths,
          exclude: Collection[str] = ()) -> list[str]:
    """Sorted paths matching `pattern`, from disk and from `declared` outputs, less `exclude`
    (a task's own outputs, so `build/**` does not make a task depend on itself). Only paths
    that start as the pattern does are tried: a foreach whose N instances each read a glob
    (`out/{stem}.o*`) tried N globs against N paths."""
    matches = matcher(pattern)
    start = literal_start(pattern)
    candidates = set(disk.files_for(pattern, start))
    candidates.update(declared.starting_with(start))
    return sorted(p for p in candidates if matches(p) and p not in exclude)


def matcher(pattern: str) -> Callable[[str], object]:
    """`compile_glob(pattern).match`, with the leading directories that hold no wildcard
    compared as text: the regex of the rest is shared by the globs that end alike (`m1/*.c`,
    `m2/*.c`), where compiling one for each whole glob took a third of the load of a project
    of 4,000 tasks each globbing a directory of its own."""
    prefix = fixed_prefix(pattern)
    if not prefix:
        return compile_glob(pattern).match
    head, rest = prefix + "/", compile_glob(pattern[len(prefix) + 1:])
    return lambda path: path.startswith(head) and rest.match(path, len(head))


def literal_start(pattern: str) -> str:
    """What every path `pattern` matches starts with: the pattern up to its first wildcard."""
    wildcard = _MAGIC.search(pattern)
    return pattern if wildcard is None else pattern[:wildcard.start()]


def _starting_with(paths: list[str], start: str) -> list[str]:
    """The paths of sorted `paths` that start with `start`."""
    return paths[bisect_left(paths, start):bisect_left(paths, start + _AFTER_ALL)]


_AFTER_ALL = chr(0x10FFFF)  # sorts after every character a path may hold


class PathIndex:
    """Paths kept sorted, so that those a glob may match are found by how they start. The
    paths may grow (a resolver declares outputs as it goes; none is ever taken back): the
    sorted copy is made again when their number has changed."""

    def __init__(self, paths: Collection[str]) -> None:
        self.paths = paths
        self._sorted: list[str] = []
        self._count = 0

    def starting_with(self, start: str) -> list[str]:
        if self._count != len(self.paths):
            self._sorted, self._count = sorted(self.paths), len(self.paths)
        return _starting_with(self._sorted, start)


class GlobsByDirectory(Generic[Value]):
    """Globs, each with a value, found by the directory their fixed start is in, so that a
    path is tried only against the globs that may match it: those of its own directories."""

    def __init__(self, globs: Iterable[tuple[str, Value]] = ()) -> None:
        self._by_dir: dict[str, list[tuple[Callable[[str], object], Value]]] = {}
        for pattern, value in globs:
            directory = literal_start(pattern).rpartition("/")[0]
            self._by_dir.setdefault(directory, []).append((matcher(pattern), value))

    def matching(self, path: str) -> Iterator[Value]:
        """The values of the globs that match `path`."""
        directory = path
        while directory:
            directory = directory.rpartition("/")[0]
            for matches, value in self._by_dir.get(directory, ()):
                if matches(path):
                    yield value


class SortedPaths:
    """Paths kept sorted as they come and go, for the same lookups as `PathIndex`: a set that
    shrinks too, where sorting it again at each change would cost a copy of all of it."""

    def __init__(self, paths: Iterable[str]) -> None:
        self._sorted = sorted(set(paths))

    def add(self, path: str) -> None:
        insort(self._sorted, path)

    def discard(self, path: str) -> None:
        at = bisect_left(self._sorted, path)
        if at < len(self._sorted) and self._sorted[at] == path:
            del self._sorted[at]

    def starting_with(self, start: str) -> list[str]:
        return _starting_with(self._sorted, start)


def may_overlap(first: str, second: str) -> bool:
    """Whether some path could match both globs: decides at load which globs can match files a
    build writes that no Flowfile names (those under a directory output, `site/**`, or made by
    a foreach over them). Exact for `**` and literal segments, but for the hidden-file rule,
    which it leaves out; two wildcard segments overlap unless their fixed starts or ends
    differ. So it may say yes where no path fits both, never no where one does."""
    a, b = first.split("/"), second.split("/")

    @lru_cache(maxsize=None)
    def fits(i: int, j: int) -> bool:
        """Whether a[i:] and b[j:] can match the same segments. A `**` matches none (unless
        it is last: `compile_glob` makes a last `**` match one or more), or the other's next
        segment and then ends or goes on."""
        if i == len(a) or j == len(b):
            return i == len(a) and j == len(b)
        if a[i] == "**" and ((i + 1 < len(a) and fits(i + 1, j)) or fits(i, j + 1)
                             or fits(i + 1, j + 1)):
            return True
        if b[j] == "**" and ((j + 1 < len(b) and fits(i, j + 1)) or fits(i + 1, j)
                             or fits(i + 1, j + 1)):
            return True
        return "**" not in (a[i], b[j]) and _segments_overlap(a[i], b[j]) \
            and fits(i + 1, j + 1)

    return fits(0, 0)


def _segments_overlap(x: str, y: str) -> bool:
    if not is_glob(x) or not is_glob(y):
        literal, pattern = (x, y) if not is_glob(x) else (y, x)
        # The hidden-file rule left out, as between two globs: a foreach's output globs
        # (`foreach.output_globs`) put a wildcard where a placeholder's value may start with
        # a dot (the item `gen/.env` of `gen/.*`, written as `out/{name}`).
        return re.fullmatch(_segment_regex(pattern, hidden=False), literal) is not None
    (start_x, end_x), (start_y, end_y) = _fixed_ends(x), _fixed_ends(y)
    return (start_x.startswith(start_y) or start_y.startswith(start_x)) and \
        (end_x.endswith(end_y) or end_y.endswith(end_x))


def _fixed_ends(segment: str) -> tuple[str, str]:
    """The literal text before the first wildcard of a segment and after the last."""
    first = min(i for i in (segment.find(c) for c in "*?[") if i >= 0)
    last = max(segment.rfind(c) for c in "*?]")
    return segment[:first], segment[last + 1:]
