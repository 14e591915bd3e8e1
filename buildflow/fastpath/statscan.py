"""Which of many paths changed, by stat alone: the fast path's one big cost, shared by two
processes on a large project.

A no-op of 10,000 tasks stats 20,000 paths, which in one process is most of its time. Past
PARALLEL_MIN_PATHS the paths are cut into chunks that this process and a forked child take
in turn from a pipe of one-byte tokens, as Make's jobserver hands out jobs: whichever process
is free takes the next chunk, so neither waits on the other when one starts late or is slowed.

A chunk whose stats all match is found so by comparing bytes (`statrows`); only a chunk
that differs has its stored rows decoded, to tell which.

The first stat that differs from its row is reported at once (`on_change`), in this process,
even when the child found it: the caller can then get ready to build (import the engine) on
this CPU while the child goes on statting on the other, and come back for chunks once ready,
instead of doing that after every path is statted, with the second CPU idle.
"""

from __future__ import annotations

import marshal
import operator
import os

from buildflow.fastpath.statrows import ABSENT, MAX_CHUNKS, Row, RowTable, packed

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

PARALLEL_MIN_PATHS = 4000  # below this, forking a second statter costs more than it saves
_CHANGED, _DONE = b"!", b"."  # what the child says before its answer
_exiting: list[int] = []  # statting children that answered, reaped by `reap`


