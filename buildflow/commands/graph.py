"""`bflow graph`: the DAG of the selected tasks, each marked stale or up to date, in one of the
formats of buildflow.export, on stdout or into a file."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from buildflow import engine, export
from buildflow.commands import invocation_dir
from buildflow.errors import EXIT_OK, UsageError
from buildflow.model import Project
from buildflow.reporters import wants_plain
from buildflow.staleness import recorded_depfile_links


def run(project: Project, *, targets: list[str], fmt: str, output: str | None,
        plain: bool = False) -> int:
    """Without targets, every task of the Flowfile (the whole picture, as `ninja -t graph`);
    with targets, those and everything they need."""
    project, state, gone = engine.as_built(project)
    graph = project.graph
    names = engine.selected(project, targets, invocation_dir()) if targets \
        else graph.topological(project.tasks)
    decisions, skips = engine.decided(project, state, names, gone=gone)
    graph_view = export.view(graph, names, decisions,
                             recorded_depfile_links(graph, names, state), skips)
    # the text a line at a time, written as it is made: a deep chain's is tens of megabytes
    rendered: Iterable[str] = (
        export.text_lines(graph_view,
                          colour=output is None and not plain and not wants_plain(sys.stdout))
        if fmt == "text" else (export.RENDERERS[fmt](graph_view),))
    if output is None:
        sys.stdout.writelines(rendered)
        sys.stdout.flush()
        return EXIT_OK
    try:
        # as stdout has them: a name that is no UTF-8 keeps its bytes
        with open(output, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.writelines(rendered)
    except OSError as exc:
        raise UsageError(f"-o {output}: cannot write the graph: {exc.strerror}") from None
    return EXIT_OK
