"""`bflow build`: run what is stale, report through the chosen reporter."""

from __future__ import annotations

from collections.abc import Callable

from buildflow import engine, reporters
from buildflow.commands import invocation_dir
from buildflow.errors import EXIT_FAILED
from buildflow.model import Project
from buildflow.scheduler import BuildResult


def run(project: Project, *, targets: list[str], jobs: int | None, keep_going: bool,
        dry_run: bool, force: bool, lock_timeout: float | None, quiet: bool, verbose: bool,
        plain: bool, json: bool, cache: bool = True,
        on_result: Callable[[BuildResult], None] | None = None) -> int:
    """`on_result` sees what a build (not a dry run) left, before the reporter closes: where
    the CLI lets the fast path remember it."""
    reporter = reporters.choose(json=json, plain=plain, quiet=quiet, verbose=verbose)
    try:
        result = engine.build(project, targets, jobs=jobs, keep_going=keep_going, force=force,
                              dry_run=dry_run, reporter=reporter, lock_timeout=lock_timeout,
                              cwd=invocation_dir(), cache=cache)
        if on_result is not None and not dry_run:
            on_result(result)
    finally:
        reporter.close()
    if getattr(reporter, "closed", False):  # stdout closed: every record kept, but say so
        return result.exit_status or EXIT_FAILED
    return result.exit_status
