"""`--trace FILE`: the build as Chrome trace events (`{"traceEvents": [...]}`), which Perfetto
and `chrome://tracing` open. One complete event ("ph": "X") per attempt, `ts` and `dur` in
microseconds, one `tid` per job slot (named `job 1`, `job 2`, ...), the task's outcome and
attempt in `args`. Written when the build ends, atomically; under `watch`, each build's
trace replaces the last one's."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from buildflow import events as ev
from buildflow.report import ALL_EVENTS
from buildflow.report.pagefile import ReportFile
from buildflow.report.timeline import Timeline

PID = 1


def trace_events(timeline: Timeline) -> dict[str, object]:
    slots = sorted({span.slot for span in timeline.spans})
    events: list[dict[str, object]] = [
        {"name": "process_name", "ph": "M", "pid": PID, "args": {"name": "bflow build"}}]
    events += [{"name": "thread_name", "ph": "M", "pid": PID, "tid": slot + 1,
                "args": {"name": f"job {slot + 1}"}} for slot in slots]
    for span in sorted(timeline.spans, key=lambda s: (s.start, s.slot)):
        events.append({"name": span.task, "cat": "task", "ph": "X", "pid": PID,
                       "tid": span.slot + 1, "ts": round(span.start * 1e6),
                       "dur": round((span.end - span.start) * 1e6),
                       "args": {"outcome": span.outcome, "attempt": span.attempt}})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"exit_status": timeline.exit_status, "jobs": timeline.jobs}}


class TraceWriter:
    """An observer that writes the trace when the build finishes."""

    def __init__(self, path: str, warn: Callable[[str], None]) -> None:
        self.file = ReportFile(path, "--trace", warn)
        self.timeline = Timeline()

    def routes(self) -> dict[type, Callable[[Any], None]]:
        return dict.fromkeys(ALL_EVENTS, self.handle)

    def handle(self, event: ev.Event) -> None:
        self.timeline.handle(event)
        if isinstance(event, ev.BuildFinished):
            self.file.write(json.dumps(trace_events(self.timeline)))

    def close(self) -> None:
        pass
