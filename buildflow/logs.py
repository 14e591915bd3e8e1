"""Where a task's saved output lives, one file per task under `<cache_dir>/logs/`, and how it is
made safe to print.

Task names may hold `/` and `:`, so file names are made safe (and kept unique by a short hash),
and no task name can reach outside the logs directory.

A run that succeeds without printing anything leaves no file: its output is empty, and
`bflow log` knows from the state that the task ran. Creating, reading and deleting a file for
each of the thousands of silent tasks of a large build was about a third of bflow's system
time, so each worker writes into one scratch file (`LogSlot`) and keeps it for the next task
while it stays empty.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from buildflow.hashing import text_digest

if TYPE_CHECKING:
    from typing import BinaryIO

    from buildflow.fs import FileSystem

MAX_PRINTED_OUTPUT = 1 << 20
# A disk with less room than this is too full to take a command's output: it goes to memory
ROOM_MIN = MAX_PRINTED_OUTPUT
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def log_path(cache_dir: str, task_name: str) -> str:
    import re  # here: only a task that printed, or has an old log, is named (re: 3 ms)

    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", task_name).strip("._")[:80] or "task"
    return os.path.join(cache_dir, "logs", f"{safe}-{text_digest(task_name)[:8]}.log")


class OldLogs:
    """The task logs earlier builds left in the logs directory, listed once per build when
    first asked: a silent run must remove its task's old log, and trying to remove one for
    each of thousands of tasks, nearly all without one, costs a system call each. Shared by
    the workers of one build; a task's log is written only by its own run."""

    def __init__(self, cache_dir: str, fs: FileSystem) -> None:
        self.cache_dir = cache_dir
        self.logs_dir = os.path.join(cache_dir, "logs")
        self.fs = fs
        self._names: set[str] | None = None

    def remove(self, task_name: str) -> None:
        """Remove the log of `task_name` if an earlier build left it (its file name is worked
        out only when there are old logs at all: a silent build leaves none; the workers'
        scratch files start with a dot, as no log does)."""
        if self._names is None:
            try:
                self._names = {name for name, _ in self.fs.list_dir(self.logs_dir)
                               if not name.startswith(".")}
            except FileNotFoundError:
                self._names = set()
        if self._names:
            log = log_path(self.cache_dir, task_name)
            name = os.path.basename(log)
            if name in self._names:
                self._names.discard(name)
                self.fs.remove(log)

    def replay(self, task_name: str, data: bytes | None) -> str:
        """Save the output of the run a restored task's outputs came from (already masked
        when it was saved) as the task's log, and return the text to print; "" when that run
        printed nothing (`data` empty or None), and an older run's log goes."""
        if not data:
            self.remove(task_name)
            return ""
        log = log_path(self.cache_dir, task_name)
        self.fs.replace(log, (data,), sync=False)  # a log is only shown
        return seal(self.fs, log)


