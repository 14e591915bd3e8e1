"""The output cache (SPEC §6): a stale task whose action key is in the cache has its outputs
restored instead of running its command.

The builder knows only this module: `OutputCache`, the calls it makes (`restore` a stale
task, `store` a task that ran, `stop` on Ctrl-C, `close` at the end of the build), and
`NO_CACHE` for a build without one. The real cache (`store.Cache`: keys, the local store, the HTTP remote) is
imported only when a build opens it, so a no-op build never loads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from buildflow.model import Project, Task
    from buildflow.staleness import Decision
    from buildflow.state import TaskRecord


class RemoteError(Exception):
    """The remote store cannot be used for the rest of this build (down, refusing,
    unauthorized). Here rather than beside the remote store, so that a cache with no remote
    never imports that store's HTTP client (`http.client` brings `email`, `ssl` and `socket`:
    the largest import of an edit's build)."""


class Restored(NamedTuple):
    """A task restored from the cache: the depfile inputs its entry was checked against (with
    their hashes now, as a run would record them) and its saved output, to replay."""

    depfile_inputs: dict[str, str]
    log: bytes | None


class OutputCache(Protocol):
    def may_hold(self, task: Task) -> bool:
        """Whether a lookup of `task` can hit: when not, the builder starts it at once."""

    def restore(self, task: Task, decision: Decision) -> Restored | None:
        """Restore `task`'s outputs if the cache holds its action; None (a miss) otherwise.
        Called by a worker thread, outside the builder's lock."""

    def store(self, task: Task, record: TaskRecord, file_hash: Callable[[str], str]) -> None:
        """Store what `task`'s successful run left (`record`), unless `file_hash` shows an
        input changed during the run. Called under the builder's lock: it only queues."""

    def stop(self) -> None:
        """Give up the lookups in progress, as misses: the build was interrupted."""

    def close(self) -> None:
        """Finish storing (uploads included) before the build returns."""


class NoCache:
    """The cache turned off (`--no-cache`, BFLOW_CACHE=0): every lookup misses."""

    def may_hold(self, task: Task) -> bool:
        return False

    def restore(self, task: Task, decision: Decision) -> Restored | None:
        return None

    def store(self, task: Task, record: TaskRecord, file_hash: Callable[[str], str]) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


NO_CACHE = NoCache()


def cacheable(task: Task) -> bool:
    """Whether the cache may hold `task` (SPEC §6): a task with outputs unless `cache =
    false`, one without outputs only with `cache = true`, never `always` or `interactive`, nor
    one whose `when` runs a command (what it checks is outside the action key). A directory
    output stands for files known only after the run, which entries do not list (yet)."""
    if task.always or task.interactive or task.cache is False or task.dir_outputs or \
            any(key == "cmd" for key, _ in task.when):
        return False
    return bool(task.outputs) or task.cache is True


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """BFLOW_CACHE=0 turns the whole output cache off, like `--no-cache`."""
    return environ.get("BFLOW_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def open_cache(project: Project, warn: Callable[[str], None], *, use: bool = True,
               environ: Mapping[str, str] = os.environ) -> OutputCache:
    """The output cache for a build of `project`, as the environment and the Flowfile set it
    up; NO_CACHE when it is turned off."""
    if not use or not enabled(environ):
        return NO_CACHE
    from buildflow.cache.store import Cache

    return Cache.configured(project, warn, environ)
