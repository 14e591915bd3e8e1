"""`--report FILE`: one self-contained HTML page of the build (nothing fetched: inline SVG, CSS
and a few lines of JavaScript). The DAG, each task an element with `data-task` and
`data-state`; the instances of a grouped `foreach` node listed under it; a timeline of the
attempts on their job slots; the summary.

The page is written when the build starts, then rewritten (atomically) at most twice a second
while states change, by a thread of its own so the build never waits for it. While the build
runs the page reloads itself every second, keeping its scroll position; the final page does
not, except under `watch`, where it reloads until the watch ends (`settle`).
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import Any

from buildflow import events as ev
from buildflow.model import Project
from buildflow.report import ALL_EVENTS
from buildflow.report import timeline as tl
from buildflow.report.layout import NODE_HEIGHT, NODE_WIDTH, Layout, Node, lay_out
from buildflow.report.pagefile import ReportFile
from buildflow.signals import without_signals

REWRITE_EVERY = 0.5  # seconds: at most twice a second
RELOAD = ('<script data-reload>setTimeout(function () {'
          ' sessionStorage.setItem("bflow-scroll", scrollX + "," + scrollY);'
          ' location.reload(); }, 1000);</script>')
RESTORE = ('<script>var at = (sessionStorage.getItem("bflow-scroll") || "").split(",");'
           ' addEventListener("load", function () {'
           ' if (at.length == 2) scrollTo(+at[0], +at[1]); });'
           '</script>')
# Each state has a colour from the Okabe-Ito palette (told apart with every common colour
# blindness), and a mark and a border of its own, so no reader needs the colour.
MARKS = {tl.PENDING: "…", tl.RUNNING: "▶", tl.OK: "✓", tl.FAILED: "✗", tl.SKIPPED: "–",
         tl.UPTODATE: "=", tl.RESTORED: "↺"}
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; background: #fff; }
h1 { font-size: 1.3em; margin: 0 } h2 { font-size: 1.05em; margin: 1.2em 0 .4em }
.legend span { margin-right: 1.2em; white-space: nowrap }
svg text { font: 12px system-ui, sans-serif; fill: #111 }
.node rect, .legend i { stroke: #333; stroke-width: 1.2; }
.legend i { display: inline-block; width: .9em; height: .9em; border: 1.5px solid #333;
  vertical-align: -2px; margin-right: .3em }
[data-state=pending] > rect, i.pending { fill: #f2f2f2; background: #f2f2f2; stroke-dasharray: 3 2 }
[data-state=running] > rect, i.running { fill: #56b4e9; background: #56b4e9; stroke-width: 3 }
[data-state=ok] > rect, i.ok { fill: #a6dcc8; background: #a6dcc8 }
[data-state=failed] > rect, i.failed { fill: #e69f00; background: #e69f00; stroke: #d55e00;
  stroke-width: 3; stroke-dasharray: 6 2 }
[data-state=skipped] > rect, i.skipped { fill: #fff; background: #fff; stroke-dasharray: 1 2 }
[data-state=uptodate] > rect, i.uptodate { fill: #dde8e3; background: #dde8e3 }
[data-state=restored] > rect, i.restored { fill: #cc79a7; background: #cc79a7 }
.edge { fill: none; stroke: #999; stroke-width: 1.2 }
.span { stroke: #fff; stroke-width: .5 } .span.ok { fill: #009e73 } .span.failed { fill: #d55e00 }
.span.retried { fill: #e69f00 } .span.running { fill: #56b4e9 }
.instances { columns: 3 20em; font-size: 12px }
.instances li[data-state=failed] { font-weight: bold }
"""
TIMELINE_WIDTH, LANE = 1000, 18


