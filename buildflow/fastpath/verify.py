"""BFLOW_VERIFY=1: every answer a shortcut gives is checked against the full decision (SPEC
§2). The proof's "nothing to do" and its choice of what an edit reaches, the project cache's
project, and the records an incremental build rebuilds from the proof are each compared with
what a fresh load, the state and `staleness.survey` give; a difference stops the build with
exit 3 (`ShortcutDisagrees`), naming both answers. Slow on purpose: for tests and for hunting
a wrong no-op, never needed for a correct build."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from buildflow import engine
from buildflow.errors import BuildError, ShortcutDisagrees
from buildflow.hashing import UNKNOWN
from buildflow.model import Project
from buildflow.staleness import survey
from buildflow.state import TaskRecord


def project_loaded(cached: Project, fresh: Project) -> None:
    """The project cache served `cached`; a fresh load gave `fresh`."""
    from buildflow.fastpath.projectcache import encode

    if encode(cached) != encode(fresh):
        ours = {n: t for n, t in cached.tasks.items() if fresh.tasks.get(n) != t}
        theirs = {n: t for n, t in fresh.tasks.items() if cached.tasks.get(n) != t}
        raise ShortcutDisagrees(
            "BFLOW_VERIFY: the project cache served another project than a fresh load gives: "
            f"cached {sorted(ours) or 'same tasks'}, fresh {sorted(theirs) or 'same tasks'}")


def stale_within(flowfile: str, overrides: Mapping[str, str], targets: Sequence[str],
                 cwd: str, part: Collection[str], shortcut: str) -> None:
    """The fast path takes every task outside `part` to be up to date (`shortcut` says how it
    answered); the full decision, on a fresh load, must find no other stale task."""
    from buildflow.project import load

    project, state, _ = engine.as_built(load(flowfile, overrides))
    names = engine.selected(project, targets, cwd)
    file_hash = engine.hasher_for(project, state).file_hash

    def readable_hash(path: str) -> str:
        """A file the build cannot hash fails the tasks reading it, not the build: to the
        decision here, it is one that changed."""
        try:
            return file_hash(path)
        except BuildError:
            return UNKNOWN

    decisions = survey(project, names, state, readable_hash)
    missed = {name: d.reasons[0] for name, d in decisions.items()
              if d.stale and name not in part}
    if missed:
        listed = "; ".join(f"{name}: {reason}" for name, reason in sorted(missed.items()))
        raise ShortcutDisagrees(
            f"BFLOW_VERIFY: the fast path said {shortcut}; the full decision also finds "
            f"stale {listed}")


def records_kept(state_file: str, records: Mapping[str, TaskRecord]) -> None:
    """The records an incremental build rebuilt from the proof must be the state's own, in
    every field the decision reads."""
    from buildflow.state import State

    real = State(state_file).load().tasks
    for name, record in records.items():
        theirs = real.get(name)
        if theirs is None or theirs._replace(duration=0.0) != record._replace(duration=0.0):
            raise ShortcutDisagrees(
                f"BFLOW_VERIFY: the proof's record of task '{name}' is {tuple(record)[:4]}, "
                f"the state's {tuple(theirs)[:4] if theirs else 'none'}")
