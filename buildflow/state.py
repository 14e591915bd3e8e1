"""Run records: an append-only log that a kill at any moment leaves loadable.

Layout of `<cache_dir>/state`: a header line naming the format version, then records, each
`<length:u32><crc32:u32><marshal payload>`. Payloads:

- `("G", token)`          the generation, first after the header: made anew whenever the file
                          is written from scratch, so a proof can tell a rewritten log apart;
- `("S", tasks, stats)`   a snapshot's first part, written by compaction: it replaces all;
- `("P", tasks, stats[, left])`  a further part of the snapshot just before it;
- `("T", name, record, stats)`  a task succeeded (with the stat entries it hashed);
- `("F", name, left, stats)`  a task failed: its record goes, and `left` holds what the
                          failed run left that bflow knows is the task's (`Left`);
- `("R", name, outputs, depfile, started_ns)`  a task without a success record starts: what
                          it may write. One that a kill cut short has no "T" or "F" after it,
                          and what it wrote since `started_ns` is taken as a failed run's
                          `Left` (`settle_started`), so a prune still knows those files;
- `("X", names)`          forget these tasks (vanished, cleaned);
- `("H", stats)`          stat entries refreshed without running anything.

Last record wins. A torn or corrupt tail is dropped with a warning; a different version starts
over. The file is rewritten as one snapshot (through a temp file and a rename) when the records
after the last snapshot grow long: one snapshot loads several times faster than as many
records appended one by one, so a full build's log is compacted when it closes. The snapshot
is written in parts of at most SNAPSHOT_PART entries, each marshalled as it is written, so
that compacting a large state costs memory for one part, not for a copy of all of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, NamedTuple

from buildflow.errors import BuildError
from buildflow.frames import HEADER, decode_at, encode, generation_frame, size_at
from buildflow.fs import AppendFile, FileSystem, LocalFileSystem, written_since
from buildflow.gcpause import paused
from buildflow.hashing import StatEntry, StatRow

if TYPE_CHECKING:
    from typing import Any

# Compact when the records after the snapshot weigh more than this (a record weighs one, plus
# one per stat entry it carries: what it costs a load), and more than one for every
# COMPACT_TAIL_RATIO live tasks (so a build that runs a few tasks rarely rewrites a big log).
COMPACT_MIN_RECORDS = 64
COMPACT_TAIL_RATIO = 8
SNAPSHOT_PART = 2048  # records, or stat entries, in one part of a snapshot
# The map of every record that has none of some kind of file (depfile inputs, mostly): one
# object, never changed, rather than one each.
NO_FILES: dict[str, str] = {}


class TaskRecord(NamedTuple):
    """What a successful run leaves behind; compared by staleness on the next build."""

    action: tuple[Any, ...]
    inputs: dict[str, str]
    depfile_inputs: dict[str, str]
    outputs: dict[str, str]
    duration: float


class Left(NamedTuple):
    """What a failed run of a task left that bflow knows is the task's: the outputs it wrote
    (or left as bflow last recorded them), with their hashes, and its depfile path ("" for
    none). Pruning removes them if the task vanishes before it succeeds again. `named` is
    what its last depfile named, known from its last success: the next build still orders
    it after the writers of those files, as Ninja's deps log keeps a failed edge's deps."""

    outputs: dict[str, str]
    depfile: str
    named: tuple[str, ...] = ()


NOTHING_LEFT = Left({}, "")


def _left_of(raw: Any) -> Left:
    """A `Left` as the log holds it (a plain tuple, a pair before `named`); a malformed one
    raises."""
    outputs, depfile, *named = raw
    if len(named) > 1:
        raise ValueError("left")
    return Left(dict(outputs), str(depfile), tuple(map(str, named[0])) if named else ())


class State:
    def __init__(self, path: str | os.PathLike[str],
                 warn: Callable[[str], None] = lambda _: None,
                 fs: FileSystem | None = None) -> None:
        self.path = os.fspath(path)
        self.warn = warn
        self.fs: FileSystem = fs or LocalFileSystem("")  # paths as given
        self.tasks: dict[str, TaskRecord] = {}
        self.stats: dict[str, StatRow] = {}
        self.left: dict[str, Left] = {}  # by task without a success record, if its run failed
        # by task without a success record whose run started, until it ends ("R" records)
        self.started: dict[str, tuple[tuple[str, ...], str, int]] = {}
        self._tail = 0  # weight of the records after the snapshot (all, when there is none)
        self._good_size = 0
        self._handle: AppendFile | None = None
        self._partial = False
        self.generation: str | None = None  # None: a new log, or one an older bflow wrote

    @property
    def good_size(self) -> int:
        """Where the good records end: the file's size, unless a torn tail follows them."""
        return self._good_size

    def resume(self, tasks: dict[str, TaskRecord], stats: dict[str, StatRow],
               size: int) -> State:
        """A state holding only these records, for a build of only those tasks: it appends to
        the log (known to be `size` bytes) as usual, and never compacts, since a snapshot of
        it would lose every other record."""
        self.tasks, self.stats, self._good_size, self._partial = tasks, stats, size, True
        return self

    def load(self) -> State:
        try:
            data = self.fs.read(self.path)
        except FileNotFoundError:
            return self
        except OSError as exc:
            raise BuildError(f"{self.path}: cannot read the build state: {exc.strerror}; "
                             f"delete it to start over") from None
        if not data.startswith(HEADER):
            if not HEADER.startswith(data):  # a header torn by a kill is just an empty log
                self.warn(f"{self.path}: not a state of this bflow version (another "
                          f"version's, or damaged at its start); starting over (everything "
                          f"will rebuild once)")
            return self
        with paused():
            frames, end = self._frames(memoryview(data))
            del data  # before the records are built: a lower peak of memory
            self._good_size = self._replay(frames, end)
        return self

    def _frames(self, data: memoryview) -> tuple[list[tuple[int, Any]], int]:
        """Every good record with its offset, and the offset where the good records end."""
        frames = []
        offset = len(HEADER)
        while offset < len(data):
            payload = decode_at(data, offset)
            if payload is None:
                self.warn(f"{self.path}: dropped a torn or corrupt record at byte {offset} "
                          f"(from an interrupted run); the tasks it named will rebuild")
                break
            frames.append((offset, payload))
            offset += size_at(data, offset)
        data.release()
        return frames, offset

    def _replay(self, frames: list[tuple[int, Any]], end: int) -> int:
        """Apply the records in order; the offset where the good ones end."""
        for index, (offset, payload) in enumerate(frames):
            try:
                self._apply(payload)
            except (TypeError, ValueError, IndexError, KeyError):
                self.warn(f"{self.path}: dropped a malformed record at byte {offset}")
                return offset
            frames[index] = (offset, None)  # each record's raw data is freed once applied
        return end

    def _apply(self, payload: Any) -> None:
        """Apply one record; a malformed one raises before changing anything."""
        kind = payload[0]
        if kind in ("S", "P"):
            tasks = dict(zip(payload[1], map(TaskRecord._make, payload[1].values())))
            stats = payload[2]
            if not all(type(row) is tuple and len(row) == 5 for row in stats.values()):
                raise ValueError("stat entry")
            left = {name: _left_of(raw) for name, raw in
                    (payload[3] if len(payload) > 3 else {}).items()}
            if kind == "S":
                self.tasks, self.stats = tasks, stats  # StatRows, as the Hasher reads them
                self.left = left
                self.started = {}
                self._tail = 0
            else:
                self.tasks.update(tasks)
                self.stats.update(stats)
                self.left.update(left)
            return
        if kind == "G":
            self.generation = str(payload[1])
            return
        if kind == "T":
            record, stats = TaskRecord(*payload[2]), self._stat_entries(payload[3])
            self.tasks[payload[1]] = record
            self.left.pop(payload[1], None)
            self.started.pop(payload[1], None)
            self.stats.update(stats)
        elif kind == "F":
            self._failed(payload[1], _left_of(payload[2]))
            self.started.pop(payload[1], None)
            self.stats.update(self._stat_entries(payload[3]))
        elif kind == "R":
            _, name, outputs, depfile, started_ns = payload
            self.started[str(name)] = (tuple(map(str, outputs)), str(depfile), int(started_ns))
        elif kind == "X":
            for name in list(payload[1]):
                self.tasks.pop(name, None)
                self.left.pop(name, None)
                self.started.pop(name, None)
        elif kind == "H":
            self.stats.update(self._stat_entries(payload[1]))
        else:
            raise ValueError(kind)
        self._tail += _weight(payload)

    @staticmethod
    def _stat_entries(entries: Iterable[tuple[str, tuple[Any, ...]]]) -> dict[str, StatEntry]:
        return {path: StatEntry(*entry) for path, entry in entries}

    # Writing: every call appends one record and flushes it to the OS.
    def _append(self, payload: tuple[Any, ...]) -> None:
        if self._handle is None:
            try:
                self._handle = self.fs.append(self.path, self._good_size)
                if self._good_size == 0:
                    self.generation, frame = generation_frame()
                    self._handle.write(HEADER + frame)
                    self._good_size = self._handle.size
            except OSError as exc:
                self._handle = None
                raise BuildError(f"{self.path}: cannot write the build state: {exc.strerror}; "
                                 f"check that the cache dir is writable") from None
        try:
            self._handle.write(encode(payload))  # all of it, or nothing
        except OSError as exc:
            raise BuildError(f"{self.path}: cannot write the build state: {exc.strerror}") from None
        self._good_size = self._handle.size
        self._tail += _weight(payload)

    def record_success(self, name: str, record: TaskRecord,
                       stats: list[tuple[str, StatEntry]]) -> None:
        self._append(("T", name, tuple(record), [(p, tuple(e)) for p, e in stats]))
        if not record.depfile_inputs:
            record = record._replace(depfile_inputs=NO_FILES)
        self.tasks[name] = record  # only once on disk, so a compaction cannot invent it
        self.left.pop(name, None)
        self.started.pop(name, None)
        self.stats.update(stats)

    def record_start(self, name: str, outputs: tuple[str, ...], depfile: str,
                     started_ns: int) -> None:
        """Task `name` starts (or is restored) and may write `outputs` (those not there
        before it starts, or its success record's) and `depfile` from `started_ns` (the
        disk's clock) on: on disk before it does, so that a kill meanwhile leaves them known
        (`settle_started`)."""
        self._append(("R", name, outputs, depfile, started_ns))
        self.started[name] = (outputs, depfile, started_ns)

    def settle_started(self, fs: FileSystem, hash_of: Callable[[str], str], *,
                       record: bool = False) -> None:
        """Take what each run a kill cut short wrote (on `fs`, the project's disk: the files
        among its outputs with an mtime from its start on, a directory output with such a
        file in it whole, hashed by `hash_of`, and its depfile) as a failed run's `Left`,
        which the prune removes if the task vanishes before it succeeds. Otherwise a file it
        wrote, known to no record, would stay for a glob to read. `record` (a build, which
        holds the lock): write it down as a failure, once, so that a file written there later
        (by hand) is never taken for the killed run's."""
        for name, (outputs, depfile, started_ns) in self.started.items():
            left = self.left.get(name, NOTHING_LEFT)
            written = dict(left.outputs)
            for path in outputs:
                if not written_since(fs, path, started_ns):
                    continue
                try:
                    written[path] = hash_of(path)
                except (OSError, BuildError):
                    continue
            # a re-run cut short: its success record no longer says what is on the disk
            self._failed(name, Left(written, depfile or left.depfile, left.named))
            if record:
                self._append(("F", name, tuple(self.left.get(name, NOTHING_LEFT)), []))
        self.started.clear()

    def record_failure(self, name: str, left: Left,
                       stats: list[tuple[str, StatEntry]]) -> None:
        """Task `name` failed: its success record goes, so the next build runs it, and what
        its run `left` is kept for pruning."""
        if name in self.tasks or left != NOTHING_LEFT or name in self.left or \
                name in self.started:
            self._append(("F", name, tuple(left), [(p, tuple(e)) for p, e in stats]))
            self._failed(name, left)
            self.started.pop(name, None)
        self.stats.update(stats)

    def depfile_named(self, name: str) -> Collection[str]:
        """What task `name`'s last depfile named: by its success record, else by the failed
        runs since (`Left.named`)."""
        record = self.tasks.get(name)
        if record is not None:
            return record.depfile_inputs
        return self.left.get(name, NOTHING_LEFT).named

    def _failed(self, name: str, left: Left) -> None:
        self.tasks.pop(name, None)
        if left != NOTHING_LEFT:
            self.left[name] = left
        else:
            self.left.pop(name, None)

    def forget(self, names: list[str]) -> None:
        present = [name for name in names
                   if name in self.tasks or name in self.left or name in self.started]
        for name in present:
            self.tasks.pop(name, None)
            self.left.pop(name, None)
            self.started.pop(name, None)
        if present:
            self._append(("X", present))

    def record_stats(self, stats: list[tuple[str, StatEntry]]) -> None:
        if stats:
            self.stats.update(stats)
            self._append(("H", [(p, tuple(e)) for p, e in stats]))

    def close(self) -> None:
        """Flush to disk; compact when the records after the snapshot grow long."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._partial or self.started:  # a run not ended: its "R" stays, for the next load
            return
        if self._tail > COMPACT_MIN_RECORDS and self._tail * COMPACT_TAIL_RATIO > len(self.tasks) \
                or self.generation is None and self._good_size > len(HEADER):  # an older log
            self.compact()

    def compact(self) -> None:
        """Rewrite the log as one snapshot. Stat entries of files no record names any more
        (deleted sources, renamed outputs) are dropped here, so the cache does not only grow."""
        named = {path for record in self.tasks.values()
                 for files in (record.inputs, record.depfile_inputs, record.outputs)
                 for path in files}
        for path in [path for path in self.stats if path not in named]:
            del self.stats[path]
        del named
        generation, generation_record = generation_frame()
        size = [len(HEADER) + len(generation_record)]

        def frames() -> Iterator[bytes]:
            yield HEADER + generation_record
            for payload in _snapshot(self.tasks, self.stats, self.left):
                frame = encode(payload)
                size[0] += len(frame)
                yield frame

        try:
            self.fs.replace(self.path, frames())
        except OSError as exc:
            self.warn(f"{self.path}: could not compact the build state: {exc.strerror}")
            return
        self._tail = 0
        self.generation = generation
        self._good_size = size[0]


def _weight(payload: tuple[Any, ...]) -> int:
    kind = payload[0]
    return 1 + (len(payload[3]) if kind in ("T", "F") else len(payload[1]) if kind == "H"
                else 0)


def _snapshot(tasks: dict[str, TaskRecord], stats: dict[str, StatRow],
              left: dict[str, Left]) -> Iterator[tuple[Any, ...]]:
    """The snapshot's parts as plain data (marshal takes no NamedTuple); only the part being
    written is copied. Its strings are not interned to share them across parts: marshal
    marks an interned string, a load interns it again (a hash and a table entry each), and
    those same objects reach the proof, whose load is most of a no-op's work (docs/speed.md
    has the measurement)."""
    kind = "S"
    records = iter(tasks.items())
    while part := list(islice(records, SNAPSHOT_PART)):
        yield kind, {name: (r.action, r.inputs or NO_FILES, r.depfile_inputs or NO_FILES,
                            r.outputs or NO_FILES, r.duration) for name, r in part}, {}
        kind = "P"
    rows = iter(stats.items())
    while part_rows := list(islice(rows, SNAPSHOT_PART)):
        yield kind, {}, {path: (e[0], e[1], e[2], e[3], e[4]) for path, e in part_rows}
        kind = "P"
    if left:
        yield kind, {}, {}, {name: tuple(each) for name, each in left.items()}
    elif kind == "S":  # nothing at all: the snapshot of an empty state
        yield kind, {}, {}