class PageWriter:
    """An observer that keeps the page current."""

    def __init__(self, path: str, project: Project, names: list[str], *,
                 warn: Callable[[str], None], keep_reloading: bool = False) -> None:
        self.file = ReportFile(path, "--report", warn)
        self.keep_reloading = keep_reloading
        self.layout = lay_out(names, project.tasks, project.graph.upstream)
        self.timeline = tl.Timeline()
        self.tasks = [name for name in names if not project.tasks[name].is_group]
        self.group_tasks = {name: project.graph.upstream.get(name, ())
                            for name in names if project.tasks[name].is_group}
        self.lock = threading.Lock()
        self.dirty = threading.Event()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def routes(self) -> dict[type, Callable[[Any], None]]:
        return dict.fromkeys(ALL_EVENTS, self.handle)

    def handle(self, event: ev.Event) -> None:
        with self.lock:
            self.timeline.handle(event)
        if isinstance(event, ev.BuildStarted):
            self._write()
            self.thread = threading.Thread(target=self._rewrite, name="bflow-report",
                                           daemon=True)
            without_signals(self.thread.start)
        elif isinstance(event, ev.BuildFinished):
            self.close()
            self._write()
        elif not isinstance(event, ev.TaskRetry):
            self.dirty.set()

    def _rewrite(self) -> None:
        while not self.stopped.wait(REWRITE_EVERY):
            if self.dirty.is_set():
                self.dirty.clear()
                self._write()

    def close(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None

    def _write(self) -> None:
        with self.lock:
            states = dict(self.timeline.states)
            now = self.timeline.now()
            spans = self.timeline.spans + self.timeline.running_spans(now)
            finished = self.timeline.summary
        for name in self.tasks:
            states.setdefault(name, tl.PENDING)
        for name, ups in self.group_tasks.items():
            states[name] = combined([states.get(up, tl.UPTODATE) for up in ups])
        self.file.write(render(self.layout, states, spans, finished, now,
                               reloading=finished is None or self.keep_reloading))


def settle(path: str, warn: Callable[[str], None]) -> None:
    """Stop a page from reloading (at the end of `watch`): its last build is over."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return
    ReportFile(path, "--report", warn).write(text.replace(RELOAD, ""))


def combined(states: list[str]) -> str:
    """The state of a node standing for several tasks: the most pressing of theirs."""
    for state in (tl.FAILED, tl.RUNNING, tl.PENDING, tl.SKIPPED, tl.OK, tl.RESTORED):
        if state in states:
            return state
    return tl.UPTODATE


def render(layout: Layout, states: dict[str, str], spans: list[tl.Span],
           finished: ev.BuildFinished | None, now: float, *, reloading: bool) -> str:
    done = sum(state not in (tl.PENDING, tl.RUNNING) for state in states.values())
    if finished is None:
        title = f"bflow: building, {done} of {len(states)} done"
        summary = f"Building: {done} of {len(states)} tasks done, {now:.1f}s so far."
    else:
        verdict = {0: "succeeded", 1: "FAILED", 130: "interrupted"}.get(
            finished.exit_status, f"exit status {finished.exit_status}")
        title = f"bflow: build {verdict}"
        restored = f"{finished.restored} restored, " if finished.restored else ""
        summary = (f"Build {verdict}: {finished.ran} ran, {restored}{finished.up_to_date} up to "
                   f"date, {finished.failed} failed, "
                   f"{f'{finished.interrupted} interrupted, ' if finished.interrupted else ''}"
                   f"{finished.skipped} skipped in "
                   f"{finished.duration:.2f}s.")
    legend = "".join(f'<span><i class="{state}"></i>{MARKS[state]} {state}</span>'
                     for state in tl.STATES)
    return "".join((
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>",
        RELOAD if reloading else "", RESTORE, "</head>\n",
        f'<body data-build={"running" if finished is None else "finished"}>',
        f"<h1>{html.escape(title)}</h1><p class=summary>{html.escape(summary)}</p>",
        f"<p class=legend>{legend}</p><h2>Tasks</h2>\n", _dag(layout, states),
        _instances(layout, states), "<h2>Timeline</h2>\n",
        _timeline(spans, finished.duration if finished else now),
        f"<p><small>Written {time.strftime('%H:%M:%S')} by bflow.</small></p></body></html>\n"))


def _dag(layout: Layout, states: dict[str, str]) -> str:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width}" '
             f'height="{layout.height}" viewBox="0 0 {layout.width} {layout.height}" '
             'role="img" aria-label="task graph">']
    for up, down in layout.edges:
        x1, y1 = up.x + NODE_WIDTH, up.y + up.height // 2
        x2, y2 = down.x, down.y + down.height // 2
        middle = (x1 + x2) // 2
        parts.append(f'<path class="edge" d="M{x1},{y1} C{middle},{y1} {middle},{y2} '
                     f'{x2},{y2}"/>')
    parts.extend(_node(node, states) for node in layout.nodes)
    parts.append("</svg>\n")
    return "".join(parts)


def _node(node: Node, states: dict[str, str]) -> str:
    radius = NODE_HEIGHT // 2 if node.is_group_task else 4
    if node.grouped:
        counts = {state: 0 for state in tl.STATES}
        for member in node.members:
            counts[states[member]] += 1
        state = combined([s for s, n in counts.items() if n])
        attribute = f'data-group="{html.escape(node.key)}"'
        detail = " ".join(f"{MARKS[s]}{n}" for s, n in counts.items() if n)
        label = f"{_fit(node.key, 18)} ×{len(node.members)}"
        text = (f'<text x="8" y="17">{MARKS[state]} {html.escape(label)}</text>'
                f'<text x="8" y="35">{html.escape(detail)}</text>')
        tip = f"{node.key}: {len(node.members)} instances, " + ", ".join(
            f"{n} {s}" for s, n in counts.items() if n)
    else:
        state = states[node.key]
        attribute = f'data-task="{html.escape(node.key)}"'
        text = f'<text x="8" y="18">{MARKS[state]} {html.escape(_fit(node.key, 26))}</text>'
        tip = f"{node.key}: {state}"
    return (f'<g class="node" {attribute} data-state="{state}" '
            f'transform="translate({node.x},{node.y})"><title>{html.escape(tip)}</title>'
            f'<rect width="{NODE_WIDTH}" height="{node.height}" rx="{radius}"/>{text}</g>')


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _instances(layout: Layout, states: dict[str, str]) -> str:
    """Every instance of each grouped node, so each task of the build is on the page."""
    parts = []
    for node in layout.nodes:
        if not node.grouped:
            continue
        items = "".join(f'<li data-task="{html.escape(name)}" data-state="{states[name]}">'
                        f"{MARKS[states[name]]} {html.escape(name)}</li>"
                        for name in node.members)
        parts.append(f"<details><summary>{html.escape(node.key)}: {len(node.members)} "
                     f"instances</summary><ol class=instances>{items}</ol></details>\n")
    return "".join(parts)


def _timeline(spans: list[tl.Span], duration: float) -> str:
    lanes = 1 + max((span.slot for span in spans), default=0)
    scale = TIMELINE_WIDTH / max(duration, 0.001)
    height = lanes * LANE + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{TIMELINE_WIDTH + 60}" '
             f'height="{height}" role="img" aria-label="timeline">']
    parts.extend(f'<text x="0" y="{lane * LANE + 13}">job {lane + 1}</text>'
                 for lane in range(lanes))
    for span in spans:
        x = 50 + span.start * scale
        width = max((span.end - span.start) * scale, 1.0)
        parts.append(f'<rect class="span {span.outcome}" x="{x:.1f}" y="{span.slot * LANE}" '
                     f'width="{width:.1f}" height="{LANE - 2}"><title>{html.escape(span.task)}'
                     f" (attempt {span.attempt}, {span.outcome}): "
                     f"{span.end - span.start:.2f}s</title></rect>")
    parts.append(f'<text x="50" y="{height - 4}">0s</text><text x="{TIMELINE_WIDTH}" '
                 f'y="{height - 4}">{duration:.2f}s</text></svg>\n')
    return "".join(parts)
