"""Reporters turn build events into output: rich on a terminal, plain lines elsewhere, JSON
Lines for machines. Only the one chosen is imported."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import TextIO

    from buildflow.events import Reporter


def wants_plain(stream: TextIO) -> bool:
    """Plain lines unless stdout is a terminal that is not dumb, NO_COLOR is unset, and `CI`
    is unset (or `false`): a CI runner that gives its jobs a pseudo-terminal keeps a log."""
    return (bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"
            or os.environ.get("CI", "").lower() not in ("", "0", "false")
            or not stream.isatty())


class Output:
    """A reporter's stdout, which its reader may close (`bflow --json | head`). The first
    write that finds it closed stops all printing, quietly, as `cat` does; `closed` then tells
    the build to start nothing new (what runs finishes and is recorded) and the CLI to exit 1."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.closed = False

    def write(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self.closed = True
            # What is still buffered, and any later print, goes nowhere rather than failing.
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())


def choose(*, json: bool = False, plain: bool = False, quiet: bool = False,
           verbose: bool = False, stream: bool = False, out: TextIO | None = None) -> Reporter:
    """The reporter for these options; `stream` prints each line of output as it comes."""
    out = out or sys.stdout
    if json:
        from buildflow.reporters.jsonlines import JsonReporter

        return JsonReporter(out, stream_output=stream)
    if plain or wants_plain(out):
        from buildflow.reporters.plain import PlainReporter

        return PlainReporter(out, quiet=quiet, verbose=verbose, stream_output=stream)
    from buildflow.reporters.live import LiveReporter

    return LiveReporter(out, quiet=quiet, verbose=verbose, stream_output=stream)


def _say(line: str) -> None:
    """`line` on stderr in one write, the newline with it: `print` writes them apart, and an
    unbuffered stderr (PYTHONUNBUFFERED) let another thread's line in between (a warning
    from the output cache's thread)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class LineReporter:
    """What the plain and JSON Lines reporters share: events go to `out` (stdout, which its
    reader may close), messages that are not about a task to stderr as plain lines."""

    def __init__(self, stream: TextIO) -> None:
        self.out = Output(stream)

    @property
    def closed(self) -> bool:
        return self.out.closed

    def note(self, message: str) -> None:
        """Information that is not about a task, such as waiting for the lock."""
        _say(f"bflow: {message}")

    def warn(self, message: str) -> None:
        _say(f"bflow: warning: {message}")

    def close(self) -> None:
        pass
