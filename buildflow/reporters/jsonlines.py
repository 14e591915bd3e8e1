"""`--json`: one JSON object per event on stdout, exactly the events SPEC §4 names; warnings go
to stderr, so stdout stays machine-readable.

A dry run's "would run" is a `task_skipped` whose reason starts with "would run: " and which
carries `"would_run": true`; the build's start is not an event of the contract.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from buildflow import events as ev
from buildflow.reporters import LineReporter

if TYPE_CHECKING:
    from typing import TextIO


class JsonReporter(LineReporter):
    """With `stream`, each line of output is also a `task_output` event as it comes."""

    def __init__(self, stream: TextIO, *, stream_output: bool = False) -> None:
        super().__init__(stream)
        self.follows_output = stream_output

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, (ev.BuildStarted, ev.PlanChanged, ev.TaskAttached)):
            return
        if isinstance(event, ev.TaskWouldRun) and event.after:
            data = {**ev.to_dict(ev.TaskSkipped(event.task, event.reason)), "after": event.after}
        elif isinstance(event, ev.TaskWouldRun):
            data = {**ev.to_dict(ev.TaskSkipped(event.task, f"would run: {event.reason}")),
                    "would_run": True, "commands": list(event.commands)}
        else:
            data = ev.to_dict(event)
        self.out.write(json.dumps(data) + "\n")
