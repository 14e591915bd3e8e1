"""Makefile-syntax dependency files as gcc -MMD/-MP and clang write them."""

from __future__ import annotations

import posixpath

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable


def _words(text: str) -> list[str]:
    """Split on unescaped white space; `\\ ` is a space in a name, `$$` a dollar; an
    unescaped `#` starts a comment, and a `|` the order-only prerequisites, which, as in Make,
    are no inputs."""
    words: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in " #":
            current.append(text[i + 1])
            i += 2
            continue
        if char == "$" and text[i + 1:i + 2] == "$":
            current.append("$")
            i += 2
            continue
        if char == "#" or (char == "|" and not current and text[i + 1:i + 2] in ("", " ", "\t")):
            break
        if char in " \t\n":
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
        i += 1
    if current:
        words.append("".join(current))
    return words


def _rule_colon(line: str) -> int:
    """Where the targets end: the first colon before white space, else the first colon (a
    glued `a.o:a.c`); -1 for a line that is no rule."""
    colon = line.find(":")
    while colon >= 0 and line[colon + 1:colon + 2] not in ("", " ", "\t"):
        colon = line.find(":", colon + 1)
    return colon if colon >= 0 else line.find(":")


def parse(text: str) -> list[str]:
    """Every prerequisite named in the file, in order, each once."""
    joined = text.replace("\\\r\n", " ").replace("\\\n", " ")
    found: dict[str, None] = {}
    for line in joined.splitlines():
        colon = _rule_colon(line)
        if colon < 0 or line.lstrip().startswith("#"):
            continue
        for word in _words(line[colon + 1:]):
            found.setdefault(word, None)
    return list(found)


class RootNames:
    """A depfile's paths named as the project names its files: relative to the root when
    inside it, however it is spelled there. Compilers given `-I$PWD/inc` (and CMake's) write
    absolute paths, a shell entered through a symlink to the project keeps that link in
    `$PWD`, and `-Iincl` names a header through a symlinked directory (`incl -> inc`); a
    generated header named so must still be the file its task writes, for its reader to wait
    for it. A `..` climbs from where a symlink before it leads, as the kernel's lookup does
    (`l/../inc/a.h` with `l -> lib/real` is `lib/inc/a.h`). A path outside the root stays as
    written, normalized."""

    def __init__(self, root: str, real_path: Callable[[str], str]) -> None:
        self._real_path = real_path  # of a path relative to the root, or absolute
        self._real_root = real_path(root)
        self._real_prefix = self._real_root.rstrip("/") + "/"
        self._prefixes = tuple(dict.fromkeys((root.rstrip("/") + "/", self._real_prefix)))
        self._dirs: dict[str, str | None] = {}  # directory -> its path in the root, or None

    def name(self, path: str) -> str:
        """`path`, absolute or relative to the root, as the project names that file."""
        parent, _, name = path.rpartition("/")
        if name not in ("", ".", ".."):
            inside = self._in_root(parent or ("/" if path.startswith("/") else "."))
            if inside is not None:
                return f"{inside}/{name}" if inside else name
        path = posixpath.normpath(path)
        for prefix in self._prefixes:  # in the root, through a link that leads out of it
            if path.startswith(prefix):
                return path[len(prefix):]
        return path

    def through_links(self, raw: str, cwd: str, named: str) -> list[str]:
        """`raw`, a depfile's path (relative to `cwd`, or absolute), as written, when a
        symlinked directory on its way gives it another name in the root than `named`, where
        it really is (`incl/h.txt` with `incl -> inc`): a link retargeted since changes what
        the command reads there, which only that name shows. None when the same, outside the
        root, or climbing a `..` (which the kernel climbs from where a link leads)."""
        if ".." in raw.split("/"):
            return []
        if not raw.startswith("/"):
            written = posixpath.normpath(posixpath.join(cwd, raw))
            return [] if written == named or written.startswith("../") else [written]
        for prefix in self._prefixes:
            if raw.startswith(prefix):
                written = posixpath.normpath(raw[len(prefix):])
                return [] if written == named else [written]
        return []

    def _in_root(self, directory: str) -> str | None:
        """Where `directory` really is in the root ("" for the root); None outside it. One
        realpath per directory met: a build's depfiles name files in a few dozen."""
        if directory not in self._dirs:
            real = self._real_path(directory)
            self._dirs[directory] = "" if real == self._real_root else \
                real[len(self._real_prefix):] if real.startswith(self._real_prefix) else None
        return self._dirs[directory]
