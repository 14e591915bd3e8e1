"""`on_success` and `on_failure`: commands run after a build that ran or failed something,
with its summary as one JSON object on stdin, for mail, chat or a webhook. They run once the
build has released its lock (a hook may run `bflow report`), in the project root, through the
Flowfile's shell, with their output on bflow's stderr so that `--json` stdout stays events.
A hook that fails is a warning: it never changes the build's exit status."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from buildflow import events as ev
from buildflow.logs import log_path
from buildflow.model import Settings
from buildflow.placeholders import expand
from buildflow.signals import run_alone


class Hooks:
    """An observer that keeps the build's summary and its failures, and runs the hook that
    fits when it is closed."""

    def __init__(self, settings: Settings, variables: Mapping[str, str], *, root: str,
                 cache_dir: str, warn: Callable[[str], None]) -> None:
        self.settings = settings
        # `settings.env` as a task's command gets it: its vars and `{{ }}` expanded
        self.env = {key: expand(value, variables) for key, value in settings.env}
        self.root = root
        self.cache_dir = cache_dir
        self.warn = warn
        self.failed: list[dict[str, object]] = []
        self.finished: ev.BuildFinished | None = None

    def routes(self) -> dict[type, Callable[[Any], None]]:
        return {ev.BuildStarted: self.build_started, ev.TaskFailed: self.task_failed,
                ev.BuildFinished: self.build_finished}

    def build_started(self, event: ev.BuildStarted) -> None:
        self.failed.clear()
        self.finished = None

    def task_failed(self, event: ev.TaskFailed) -> None:
        self.failed.append({"task": event.task, "reason": event.reason,
                            "log": log_path(self.cache_dir, event.task)})

    def build_finished(self, event: ev.BuildFinished) -> None:
        self.finished = event

    def close(self) -> None:
        finished = self.finished
        if finished is None or not (finished.ran or finished.restored or finished.failed
                                    or finished.interrupted):
            return  # no build, or one with nothing to do: nothing to announce
        key = "on_success" if finished.exit_status == 0 else "on_failure"
        command = getattr(self.settings, key)
        if command:
            summary = {**ev.to_dict(finished), "failed_tasks": self.failed}
            self._run(key, command, json.dumps(summary) + "\n")

    def _run(self, key: str, command: str, summary: str) -> None:
        env = {**os.environ, **self.env}
        try:
            # A group of its own, killed whole if bflow is stopped meanwhile
            returncode = run_alone([self.settings.shell, "-c", command], self.root, env,
                                   stdin=summary.encode(), output=sys.stderr.fileno())[0]
        except OSError as exc:
            self.warn(f"settings.{key}: could not run '{command}' ({exc.strerror}); check "
                      f"settings.shell ('{self.settings.shell}')")
            return
        if returncode != 0:
            how = (f"was killed by signal {-returncode}" if returncode < 0
                   else f"exited {returncode}")
            self.warn(f"settings.{key}: '{command}' {how}; the build's exit status is "
                      "unchanged")
