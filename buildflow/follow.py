"""Output as it comes: the lines running tasks write, read back from their log files.

A command writes straight into its worker's scratch log (`logs.LogSlot`), and that stays so:
following output reads the file a second time, from its own descriptor, as `tail -f` does. So
the saved logs, the process groups and the timeouts are exactly those of a build that does
not follow, and a command's output never waits for bflow to read it.

Only whole lines are handed on (and a task's last, unfinished one when it ends), each once, so
a reporter that prints one line per call never breaks a line of one task with another's. A
line is what a terminal would show of it: after its last carriage return (a progress bar
redrawn in place), secrets masked as in the saved log, and each line of a secret of several
lines too, since a line never holds such a secret whole. A line that has not ended after
MAX_LINE_BYTES is handed on in pieces, each cut where it splits no secret in two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from buildflow.model import Task
from buildflow.secrets import Masker

if TYPE_CHECKING:
    from typing import BinaryIO

# A line that has not ended after this many bytes is handed on as it is.
MAX_LINE_BYTES = 1 << 16


class _Followed:
    """A running task's log, and the start of a line not yet ended. A plain class: see
    `scheduler.BuildResult`."""

    def __init__(self, handle: BinaryIO, mask: Masker | None) -> None:
        self.handle = handle
        self.mask = mask
        self.secrets = [value.encode() for value in mask.values] if mask else []
        self.pending = b""


class OutputFollower:
    """Reads the logs of running tasks and hands each new line to `emit(task, line)`. Not
    thread-safe: the builder calls every method under its lock, so lines and the other events
    of a task come out in order."""

    def __init__(self, emit: Callable[[str, str], None]) -> None:
        self.emit = emit
        self._followed: dict[str, _Followed] = {}

    def follow(self, task: Task, log_path: str) -> None:
        """Follow `task`, whose commands write into `log_path` (opened, empty, already)."""
        masker = Masker(task.env, by_line=True) if task.env else None
        self._followed[task.name] = _Followed(open(log_path, "rb"), masker or None)

    def poll(self) -> None:
        """Hand on the whole lines written since the last poll."""
        for name, followed in self._followed.items():
            self._read(name, followed, final=False)

    def end(self, task_name: str) -> None:
        """The task's commands have ended: hand on the rest, an unfinished line too."""
        followed = self._followed.pop(task_name, None)
        if followed is not None:
            self._read(task_name, followed, final=True)
            followed.handle.close()

    def close(self) -> None:
        for followed in self._followed.values():
            followed.handle.close()
        self._followed.clear()

    def _read(self, name: str, followed: _Followed, *, final: bool) -> None:
        data = followed.pending + followed.handle.read()
        lines = data.split(b"\n")
        followed.pending = lines.pop()
        if final:
            if followed.pending:
                lines.append(followed.pending)
            followed.pending = b""
        elif len(followed.pending) > MAX_LINE_BYTES:
            cut = _secret_free_cut(followed.pending, followed.secrets)
            if cut:
                lines.append(followed.pending[:cut])
                followed.pending = followed.pending[cut:]
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r").rsplit("\r", 1)[-1]
            self.emit(name, followed.mask(line) if followed.mask else line)


def _secret_free_cut(data: bytes, secrets: list[bytes]) -> int:
    """Where to cut an unended line that grew too long, so that no secret is cut in two (and
    so shown unmasked): before the bytes at its end that may begin one, and before one that
    would span the cut."""
    if not secrets:
        return len(data)
    cut = len(data) - max(map(len, secrets)) + 1
    moved = True
    while moved:
        moved = False
        for secret in secrets:
            start = data.rfind(secret, 0, cut + len(secret) - 1)
            if -1 < start < cut < start + len(secret):
                cut, moved = start, True
    return max(cut, 0)
