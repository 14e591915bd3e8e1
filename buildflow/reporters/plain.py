"""One plain line per event, no escape codes: for CI logs, pipes, NO_COLOR and `--plain`.

Each task's output is written with its result line in a single write, so blocks from parallel
tasks never interleave.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildflow import events as ev
from buildflow.reporters import LineReporter
from buildflow.reporters.text import (Tally, failure_block, output_block, retry_line,
                                     stream_line, without_escapes, would_run_block)

if TYPE_CHECKING:
    from typing import TextIO


class PlainReporter(LineReporter):
    """With `stream_output`, each line of output is printed as it comes (`task | line`), not
    in a block when the task ends."""

    def __init__(self, stream: TextIO, *, quiet: bool = False, verbose: bool = False,
                 stream_output: bool = False) -> None:
        super().__init__(stream)
        self.quiet = quiet
        self.verbose = verbose
        self.follows_output = stream_output
        self.tally = Tally()

    def _print(self, text: str) -> None:
        if "\x1b" in text:  # a task's colours: no escape codes here, as Ninja strips them
            text = without_escapes(text)
        self.out.write(text if text.endswith("\n") else text + "\n")

    def handle(self, event: ev.Event) -> None:
        self.tally.see(event)
        if isinstance(event, ev.TaskOutput):
            self._print(stream_line(event))
        elif isinstance(event, ev.TaskStarted):
            if self.verbose:
                self._print("".join(f"run    {event.task}: {command}\n"
                                    for command in event.commands))
            elif not self.quiet:
                self._print(f"run    {event.task}")
        elif isinstance(event, ev.TaskRetry):
            if not self.quiet:
                self._print(retry_line(event))
        elif isinstance(event, ev.TaskFinished):
            if not self.quiet:
                line = f"ok     {event.task} {self.tally.counter()} ({event.duration:.2f}s)\n"
                self._print(line + ("" if self.follows_output else output_block(event.output)))
        elif isinstance(event, ev.TaskRestored):
            if not self.quiet:
                line = f"restored {event.task} {self.tally.counter()}\n"
                self._print(line + output_block(event.output))
        elif isinstance(event, ev.TaskFailed):
            self._print(failure_block(event, streamed=self.follows_output))
        elif isinstance(event, ev.TaskSkipped):
            if event.reason == "up to date":
                if self.verbose:
                    self._print(f"fresh  {event.task}")
            elif not self.quiet:
                self._print(f"skip   {event.task} ({event.reason})")
        elif isinstance(event, ev.TaskWouldRun):
            self._print(would_run_block(event))
        elif isinstance(event, ev.BuildFinished):
            self._print(self.tally.summary(event))
