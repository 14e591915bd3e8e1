"""One plain line per event, no escape codes: for CI logs, pipes and NO_COLOR."""

from __future__ import annotations

import sys
from typing import TextIO

from buildflow import events as ev


def indent(output: str, prefix: str = "  | ") -> str:
    return "".join(prefix + line + "\n" for line in output.rstrip("\n").split("\n"))


def summary(event: ev.BuildFinished) -> str:
    parts = [f"{event.ran} ran", f"{event.up_to_date} up to date"]
    if event.failed:
        parts.append(f"{event.failed} failed")
    if event.skipped:
        parts.append(f"{event.skipped} skipped")
    verdict = {0: "", 1: " (FAILED)", 130: " (interrupted)"}.get(event.exit_status, "")
    return f"bflow: {', '.join(parts)} in {event.duration:.2f}s{verdict}"


def failure_block(event: ev.TaskFailed) -> str:
    attempts = f" after {event.attempts} attempts" if event.attempts > 1 else ""
    lines = [f"FAILED {event.task}: {event.reason}{attempts} ({event.duration:.2f}s)"]
    lines += [f"  $ {command}" for command in event.commands]
    text = "\n".join(lines) + "\n"
    return text + (indent(event.output) if event.output.strip() else "")


class PlainReporter:
    def __init__(self, stream: TextIO, *, quiet: bool = False, verbose: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.verbose = verbose
        self.total = 0
        self.done = 0

    def _print(self, text: str) -> None:
        self.stream.write(text if text.endswith("\n") else text + "\n")
        self.stream.flush()

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.BuildStarted):
            self.total = event.total
        elif isinstance(event, ev.TaskStarted):
            if self.verbose:
                for command in event.commands:
                    self._print(f"run    {event.task}: {command}")
            elif not self.quiet:
                self._print(f"run    {event.task}")
        elif isinstance(event, ev.TaskRetry):
            if not self.quiet:
                self._print(f"retry  {event.task}: {event.reason}; attempt {event.attempt} of "
                            f"{event.of} in {event.delay:.1f}s")
        elif isinstance(event, ev.TaskFinished):
            self.done += 1
            if not self.quiet:
                self._print(f"ok     {event.task} [{self.done}/{self.total}] "
                            f"({event.duration:.2f}s)")
                if event.output.strip():
                    self._print(indent(event.output))
        elif isinstance(event, ev.TaskFailed):
            self.done += 1
            self._print(failure_block(event))
        elif isinstance(event, ev.TaskSkipped):
            self.done += 1
            if event.reason != "up to date" and not self.quiet:
                self._print(f"skip   {event.task} ({event.reason})")
            elif self.verbose:
                self._print(f"fresh  {event.task}")
        elif isinstance(event, ev.TaskWouldRun):
            self._print(f"would run {event.task}: {event.reason}")
        elif isinstance(event, ev.BuildFinished):
            self._print(summary(event))

    def warn(self, message: str) -> None:
        print(f"bflow: warning: {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass
