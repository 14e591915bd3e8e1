"""`bflow watch`: build, then rebuild what changes affect until Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from typing import Any

from buildflow import reporters
from buildflow.commands import build, invocation_dir
from buildflow.errors import EXIT_INTERRUPTED, EXIT_OK, Interrupted, raise_interrupted
from buildflow.model import Project
from buildflow.scheduler import BuildResult, Outcome
from buildflow.watchset import WatchSet
from buildflow.words import counted


def run(project: Project, *, poll: bool, debounce: float, targets: list[str],
        jobs: int | None, keep_going: bool, dry_run: bool, force: bool,
        lock_timeout: float | None, quiet: bool, verbose: bool, plain: bool, json: bool,
        stream: bool = False, trace: str | None = None, report: str | None = None,
        overrides: Mapping[str, str] | None = None, cache: bool = True,
        executor: str | None = None) -> int:
    from buildflow.observer import WatchdogSource
    from buildflow.project import load
    from buildflow.watch import BuildOver, Watcher

    display = WatchDisplay(json=json, plain=plain)
    options: dict[str, Any] = {
        "targets": targets, "jobs": jobs, "keep_going": keep_going, "dry_run": dry_run,
        "force": force, "lock_timeout": lock_timeout, "quiet": quiet, "verbose": verbose,
        "plain": plain, "json": json, "stream": stream, "trace": trace, "report": report,
        "watching": True, "cache": cache, "executor": executor}
    ran: list[str] = []  # what the last build ran, restored or failed in
    finished: list[bool] = []  # whether the last build ended, not interrupted

    def keep_ran(result: BuildResult) -> None:
        ran.extend(name for outcome in (Outcome.RAN, Outcome.RESTORED, Outcome.FAILED)
                   for name in result.names(outcome))
        finished.append(result.exit_status != EXIT_INTERRUPTED)

    def build_once(current: Project) -> int:
        ran.clear()  # a build that stops before its builder (the lock) ran nothing
        finished.clear()
        try:
            return build.run(current, on_result=keep_ran, **options)
        except (KeyboardInterrupt, Interrupted):
            if finished and finished[0]:  # as its hooks ran: between builds
                raise BuildOver from None
            raise

    previous = signal.signal(signal.SIGTERM, raise_interrupted)
    source = WatchdogSource(poll=poll, warn=display.warn)
    try:
        watcher = Watcher(project, targets, source=source, status=display,
                          build=build_once,
                          load=lambda: load(project.flowfile, overrides, args=project.args),
                          debounce=debounce, cwd=invocation_dir(), ran=lambda: ran,
                          written=[os.path.abspath(path) for path in (trace, report) if path])
        exit_status = watcher.run()
        if exit_status == EXIT_OK:
            display.stopped()
        return exit_status
    finally:
        source.close()
        signal.signal(signal.SIGTERM, previous)
        if report:
            from buildflow.report.page import settle

            settle(report, display.warn)  # the watch is over: the page's last build stops reloading


class WatchDisplay:
    """Between builds: what is watched and how the last build went. Calm styled lines on a
    terminal, plain `bflow:` lines elsewhere; on stderr under --json, so stdout stays events."""

    def __init__(self, *, json: bool, plain: bool) -> None:
        self.stream = sys.stderr if json else sys.stdout
        self.console: Any = None
        if not (json or plain or reporters.wants_plain(self.stream)):
            from rich.console import Console

            self.console = Console(file=self.stream, highlight=False)

    def _line(self, text: str, style: str = "dim") -> None:
        if self.console is not None:
            self.console.print(text, style=style, markup=False, highlight=False)
        else:
            print(f"bflow: {text}", file=self.stream, flush=True)

    def idle(self, watched: WatchSet, exit_status: int) -> None:
        verdict = {0: "ok", 1: "FAILED"}.get(exit_status, f"exit status {exit_status}")
        files = counted(len(watched.inputs | {watched.flowfile}), "file")
        dirs = counted(len(watched.directories()), "directory", "directories")
        self._line(f"{time.strftime('%H:%M:%S')} build {verdict}; watching {files} in {dirs} "
                   "(Ctrl-C to stop)",
                   "dim" if exit_status == 0 else "bold red")

    def changed(self, paths: list[str]) -> None:
        more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
        self._line(f"changed: {', '.join(paths[:3])}{more}", "cyan")

    def reloaded(self) -> None:
        self._line("Flowfile reloaded", "cyan")

    def invalid(self, message: str) -> None:
        self.error(message)
        print("bflow: still watching, with the last good Flowfile until it loads again",
              file=sys.stderr, flush=True)

    def error(self, message: str) -> None:
        print("\n".join(f"bflow: error: {line}" for line in message.splitlines()),
              file=sys.stderr, flush=True)

    def stopped(self) -> None:
        """After Ctrl-C between builds: end the line the terminal echoed ^C on, so the shell's
        prompt starts on its own line."""
        if self.stream.isatty():
            print(file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        print(f"bflow: warning: {message}", file=sys.stderr, flush=True)
