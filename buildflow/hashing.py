"""Content hashes (xxh3-128) with a stat fast path.

A file whose (size, mtime_ns, inode) match what was seen when it was last hashed is not read
again, unless its mtime was too close to that moment: a later write within the same timestamp
tick would leave the stat unchanged (the "racy" case git handles, see `racy`), so such files
are re-hashed until their mtime is safely in the past.

Within one build each path is stat'ed once: a digest is remembered until `forget_seen`, which
the scheduler calls whenever a command has run (it may have written anything). A leaf's output
is then stat'ed as an output and not again as the next task's input, a depfile input's stat
taken by the decision is the one its task's run is checked against (`seen_stat`), and a stat
the caller has just taken is not taken again (`statted_hash`, `hashed_before`, and `statted`
for the paths the fast path's check has just statted).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

import xxhash

from buildflow.errors import BuildError
from buildflow.fs import FileSystem, Stat
from buildflow.racy import trusted

MISSING = ""
# Recorded for a depfile input that changed while its task ran: never matches, so it reruns.
UNKNOWN = "?"


class StatEntry(NamedTuple):
    size: int
    mtime_ns: int
    inode: int
    digest: str
    hashed_at_ns: int


# A stat entry as the state loads it from a snapshot: the fields of StatEntry in a plain tuple,
# which spares building 20,000 named tuples for a 10,000-task project.
StatRow = tuple[int, int, int, str, int]


class Hasher:
    def __init__(self, fs: FileSystem, cache: dict[str, StatRow],
                 statted: Iterable[str] = ()) -> None:
        """`statted`: paths whose stat was found just now to be the one their entry in `cache`
        holds, as if this hasher had statted them: not statted again until a command runs."""
        self.fs = fs
        self.cache = cache
        self.changed: dict[str, StatEntry] = {}
        # path -> digest, since the last forget_seen
        self._seen: dict[str, str] = {path: cache[path][3] for path in statted}
        # (mtime_ns, path) of files hashed within the racy window of their mtime, in the
        # order hashed, which is nearly the order of their mtimes
        self._racy: deque[tuple[int, str]] = deque()
        # path -> when it was first hashed with the stat and content it has now, for a file
        # hashed again since (a racy one, read again by another task's decision): the entry
        # keeps the later time, which decides whether its stat can be trusted yet, and
        # `hashed_before` this one, which says since when its content has been known
        self._known_since: dict[str, int] = {}

    def file_hash(self, path: str) -> str:
        """The content hash of a file, or of a directory's whole tree; MISSING if absent."""
        digest = self._seen.get(path)
        if digest is None:
            digest = self._seen[path] = self._current_hash(path)
        return digest

    def statted_hash(self, path: str, st: Stat) -> str:
        """`file_hash` of a path the caller has just statted (`st`, not None): the stat is not
        taken again."""
        digest = self._seen.get(path)
        if digest is None:
            digest = self._seen[path] = self._current_hash(path, st=st)
        return digest

    def seen_stat(self, path: str) -> tuple[int, int, int] | None:
        """The size, mtime and inode of the file whose digest `file_hash` gave for `path` since
        the last `forget_seen` (no command has run since); None if it gave none, or found no
        file there."""
        entry = self.cache.get(path) if path in self._seen else None
        return None if entry is None else (entry[0], entry[1], entry[2])

    def written_hash(self, path: str) -> str:
        """`file_hash` of an output just written (by its command, or restored), read whatever
        its stat: a command may leave a file of the same size with the mtime it had (`touch
        -d`, a fixed SOURCE_DATE_EPOCH) and the file system the same inode, and the stat
        entry would then give the digest of what it replaced."""
        digest = self._seen[path] = self._current_hash(path, written=True)
        return digest

    def hashed_before(self, path: str, before_ns: int, st: Stat | None) -> str | None:
        """The hash of `path` taken before `before_ns`, if its stat (`st`, just taken) has not
        changed since; None otherwise. An entry too recent to trust is hashed again on the
        next build, so a change it missed is still found then."""
        known = self.cache.get(path)
        if known is None or self._known_since.get(path, known[4]) >= before_ns:
            return None
        if st is None or (st.size, st.mtime_ns, st.inode) != (known[0], known[1], known[2]):
            return None
        return known[3]

    def forget_seen(self) -> None:
        """Files may have changed since they were hashed (a command ran): stat them again."""
        self._seen.clear()

    def settle_racy(self, *, oldest_only: bool = False) -> None:
        """Hash again the files hashed too soon after they were written (every output of a
        build is one) whose mtime is by now safely in the past: the next build, or a later
        task reading them, trusts their stat instead of reading each of them again. Done while
        the files are in the page cache. `oldest_only`: stop at the first file not settled
        yet, so that it is cheap enough to call after every task and leaves little for the
        end of the build."""
        now_ns = self.fs.now_ns()
        waiting: list[tuple[int, str]] = []
        for _ in range(len(self._racy)):
            mtime_ns, path = self._racy.popleft()
            known = self.cache.get(path)
            if known is not None and known[1] != mtime_ns:
                continue  # hashed again since, with a new mtime: queued again then
            if not trusted(mtime_ns, now_ns):
                waiting.append((mtime_ns, path))
                if oldest_only:
                    break
                continue
            self._seen.pop(path, None)
            self._current_hash(path)
        self._racy.extendleft(reversed(waiting))

    def _current_hash(self, path: str, written: bool = False, st: Stat | None = None) -> str:
        """`st`: the path's stat, just taken by the caller."""
        known = self.cache.get(path)
        # Only an entry that can be trusted is worth a stat first; any other file is read,
        # and opening it gives its stat.
        if known is not None and trusted(known[1], known[4]) and not written:
            if st is None:
                st = self.fs.stat(path)
            if st is None:
                return self._absent(path)
            if st.is_dir:
                return self._tree_hash(path)
            size, mtime_ns, inode, digest, _ = known
            if size == st.size and mtime_ns == st.mtime_ns and inode == st.inode:
                return digest
        hashed_at = self.fs.now_ns()
        try:
            st, digest = self.fs.read_hash(path)
        except (FileNotFoundError, NotADirectoryError):  # absent, or deleted since the stat
            return self._absent(path)
        except IsADirectoryError:
            return self._tree_hash(path, written)
        except OSError as exc:
            raise BuildError(f"{path}: cannot read the file to hash it: {exc.strerror}; make "
                             "it readable (or remove it from the task's inputs or outputs)"
                             ) from None
        if known is not None and digest == known[3]:
            digest = known[3]  # one string for equal digests: the state stores it once
        if known is not None and (st.size, st.mtime_ns, st.inode, digest) == known[:4]:
            self._known_since.setdefault(path, known[4])
        else:
            self._known_since.pop(path, None)
        entry = StatEntry(st.size, st.mtime_ns, st.inode, digest, hashed_at)
        self.cache[path] = entry
        self.changed[path] = entry
        if not trusted(st.mtime_ns, hashed_at):
            self._racy.append((st.mtime_ns, path))
        return digest

    def _absent(self, path: str) -> str:
        """MISSING for a path where nothing is; a symlink that leads nowhere (an installed
        tree's `lib/libx.so -> /usr/lib/libx.so.1`, which `tar` packs as it is) is there,
        and its content is where it leads. Never kept in the stat cache: read each time."""
        self.cache.pop(path, None)  # what was there: its stat says nothing of this path now
        target = self.fs.link_target(path)
        return MISSING if target is None else text_digest(f"symlink\0{target}")

    def _tree_hash(self, path: str, written: bool = False) -> str:
        hasher = xxhash.xxh3_128(b"tree\0")
        file_hash = self.written_hash if written else self.file_hash
        for rel in self.fs.list_tree(path):
            hasher.update(f"{rel}\0{file_hash(f'{path}/{rel}')}\n".encode("utf-8", "surrogateescape"))
        return hasher.hexdigest()

    def take_changes(self) -> list[tuple[str, StatEntry]]:
        """Entries hashed since the last call, for the state log."""
        changes = list(self.changed.items())
        self.changed.clear()
        return changes


def text_digest(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogateescape"))
