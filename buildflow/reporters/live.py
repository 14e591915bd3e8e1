"""The terminal display: a live progress bar with the running tasks and their elapsed time;
finished output is printed above it as one block per task. rich is imported only here."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from buildflow import events as ev
from buildflow.reporters.plain import failure_block, indent, summary


class LiveReporter:
    def __init__(self, stream: TextIO, *, quiet: bool = False, verbose: bool = False) -> None:
        from rich.console import Console, Group
        from rich.live import Live
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
            TimeElapsedColumn

        self.console = Console(file=stream, highlight=False)
        self.quiet = quiet
        self.verbose = verbose
        self.progress = Progress(TextColumn("[bold]bflow"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console)
        self.bar = self.progress.add_task("build", total=None)
        self.running: dict[str, float] = {}
        self._group = Group
        self.live = Live(console=self.console, refresh_per_second=8, transient=True,
                         get_renderable=self._render)
        self.live.start()

    def _render(self) -> object:
        from rich.text import Text

        now = time.monotonic()
        lines = [Text(f"  {name}  {now - start:.1f}s", style="cyan")
                 for name, start in list(self.running.items())[:12]]
        if len(self.running) > 12:
            lines.append(Text(f"  ... and {len(self.running) - 12} more", style="dim"))
        return self._group(self.progress, *lines)

    def _print(self, text: str, style: str | None = None) -> None:
        self.console.print(text.rstrip("\n"), style=style, markup=False, highlight=False)

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.BuildStarted):
            self.progress.update(self.bar, total=event.total)
        elif isinstance(event, ev.TaskStarted):
            self.running[event.task] = time.monotonic()
            if self.verbose:
                for command in event.commands:
                    self._print(f"$ {command}", style="dim")
        elif isinstance(event, ev.TaskRetry):
            self._print(f"retry {event.task}: {event.reason}; attempt {event.attempt} of "
                        f"{event.of} in {event.delay:.1f}s", style="yellow")
        elif isinstance(event, ev.TaskFinished):
            self.running.pop(event.task, None)
            self.progress.advance(self.bar)
            if not self.quiet:
                self._print(f"✓ {event.task} ({event.duration:.2f}s)", style="green")
                if event.output.strip():
                    self._print(indent(event.output, "  "))
        elif isinstance(event, ev.TaskFailed):
            self.running.pop(event.task, None)
            self.progress.advance(self.bar)
            self._print(failure_block(event), style="red")
        elif isinstance(event, ev.TaskSkipped):
            self.progress.advance(self.bar)
            if event.reason != "up to date" and not self.quiet:
                self._print(f"- {event.task} ({event.reason})", style="yellow")
        elif isinstance(event, ev.TaskWouldRun):
            self._print(f"would run {event.task}: {event.reason}")
        elif isinstance(event, ev.BuildFinished):
            self.live.stop()
            style = "bold green" if event.exit_status == 0 else "bold red"
            self._print(summary(event), style=style)

    def warn(self, message: str) -> None:
        self.console.print(f"bflow: warning: {message}", style="yellow", markup=False,
                           highlight=False, stderr=False)

    def close(self) -> None:
        self.live.stop()
        sys.stdout.flush()
