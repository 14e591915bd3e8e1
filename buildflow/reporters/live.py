"""The terminal display: a live progress bar (done/total, elapsed time) above the running tasks
with their elapsed time, retry attempt and last line of output. Finished tasks print above it,
one block each (with `--stream`, each line as it comes instead), and a summary ends the build. rich is imported only here, and only when this reporter is chosen.

rich hides the cursor while the display is live; `close` (always called, even on Ctrl-C)
stops the display, which shows it again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

from buildflow import events as ev
from buildflow.reporters.text import (Tally, failure_block, indent, retry_line,
                                     stream_line, without_escapes, would_run_block)
from buildflow.signals import without_signals

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

MAX_RUNNING_SHOWN = 10


class LiveReporter:
    # The last line of each running task is shown, so output is always followed.
    follows_output = True

    def __init__(self, stream: TextIO, *, quiet: bool = False, verbose: bool = False,
                 stream_output: bool = False) -> None:
        from rich.console import Console

        self.console = Console(file=stream, highlight=False)
        self.quiet = quiet
        self.verbose = verbose
        self.stream_output = stream_output
        self.tally = Tally()
        self.started = time.monotonic()
        self.running: dict[str, float] = {}
        self.attempt: dict[str, str] = {}  # task -> "attempt 2/3", once it retries
        self.last_line: dict[str, str] = {}  # task -> the last line it wrote that is not blank
        self.attached: str | None = None  # the interactive task that has the terminal
        # Started by BuildStarted, so a wait for the lock shows its message, not an empty bar.
        self.live = self._new_live()

    def _new_live(self) -> Live:
        """A live display, not started. One that was stopped is not started again: it would
        first move up over the lines it last drew, which are what a task printed since."""
        from rich.live import Live

        return Live(console=self.console, refresh_per_second=8, transient=True,
                    get_renderable=self._render)

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        bar = Table.grid(padding=(0, 1))
        bar.add_row(Text("bflow", style="bold"),
                    # nothing (left) to run reads as a full bar, not a pulsing one
                    ProgressBar(total=self.tally.total or 1,
                                completed=self.tally.ran if self.tally.total else 1, width=40),
                    Text(f"{self.tally.ran}/{self.tally.total}"), Text(f"{now - self.started:.1f}s",
                                                            style="dim"))
        lines: list[RenderableType] = [bar]
        for name, start in list(self.running.items())[:MAX_RUNNING_SHOWN]:
            line = Text(f"  {name}  ", style="cyan")
            line.append(f"{now - start:.1f}s", style="dim")
            if name in self.attempt:
                line.append(f"  {self.attempt[name]}", style="yellow")
            if name in self.last_line:
                line.append(f"  {self.last_line[name]}", style="dim")
            line.no_wrap, line.overflow = True, "ellipsis"
            lines.append(line)
        if len(self.running) > MAX_RUNNING_SHOWN:
            lines.append(Text(f"  ... and {len(self.running) - MAX_RUNNING_SHOWN} more",
                              style="dim"))
        return Group(*lines)

    def _print(self, text: str, style: str | None = None, output: str = "") -> None:
        """One print per event: a block printed in pieces can leave a stale frame of the live
        display between them."""
        from rich.text import Text

        block = Text(text.rstrip("\n"), style=style or "")
        if output.strip():
            block.append("\n" + indent(output, "  ").rstrip("\n"))
        self.console.print(block, highlight=False)

    def _ended(self, task: str) -> None:
        if task == self.attached:  # the terminal is bflow's again
            self.attached = None
            self.live = self._new_live()
            without_signals(self.live.start)  # its refresh thread
        self.running.pop(task, None)
        self.attempt.pop(task, None)
        self.last_line.pop(task, None)

    def handle(self, event: ev.Event) -> None:
        self.tally.see(event)
        if isinstance(event, ev.TaskOutput):
            line = without_escapes(event.line) if "\x1b" in event.line else event.line
            if line.strip():  # shown in the status lines: a cursor move there would tear them
                self.last_line[event.task] = line.strip()
            if self.stream_output:
                self._print(stream_line(event))
        elif isinstance(event, ev.TaskAttached):
            self.attached = event.task
            self.live.stop()
        elif isinstance(event, ev.BuildStarted):
            self.started = time.monotonic()
            without_signals(self.live.start)  # its refresh thread
        elif isinstance(event, ev.TaskStarted):
            self.running[event.task] = time.monotonic()
            if self.verbose:
                self._print("\n".join(f"$ {command}" for command in event.commands),
                            style="dim")
        elif isinstance(event, ev.TaskRetry):
            self.attempt[event.task] = f"attempt {event.attempt}/{event.of}"
            if not self.quiet:
                self._print(retry_line(event), style="yellow")
        elif isinstance(event, ev.TaskFinished):
            self._ended(event.task)
            if not self.quiet:
                self._print(f"✓ {event.task} ({event.duration:.2f}s)", style="green",
                            output="" if self.stream_output else event.output)
        elif isinstance(event, ev.TaskRestored):
            self._ended(event.task)
            if not self.quiet:
                self._print(f"↺ {event.task} (restored)", style="cyan", output=event.output)
        elif isinstance(event, ev.TaskFailed):
            self._ended(event.task)
            self._print(failure_block(event, streamed=self.stream_output), style="red")
        elif isinstance(event, ev.TaskSkipped):
            self._ended(event.task)
            if event.reason != "up to date" and not self.quiet:
                self._print(f"- {event.task} ({event.reason})", style="yellow")
        elif isinstance(event, ev.TaskWouldRun):
            self._print(would_run_block(event))
        elif isinstance(event, ev.BuildFinished):
            self.live.stop()
            style = "bold green" if event.exit_status == 0 else "bold red"
            self._print(self.tally.summary(event), style=style)

    def note(self, message: str) -> None:
        self._print(f"bflow: {message}", style="dim")

    def warn(self, message: str) -> None:
        self._print(f"bflow: warning: {message}", style="yellow")

    def close(self) -> None:
        self.live.stop()
        self.console.file.flush()
