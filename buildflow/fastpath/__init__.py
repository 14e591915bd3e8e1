"""The fast path: a cache of the staleness decision, so that a build with nothing (or little)
to do skips loading the project and the state.

One door in, `try_build`, which answers a plain build's command line when the proof the last
build left still holds (nothing the decision read has changed: say so; a few files changed:
build just what they reach) and returns None otherwise, when the CLI builds the full way. One
call after a full build, `remember`, which leaves the proof. And `load`, the project through
the project cache. The engine never imports this package; only the CLI does.

Its files are named and versioned in `formats`. Every module here imports only what a no-op
needs: the engine is imported when there is something to build. With BFLOW_VERIFY=1 every
answer it gives is checked against the full decision (`verify`).
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from buildflow.events import Reporter
    from buildflow.fastpath.proof import Proof
    from buildflow.fastpath.projectcache import Loaded
    from buildflow.model import Passthrough
    from buildflow.scheduler import BuildResult


class FastOptions:
    """What the fast path needs to know of a build's command line. (Not a NamedTuple: the
    fast path does without importing typing.)"""

    def __init__(self, *, file: str | None = None, jobs: int | None = None,
                 keep_going: bool = False, quiet: bool = False, plain: bool = False,
                 stream: bool = False, cache: bool = True, executor: str | None = None) -> None:
        self.file, self.jobs, self.keep_going, self.quiet, self.plain, self.stream = \
            file, jobs, keep_going, quiet, plain, stream
        self.cache = cache  # False: --no-cache
        self.executor = executor  # --executor; None: the Flowfile's


def try_build(targets: Sequence[str], overrides: Mapping[str, str],
              options: FastOptions) -> int | None:
    """The exit status of a build of `targets` answered from the last build's proof: nothing
    to do (printing the summary a full no-op build prints), or just what the changed files
    reach, built without loading the project; None when the proof cannot say (build the full
    way)."""
    from buildflow.fastpath import proof as proofs
    from buildflow.gcpause import paused

    started = time.perf_counter()
    proof = proofs.open_proof(file=options.file, cwd=os.getcwd(), targets=targets,
                              overrides=overrides)
    if proof is None:
        return None
    try:
        with paused():  # tens of thousands of rows, all live: collections would find nothing
            changed = proof.changes(on_change=_get_ready_to_build)
        if changed is None:
            return None
        check_part = None
        if verifying():
            from buildflow.fastpath import verify

            def check_part(part: Sequence[str]) -> None:
                verify.stale_within(proof.flowfile, overrides, targets, os.getcwd(), part,
                                    f"only these may be stale: {', '.join(part) or 'none'}")
        if not changed:
            if check_part is not None:
                check_part(())
            proof.refresh()
            return _nothing_to_do(proof.count, time.perf_counter() - started, options.plain)
        from buildflow import reporters
        from buildflow.fastpath import incremental

        reporter = _observed(reporters.choose(plain=options.plain, quiet=options.quiet,
                                              stream=options.stream), proof)
        try:
            result = incremental.build(proof, changed, jobs=options.jobs,
                                       keep_going=options.keep_going, reporter=reporter,
                                       cache=options.cache, executor=options.executor,
                                       check_part=check_part)
        finally:
            reporter.close()
        return None if result is None else result.exit_status
    finally:
        proof.close()


def load(*, file: str | None, overrides: Mapping[str, str],
         args: Passthrough | None = None) -> Loaded:
    """Find (or take) the Flowfile and load it, with command-line var overrides (and the
    `{args}` after `--`); from the project cache when nothing it depends on has changed (never
    with `args`, which the cache's key does not hold)."""
    from buildflow.fastpath import projectcache
    from buildflow.fastpath.projectcache import Loaded
    from buildflow.flowfile import resolve_path
    from buildflow.project import load as load_project

    path = resolve_path(file, None)
    if args is not None:
        return Loaded(load_project(path, overrides, args=args))
    loaded = projectcache.load(path, overrides, load_project)
    if loaded.from_cache and verifying():
        from buildflow.fastpath import verify

        verify.project_loaded(loaded.project, load_project(loaded.project.flowfile, overrides))
    return loaded


def remember(loaded: Loaded, result: BuildResult, targets: Sequence[str], cwd: str) -> None:
    """After a full build of `loaded`'s project: store the project cache entry the load could
    not (no cache dir yet), or move it to the outputs the build wrote, and, when the build
    succeeded, leave the proof that lets the next build of the same targets skip loading
    (docs/speed.md says what that costs)."""
    from buildflow.errors import EXIT_OK
    from buildflow.fastpath import record
    from buildflow.scheduler import Outcome

    if result.project is not loaded.project:
        return  # reloaded during the build (outputs pruned): its basis is another's
    writing = (Outcome.RAN, Outcome.RESTORED, Outcome.FAILED)
    loaded.settle(wrote=any(task.outcome in writing for task in result.tasks.values()))
    if result.exit_status == EXIT_OK and result.state is not None:
        record.record(loaded.project, loaded.basis, result.state, result.selected, targets,
                      cwd)


def _observed(reporter: Reporter, proof: Proof) -> Reporter:
    """The reporter of an incremental build, observed as a full build's is (its history, its
    hooks), with the settings the proof keeps."""
    from buildflow.model import Settings
    from buildflow.report import observed

    settings, variables = (Settings(*proof.graph[0]), proof.graph[1]) \
        if proof.graph is not None else (Settings(), {})
    return observed(reporter, root=proof.root, cache_dir=os.path.dirname(proof.file),
                    settings=settings, variables=variables)


def verifying() -> bool:
    """BFLOW_VERIFY=1: check every shortcut's answer against the full decision."""
    return os.environ.get("BFLOW_VERIFY", "") not in ("", "0")


def _get_ready_to_build() -> None:
    """Import what an incremental build needs, called while the other CPU is still statting,
    rather than once the stats are done."""
    from buildflow import reporters  # noqa: F401
    from buildflow.fastpath import incremental  # noqa: F401


def _nothing_to_do(count: int, duration: float, plain: bool) -> int:
    """Print the summary a full no-op build prints."""
    from buildflow.errors import EXIT_OK
    from buildflow.reporters import wants_plain
    from buildflow.reporters.summary import summary_line

    line = summary_line(ran=0, up_to_date=count, failed=0, skipped=0, exit_status=EXIT_OK,
                        duration=duration)
    if not (plain or wants_plain(sys.stdout)):
        line = f"\x1b[1;32m{line}\x1b[0m"  # bold green, as the live display ends a success
    print(line, flush=True)
    return EXIT_OK