def doubtful_rows(root: str, paths: list[str], rows: RowTable, unsettled: list[int],
                  on_change: Callable[[], object] | None = None) -> dict[int, Row]:
    """The current (size, mtime_ns, inode) of each path whose stat is not its row's any more,
    and of the `unsettled` ones; ABSENT for a path that is not there. Following links, as the
    hasher does. When a second process stats alongside this one, `on_change` is called once,
    here, as soon as this process learns that a stat differs; with one process there is
    nothing to overlap it with, and it is not called. Raises DamagedRows when a chunk of
    rows needed cannot be decoded."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        scan = _Scan(fd, paths, rows, unsettled)
        if len(paths) < PARALLEL_MIN_PATHS or len(os.sched_getaffinity(0)) < 2:
            return scan.rest([])
        return _doubtful_in_two(scan, on_change)
    finally:
        os.close(fd)


def reap() -> None:
    """Wait for the children that answered. They are not waited for when they answer: tearing
    down a child's copy of this process takes about a millisecond, which the build need not
    spend first."""
    while _exiting:
        try:
            os.waitpid(_exiting.pop(), 0)
        except ChildProcessError:
            pass


def _stat_rows(root_fd: int, paths: list[str]) -> list[Row]:
    row_of, stat = operator.attrgetter("st_size", "st_mtime_ns", "st_ino"), os.stat
    try:  # a comprehension: faster than mapping a functools.partial, which also costs its import
        return [row_of(stat(path, dir_fd=root_fd)) for path in paths]
    except OSError:
        pass
    rows: list[Row] = []
    for path in paths:  # some path is missing: the slow way, one at a time
        try:
            rows.append(row_of(stat(path, dir_fd=root_fd)))
        except OSError:
            rows.append(ABSENT)
    return rows


class _Scan:
    """The paths and their rows, statted a chunk at a time (`statrows`)."""

    def __init__(self, root_fd: int, paths: list[str], rows: RowTable,
                 unsettled: list[int]) -> None:
        self.root_fd, self.paths, self.rows = root_fd, paths, rows
        self.unsettled: dict[int, list[int]] = {}  # chunk -> its unsettled rows
        for i in unsettled:
            self.unsettled.setdefault(i // rows.size, []).append(i)

    def doubtful_in(self, chunk: int) -> tuple[dict[int, Row], bool]:
        """`doubtful_rows` of one chunk, and whether any stat there differs from its row (an
        unsettled row alone does not)."""
        start, stop = self.rows.bounds(chunk)
        current = _stat_rows(self.root_fd, self.paths[start:stop])
        doubtful = {}
        differs = packed(current) != self.rows.blob(chunk)
        if differs:
            doubtful = {start + i: row for i, (row, old) in
                        enumerate(zip(current, self.rows.chunk(chunk))) if row != old}
        for i in self.unsettled.get(chunk, ()):
            doubtful[i] = current[i - start]
        return doubtful, differs

    def rest(self, taken: list[int]) -> dict[int, Row]:
        """The doubtful rows of every chunk not in `taken`, statted here."""
        doubtful: dict[int, Row] = {}
        for chunk in sorted(set(range(self.rows.chunks)) - set(taken)):
            doubtful.update(self.doubtful_in(chunk)[0])
        return doubtful


class _Tokens:
    """A pipe holding one token per chunk: a read of one byte takes the next chunk,
    atomically, from whichever process reads."""

    def __init__(self, chunks: int) -> None:
        self.fd, filled = os.pipe()
        try:
            os.write(filled, bytes(range(chunks)))  # at most MAX_CHUNKS: far below a pipe's size
        finally:
            os.close(filled)  # then a read past the last token returns b"": all taken

    def take(self, scan: _Scan, tell: _Once, changed_elsewhere: Callable[[], bool] | None = None
             ) -> tuple[dict[int, Row], list[int]]:
        """Stat chunks until none is left: the doubtful rows, and the chunks taken. Calls
        `tell` at the first stat that differs here or `changed_elsewhere`."""
        doubtful: dict[int, Row] = {}
        taken = []
        while token := os.read(self.fd, 1):
            if tell.pending and changed_elsewhere is not None and changed_elsewhere():
                tell()
            found, differs = scan.doubtful_in(token[0])
            doubtful.update(found)
            taken.append(token[0])
            if differs:
                tell()
        return doubtful, taken

    def close(self) -> None:
        os.close(self.fd)


class _Once:
    """A callback called at most once."""

    def __init__(self, function: Callable[[], object] | None) -> None:
        self.function = function

    @property
    def pending(self) -> bool:
        return self.function is not None

    def __call__(self) -> None:
        function, self.function = self.function, None
        if function is not None:
            function()


def _doubtful_in_two(scan: _Scan, on_change: Callable[[], object] | None) -> dict[int, Row]:
    """The chunks shared with a forked child, which says _CHANGED through a pipe at its first
    stat that differs, then _DONE and its answer. Safe here: the fast path runs before bflow
    starts any thread. Falls back to one process when the child cannot be made or does not
    answer."""
    assert scan.rows.chunks <= MAX_CHUNKS
    try:
        tokens = _Tokens(scan.rows.chunks)
    except OSError:
        return scan.rest([])
    try:
        try:
            answer, answer_in = os.pipe()
        except OSError:
            return scan.rest([])
        try:
            pid = os.fork()
        except OSError:
            os.close(answer)
            os.close(answer_in)
            return scan.rest([])
        if pid == 0:  # the child: never returns
            _child(scan, tokens, answer, answer_in)
        _exiting.append(pid)
        os.close(answer_in)
        tell = _Once(on_change)
        with open(answer, "rb") as pipe:
            child = _ChildAnswer(pipe)
            doubtful, taken = tokens.take(scan, tell, child.found_change)
            theirs = child.read()
        if child.changed:  # found in the child's last chunks, once none was left to take here
            tell()
        if theirs is None:
            return {**doubtful, **scan.rest(taken)}
        doubtful.update(theirs)
        return doubtful
    finally:
        tokens.close()


def _child(scan: _Scan, tokens: _Tokens, answer: int, answer_in: int) -> None:
    """The forked child's whole life: take chunks, say when a stat differs, answer, exit."""
    status = 1
    try:
        os.close(answer)
        with open(answer_in, "wb") as pipe:

            def say_changed() -> None:
                pipe.write(_CHANGED)
                pipe.flush()

            doubtful, _ = tokens.take(scan, _Once(say_changed))
            pipe.write(_DONE + marshal.dumps(doubtful))
        status = 0
    finally:
        os._exit(status)


class _ChildAnswer:
    """What the child says, read without waiting while it is still statting."""

    def __init__(self, pipe: BinaryIO) -> None:
        self.pipe = pipe
        self.fd = pipe.fileno()
        self.said = b""  # what was read while polling: _CHANGED, _DONE or nothing yet
        self.changed = False  # the child said _CHANGED
        os.set_blocking(self.fd, False)

    def found_change(self) -> bool:
        """Whether the child has said so yet; asked between chunks."""
        if not self.said:
            try:
                self.said = os.read(self.fd, 1)
            except BlockingIOError:
                return False
        self.changed = self.said == _CHANGED
        return self.changed

    def read(self) -> dict[int, Row] | None:
        """The child's answer, once it is done; None when it failed and said nothing whole."""
        os.set_blocking(self.fd, True)
        data = self.said + self.pipe.read()
        if data.startswith(_CHANGED):
            self.changed = True
            data = data[1:]
        if not data.startswith(_DONE):
            return None
        try:
            theirs = marshal.loads(data[1:])
        except (EOFError, ValueError, TypeError):
            return None
        return theirs if type(theirs) is dict else None