class LogSlot:
    """A worker's scratch file, which takes the output of each task the worker runs.

    A run that printed nothing, succeeded, and left no process behind that could still write
    (`cmd &`) gives the file back empty for the next task. Any other run keeps it as the task's
    log, renamed into place, and the slot opens a new file for the next task.

    On a disk too full to take a command's output (less than ROOM_MIN free, or no file can be
    made there), the output goes into a file in memory instead, so that it is shown all the
    same; saving it as the task's log is then tried once the run has ended, and its failure is
    a warning (`problem`), never the task's."""

    def __init__(self, old_logs: OldLogs, number: int) -> None:
        self.old_logs = old_logs
        self.scratch = os.path.join(old_logs.logs_dir, f".running-{number}")  # no log's name
        self.path = self.scratch  # where the run's output can be read as it comes
        self.problem = ""  # why the last finished run's output could not be saved, if it was not
        self._file: BinaryIO | None = None
        self._next_run = True  # `open` has not been called since the last `finish`

    def open(self) -> BinaryIO:
        """The file the run's output goes to, empty; the logs directory is made only when
        missing, not probed before each of a large build's tasks."""
        if self._next_run:
            self._next_run = False
            if self._file is not None and self._in_memory:
                self._drop_memory()  # the disk may have room again
            if self._file is None:
                try:
                    self._file = self.old_logs.fs.open_scratch(self.scratch)
                except OSError as exc:
                    if exc.errno not in DISK_FULL:
                        raise
            if self._file is None or self.old_logs.fs.room(self.scratch) < ROOM_MIN:
                self.close()
                self._file, self.path = _memory_file()
        assert self._file is not None
        return self._file

    def finish(self, task_name: str, *, silent_success: bool,
               mask: Callable[[str], str] | None = None) -> str:
        """End a run of `task_name` whose output went to `open()`'s file: save it as the task's
        log (masked) and return the text to print. `silent_success`: the run succeeded and
        left no process behind."""
        handle = self.open()
        self._next_run = True
        self.problem = ""
        if self._in_memory:
            return self._finish_in_memory(task_name, silent_success, mask)
        fs = self.old_logs.fs
        written = fs.stat(self.scratch)
        if silent_success and written is not None and written.size == 0:
            # an older run's output must not pass for this one's
            self.old_logs.remove(task_name)
            return ""
        self._file = None
        handle.close()
        log = log_path(self.old_logs.cache_dir, task_name)
        fs.rename(self.scratch, log)
        return seal(fs, log, mask)

    @property
    def _in_memory(self) -> bool:
        """Whether the run's output goes to a file in memory (`_memory_file`)."""
        return self.path != self.scratch

    def _finish_in_memory(self, task_name: str, silent_success: bool,
                          mask: Callable[[str], str] | None) -> str:
        handle = self._file
        assert handle is not None
        handle.seek(0)
        data = handle.read()
        self._drop_memory()
        fs = self.old_logs.fs
        if silent_success and not data:
            try:
                self.old_logs.remove(task_name)  # as above; removing frees space
            except OSError:
                pass
            return ""
        if mask is not None:
            data = mask(data.decode("utf-8", "surrogateescape")).encode("utf-8",
                                                                        "surrogateescape")
        log = log_path(self.old_logs.cache_dir, task_name)
        try:
            fs.replace(log, (data,), sync=False)
        except OSError as exc:
            self.problem = (f"{log}: cannot save the output log of task '{task_name}': "
                            f"{exc.strerror}; its output is shown here only (`bflow log` "
                            f"cannot show it); free some disk space")
            try:
                fs.remove(log)  # an older run's output must not pass for this one's
            except OSError:
                pass
        return tail(data)

    def _drop_memory(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self.path = None, self.scratch

    def close(self) -> None:
        """Remove the scratch file; called when the worker stops."""
        if self._in_memory:
            self._drop_memory()
        elif self._file is not None:
            self._file.close()
            self._file = None
            self.old_logs.fs.remove(self.scratch)


def _memory_file() -> tuple[BinaryIO, str]:
    """A file in memory, unbuffered, for a command's output, and a path where it can be read
    (on Linux; elsewhere a file of the temp directory, deleted once closed)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("bflow-output")
        return open(fd, "w+b", buffering=0), f"/proc/self/fd/{fd}"
    import tempfile

    handle = tempfile.NamedTemporaryFile(prefix="bflow-output-", buffering=0)
    return handle, handle.name  # type: ignore[return-value]


def seal(fs: FileSystem, path: str, mask: Callable[[str], str] | None = None) -> str:
    """Mask secrets in a finished log (rewriting it whole, atomically) and return the text to
    print: its last MAX_PRINTED_OUTPUT bytes, since the end of a log is where errors are."""
    if mask is not None:
        text = mask(fs.read(path).decode("utf-8", "surrogateescape"))
        fs.replace(path, (text.encode("utf-8", "surrogateescape"),), sync=False)
    size, data = fs.read_tail(path, MAX_PRINTED_OUTPUT)
    return tail(data, size)


def tail(data: bytes, size: int | None = None) -> str:
    """The text to print of a log of `size` bytes (len(data) unless given) that ends with
    `data`: its last MAX_PRINTED_OUTPUT bytes, from the first whole line."""
    if size is None:
        size = len(data)
        data = data[-MAX_PRINTED_OUTPUT:]
    if size > MAX_PRINTED_OUTPUT:
        newline = data.find(b"\n")  # from the first whole line: never the end of a cut one
        if 0 <= newline < len(data) - 1:
            data = data[newline + 1:]
        return f"... (first {size - len(data)} bytes left out; `bflow log` shows all)\n" \
               f"{data.decode('utf-8', 'replace')}"
    return data.decode("utf-8", "replace")
