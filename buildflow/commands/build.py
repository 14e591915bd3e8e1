"""`bflow build`: run what is stale, report through the chosen reporter."""

from __future__ import annotations

from collections.abc import Callable

from buildflow import engine, reporters
from buildflow.commands import invocation_dir
from buildflow.errors import EXIT_FAILED
from buildflow.events import Reporter
from buildflow.executors import open_executor
from buildflow.model import Project
from buildflow.scheduler import BuildResult


def run(project: Project, *, targets: list[str], jobs: int | None, keep_going: bool,
        dry_run: bool, force: bool, lock_timeout: float | None, quiet: bool, verbose: bool,
        plain: bool, json: bool, stream: bool = False, trace: str | None = None,
        report: str | None = None, watching: bool = False, cache: bool = True,
        executor: str | None = None,
        on_result: Callable[[BuildResult], None] | None = None) -> int:
    """`on_result` sees what a build (not a dry run) left, before the reporter closes: where
    the CLI lets the fast path remember it. A build (not a dry run) is observed: recorded in
    the history, announced by the hooks, and written to `trace` and `report` when given.
    Commands run on `executor` (`--executor`), else on the Flowfile's."""
    reporter = reporters.choose(json=json, plain=plain, quiet=quiet, verbose=verbose,
                                stream=stream)
    if not dry_run:
        reporter = _observed(reporter, project, targets, trace, report, watching)
    # stdout carries the events under --json: an interactive task's goes to stderr
    runner = open_executor(executor or project.settings.executor,
                           attached_stdout=2 if json else 1)
    try:
        result = engine.build(project, targets, jobs=jobs, keep_going=keep_going, force=force,
                              dry_run=dry_run, reporter=reporter, lock_timeout=lock_timeout,
                              cwd=invocation_dir(), cache=cache, runner=runner)
        if on_result is not None and not dry_run:
            on_result(result)
    finally:
        runner.close()
        reporter.close()
    if getattr(reporter, "closed", False):  # stdout closed: every record kept, but say so
        return result.exit_status or EXIT_FAILED
    return result.exit_status


def _observed(reporter: Reporter, project: Project, targets: list[str], trace: str | None,
              page: str | None, watching: bool) -> Reporter:
    from buildflow.report import Observer, observed

    extra: list[Observer] = []
    if trace:
        from buildflow.report.trace import TraceWriter

        extra.append(TraceWriter(trace, reporter.warn))
    if page:
        from buildflow.report.page import PageWriter

        extra.append(PageWriter(page, project, engine.selected(project, targets,
                                                               invocation_dir()),
                                warn=reporter.warn, keep_reloading=watching))
    return observed(reporter, root=project.root, cache_dir=project.cache_dir,
                    settings=project.settings, variables=project.vars, extra=extra)
