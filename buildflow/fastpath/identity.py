"""What a loaded project depends on besides the files its globs read: bflow's own code, the
Flowfile's path and a hash of its bytes, and the command-line overrides; and where its cache
dir is. Used by the project cache and the no-op fast path, so it imports nothing heavy."""

from __future__ import annotations

import os
import sys

import buildflow
from buildflow.scripts import SCRIPTS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_CACHE_DIR = ".bflow"
_CACHE_DIR_SETTING = rb'^[ \t]*cache_dir[ \t]*=[ \t]*"([^"\\\n]*)"'

# (files, directories, dangling links), None: unreadable
Listing = tuple[frozenset[str], frozenset[str], frozenset[str]] | None


def cache_dir_of(flowfile: str, data: bytes) -> str:
    """The cache dir a Flowfile with these bytes sets, found without parsing TOML. A guess
    that misses (an unusual spelling) only means a cache stored there is never found."""
    found = None
    if b"cache_dir" in data:  # else spare importing re (docs/speed.md)
        import re

        found = re.search(_CACHE_DIR_SETTING, data, re.M)
    cache_dir = found.group(1).decode("utf-8", "surrogateescape") if found else DEFAULT_CACHE_DIR
    declared = SCRIPTS.get(flowfile)  # a build script's root may be above it (`Project("..")`)
    return os.path.join(os.path.dirname(flowfile) if declared is None else declared.root,
                        cache_dir)


def project_key(flowfile: str, data: bytes, overrides: Mapping[str, str]) -> tuple[object, ...]:
    """Equal keys load equal projects from equal directory listings. The code stamp means an
    upgrade or an edit of bflow itself never meets an old entry."""
    from xxhash import xxh3_128_digest  # what the contents are hashed with, as every file's

    # The bytes' hash, not the bytes: each proof and cache entry holds the key, and a
    # 100,000-task Flowfile is 12 MB, which writing them copied twice over.
    return (buildflow.__version__, sys.version, _code_stamp(), flowfile, len(data),
            xxh3_128_digest(data), tuple(sorted(overrides.items())))


def _code_stamp() -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime) of each of bflow's own .py files. Walked with scandir, skipping
    the bytecode caches: every no-op pays for this walk."""
    package = os.path.dirname(os.path.abspath(buildflow.__file__))
    stamp = []
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(os.path.join(package, rel)) as entries:
            for entry in entries:
                name = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(name)
                elif entry.name.endswith(".py"):
                    st = entry.stat()
                    stamp.append((name, st.st_size, st.st_mtime_ns))
    return tuple(sorted(stamp))


def listing(root: str, rel: str, skip: frozenset[str]) -> Listing:
    """What the loader's directory walk sees in `rel`: files, directories it may descend (a
    hidden one too, which a glob such as `.*/*.txt` reaches), and links that lead nowhere (a
    file replaced by one is an input the load rejects)."""
    files, dirs, dangling = [], [], []
    try:
        with os.scandir(os.path.join(root, rel) if rel else root) as entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:  # a link to itself (ELOOP), as the loader's walk takes it
                    is_dir = False
                if not is_dir:
                    if entry.is_symlink() and not os.path.exists(entry.path):
                        dangling.append(entry.name)
                    else:
                        files.append(entry.name)
                elif (f"{rel}/{entry.name}" if rel else entry.name) not in skip:
                    dirs.append(entry.name)
    except OSError:  # gone, no directory, unreadable, a path too long: the walk sees none
        return None
    return frozenset(files), frozenset(dirs), frozenset(dangling)
