"""The history of builds: what each task that ran took, how it ended and in how many attempts,
for the last builds that ran something. `bflow report` reads it.

`<cache_dir>/history` is framed like the state (`frames`): a header line naming the format,
then one checksummed record per build, each followed by its size, appended when the build
ends. The size at the end lets an append check the last record without reading the others: a
kill at any moment leaves the file loadable, and a torn last record is dropped on load and cut
off before the next append. It is bounded: past MAX_BYTES it is rewritten (a temp file, then a
rename) with the newest KEEP records that fit in half of that.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from typing import TYPE_CHECKING, NamedTuple

from buildflow import events as ev
from buildflow.frames import FRAME, decode_at, encode, size_at

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO

HEADER = b"BFLOWHISTORY 1\n"
FOOTER = struct.Struct("<I")  # the size of the frame before it
KEEP = 20
MAX_BYTES = 16 << 20

# How a task ended, as stored: a run Ctrl-C stopped is no failure of the task's, and its
# time is no run's whole time.
OK, FAILED, INTERRUPTED = "ok", "failed", "interrupted"


class TaskRun(NamedTuple):
    """One task's run in a build: seconds from the build's start, attempts, outcome."""

    task: str
    start: float
    end: float
    attempts: int
    outcome: str


class BuildRecord(NamedTuple):
    when: float  # wall clock at the build's start
    duration: float
    exit_status: int
    jobs: int
    runs: tuple[TaskRun, ...]


def history_path(cache_dir: str) -> str:
    return os.path.join(cache_dir, "history")


class HistoryRecorder:
    """An observer that appends a record of the build when it ran or failed something: a
    build with nothing to do (which the fast path answers without any of this) leaves none.
    It keeps one small tuple per finished task, timed when the event comes."""

    def __init__(self, cache_dir: str) -> None:
        self.path = history_path(cache_dir)
        self.clock = time.monotonic
        self.started = self.clock()
        self.when = time.time()
        self.jobs = 0
        self.ended: list[tuple[float, ev.TaskFinished | ev.TaskFailed]] = []

    def routes(self) -> dict[type, Callable[[Any], None]]:
        return {ev.BuildStarted: self.build_started, ev.TaskFinished: self.task_ended,
                ev.TaskFailed: self.task_ended, ev.BuildFinished: self.build_finished}

    def build_started(self, event: ev.BuildStarted) -> None:
        self.started, self.when, self.jobs = self.clock(), time.time(), event.jobs
        self.ended.clear()

    def task_ended(self, event: ev.TaskFinished | ev.TaskFailed) -> None:
        if event.attempts:  # not a task that failed before its command ran: it ran nothing
            self.ended.append((self.clock(), event))  # all it does per task: it adds up

    def build_finished(self, event: ev.BuildFinished) -> None:
        if not self.ended:
            return
        started = self.started
        rows = tuple((task.task, at - started - task.duration, at - started, task.attempts,
                      _outcome(task)) for at, task in self.ended)
        append(self.path, (self.when, event.duration, event.exit_status, self.jobs, rows))

    def close(self) -> None:
        pass


def _outcome(event: ev.TaskFinished | ev.TaskFailed) -> str:
    if isinstance(event, ev.TaskFailed):
        return INTERRUPTED if event.reason == ev.INTERRUPTED else FAILED
    return OK


def append(path: str, payload: tuple[object, ...]) -> None:
    """Append one build's record, cutting off a torn tail first, and rewrite the file with
    the newest records when it has grown past MAX_BYTES. A history that cannot be written (a
    read-only cache dir) is not worth failing a build for: the build says nothing of it."""
    frame = encode(payload)
    frame += FOOTER.pack(len(frame))
    try:
        with open(path, "r+b" if os.path.exists(path) else "w+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            good = size if _ends_whole(handle, size) else _good_end(handle)
            if good + len(frame) > MAX_BYTES:
                handle.seek(0)
                frames = _frames(handle.read(good)) + [frame]
                _rewrite(path, _newest(frames))
                return
            if good != size:
                handle.truncate(good)
            if good == 0:
                handle.seek(0)
                handle.write(HEADER)
            handle.seek(max(good, len(HEADER)))
            handle.write(frame)
    except OSError:
        return


def _ends_whole(handle: BinaryIO, size: int) -> bool:
    """Whether the file ends with a whole record (or is a bare header): its size at the end
    points back to a frame whose checksum holds."""
    if size == len(HEADER) or size < len(HEADER) + FRAME.size + FOOTER.size:
        handle.seek(0)
        return handle.read(len(HEADER)) == HEADER and size == len(HEADER)
    handle.seek(size - FOOTER.size)
    (length,) = FOOTER.unpack(handle.read(FOOTER.size))
    start = size - FOOTER.size - length
    if start < len(HEADER):
        return False
    handle.seek(start)
    return _checks(handle.read(length))


def _checks(frame: bytes) -> bool:
    """Whether `frame` is one whole frame whose checksum holds."""
    if len(frame) < FRAME.size:
        return False
    length, crc = FRAME.unpack_from(frame)
    return bool(length == len(frame) - FRAME.size and zlib.crc32(frame[FRAME.size:]) == crc)


def _good_end(handle: BinaryIO) -> int:
    """Where the whole records end, read from the start (after a kill tore the last one);
    0 for a file that is not a history of this format."""
    handle.seek(0)
    data = handle.read()
    if not data.startswith(HEADER):
        return 0
    return len(HEADER) + sum(map(len, _frames(data)))


def _frames(data: bytes) -> list[bytes]:
    """The whole records after the header, each with its footer; the first torn or corrupt
    one ends the list."""
    frames: list[bytes] = []
    offset = len(HEADER)
    while offset + FRAME.size <= len(data):
        end = offset + size_at(data, offset) + FOOTER.size
        if end > len(data) or not _checks(data[offset:end - FOOTER.size]):
            break
        frames.append(data[offset:end])
        offset = end
    return frames


def _newest(frames: list[bytes]) -> list[bytes]:
    """The newest KEEP frames that fit in half of MAX_BYTES (the newest one at least)."""
    kept: list[bytes] = []
    size = 0
    for frame in reversed(frames[-KEEP:]):
        if kept and size + len(frame) > MAX_BYTES // 2:
            break
        kept.append(frame)
        size += len(frame)
    return kept[::-1]


def _rewrite(path: str, frames: list[bytes]) -> None:
    from buildflow.fs import replace_file  # here: most builds only append

    # not synced: a history a power cut empties reads as none
    replace_file(path, HEADER, *frames, sync=False)


def load(cache_dir: str) -> list[BuildRecord]:
    """The recorded builds, oldest first; none when there is no history (or one of another
    format)."""
    try:
        with open(history_path(cache_dir), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return []
    if not data.startswith(HEADER):
        return []
    records = []
    for frame in _frames(data):
        when, duration, exit_status, jobs, rows = decode_at(frame, 0)
        records.append(BuildRecord(when, duration, exit_status, jobs,
                                   tuple(TaskRun(*row) for row in rows)))
    return records
