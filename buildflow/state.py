"""Run records: an append-only log that a kill at any moment leaves loadable.

Layout of `<cache_dir>/state`: a header line naming the format version, then records, each
`<length:u32><crc32:u32><marshal payload>`. Payloads:

- `("S", tasks, stats)`   a snapshot, written by compaction;
- `("T", name, record, stats)`  a task succeeded (with the stat entries it hashed);
- `("X", names)`          forget these tasks (failed, cleaned);
- `("H", stats)`          stat entries refreshed without running anything.

Last record wins. A torn or corrupt tail is dropped with a warning; a different version starts
over. The file is rewritten through a temp file and a rename when dead records pile up.
"""

from __future__ import annotations

import marshal
import os
import struct
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from buildflow.errors import BuildError
from buildflow.hashing import StatEntry

HEADER = b"BFLOWSTATE 1\n"
_FRAME = struct.Struct("<II")
# Compact when the log holds more than this many records and over twice as many as live tasks.
COMPACT_MIN_RECORDS = 64


class TaskRecord(NamedTuple):
    """What a successful run leaves behind; compared by staleness on the next build."""

    action: tuple[Any, ...]
    inputs: dict[str, str]
    depfile_inputs: dict[str, str]
    outputs: dict[str, str]
    duration: float


def _frame(payload: tuple[Any, ...]) -> bytes:
    data = marshal.dumps(payload)
    return _FRAME.pack(len(data), zlib.crc32(data)) + data


class State:
    def __init__(self, path: Path, warn: Callable[[str], None] = lambda _: None) -> None:
        self.path = path
        self.warn = warn
        self.tasks: dict[str, TaskRecord] = {}
        self.stats: dict[str, StatEntry] = {}
        self._records = 0
        self._good_size = 0
        self._handle: Any = None

    def load(self) -> State:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self
        except OSError as exc:
            raise BuildError(f"{self.path}: cannot read the build state: {exc.strerror}; "
                             f"delete it to start over") from None
        if not data.startswith(HEADER):
            if not HEADER.startswith(data):  # a header torn by a kill is just an empty log
                self.warn(f"{self.path}: state from another bflow version; starting over "
                          f"(everything will rebuild once)")
            return self
        offset = len(HEADER)
        while offset < len(data):
            payload = self._read_frame(data, offset)
            if payload is None:
                self.warn(f"{self.path}: dropped a torn or corrupt record at byte {offset} "
                          f"(from an interrupted run); the tasks it named will rebuild")
                break
            try:
                self._apply(payload)
            except (TypeError, ValueError, IndexError, KeyError):
                self.warn(f"{self.path}: dropped a malformed record at byte {offset}")
                break
            offset += _FRAME.size + _FRAME.unpack_from(data, offset)[0]
        self._good_size = offset
        return self

    @staticmethod
    def _read_frame(data: bytes, offset: int) -> Any:
        if offset + _FRAME.size > len(data):
            return None
        length, crc = _FRAME.unpack_from(data, offset)
        body = data[offset + _FRAME.size: offset + _FRAME.size + length]
        if len(body) != length or zlib.crc32(body) != crc:
            return None
        try:
            return marshal.loads(body)
        except (EOFError, ValueError, TypeError):
            return None

    def _apply(self, payload: Any) -> None:
        """Apply one record; a malformed one raises before changing anything."""
        kind = payload[0]
        if kind == "S":
            tasks = {name: TaskRecord(*rec) for name, rec in payload[1].items()}
            self.stats = self._stat_entries(payload[2].items())
            self.tasks = tasks
            self._records = 1
            return
        if kind == "T":
            record, stats = TaskRecord(*payload[2]), self._stat_entries(payload[3])
            self.tasks[payload[1]] = record
            self.stats.update(stats)
        elif kind == "X":
            for name in list(payload[1]):
                self.tasks.pop(name, None)
        elif kind == "H":
            self.stats.update(self._stat_entries(payload[1]))
        else:
            raise ValueError(kind)
        self._records += 1

    @staticmethod
    def _stat_entries(entries: Iterable[tuple[str, tuple[Any, ...]]]) -> dict[str, StatEntry]:
        return {path: StatEntry(*entry) for path, entry in entries}

    # Writing: every call appends one record and flushes it to the OS.
    def _append(self, payload: tuple[Any, ...]) -> None:
        if self._handle is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "r+b" if self.path.exists() else "w+b", buffering=0)
                self._handle.truncate(self._good_size)
                self._handle.seek(0, os.SEEK_END)
                if self._good_size == 0:
                    self._handle.write(HEADER)
                    self._good_size = len(HEADER)
            except OSError as exc:
                self._handle = None
                raise BuildError(f"{self.path}: cannot write the build state: {exc.strerror}; "
                                 f"check that the cache dir is writable") from None
        frame = _frame(payload)
        try:
            if self._handle.write(frame) != len(frame):
                raise OSError(28, "short write (disk full?)")
        except OSError as exc:
            self._handle.truncate(self._good_size)  # later records must not follow a torn one
            raise BuildError(f"{self.path}: cannot write the build state: {exc.strerror}") from None
        self._good_size += len(frame)
        self._records += 1

    def record_success(self, name: str, record: TaskRecord,
                       stats: list[tuple[str, StatEntry]]) -> None:
        self._append(("T", name, tuple(record), [(p, tuple(e)) for p, e in stats]))
        self.tasks[name] = record  # only once on disk, so a compaction cannot invent it
        self.stats.update(stats)

    def forget(self, names: list[str]) -> None:
        present = [name for name in names if name in self.tasks]
        for name in present:
            del self.tasks[name]
        if present:
            self._append(("X", present))

    def record_stats(self, stats: list[tuple[str, StatEntry]]) -> None:
        if stats:
            self.stats.update(stats)
            self._append(("H", [(p, tuple(e)) for p, e in stats]))

    def close(self) -> None:
        """Flush to disk; compact when dead records outnumber live ones."""
        if self._handle is not None:
            try:
                os.fsync(self._handle.fileno())
            except OSError:
                pass
            self._handle.close()
            self._handle = None
        if self._records > COMPACT_MIN_RECORDS and self._records > 2 * len(self.tasks):
            self.compact()

    def compact(self) -> None:
        snapshot = ("S", {n: tuple(r) for n, r in self.tasks.items()},
                    {p: tuple(e) for p, e in self.stats.items()})
        temp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(temp, "wb") as handle:
                handle.write(HEADER + _frame(snapshot))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            self.warn(f"{self.path}: could not compact the build state: {exc.strerror}")
            return
        self._records = 1
        self._good_size = self.path.stat().st_size
