"""Where a task's attempts run: the one interface the scheduler talks to, and the URL that picks
an implementation (`--executor`, `[settings] executor`; SPEC §7).

`local` is `runner.SubprocessRunner`, processes on this machine. `dask://HOST:PORT` is
`executors.dask.DaskExecutor`, a Dask distributed scheduler's workers. Everything else (the
decision, the records, retries, logs) stays in bflow and is the same for both.

An attempt is submitted and its result awaited in one call, `run`, from one of the builder's
`-j` worker threads: the thread already is the attempt's waiter, so a future would be a second
layer of concurrency with no caller. Cancelling is `stop_all`: the builder only ever cancels
every attempt at once (Ctrl-C); a timeout is the executor's own business.

Nothing here imports an implementation: a build with nothing to do, or one run locally, never
imports Dask, and opening an executor connects nothing before its first attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from buildflow.errors import BuildError, UsageError
from buildflow.model import Task

if TYPE_CHECKING:
    from typing import IO

    from buildflow.runner import RunResult

LOCAL = "local"


class AttemptLost(BuildError):
    """An attempt that started and whose end the executor cannot learn (a lost cluster): the
    build stops, and the attempt counts as one that ran and failed."""


class Executor(Protocol):
    def run(self, task: Task, root: str, env: Mapping[str, str], log: IO[bytes]) -> RunResult:
        """Run one attempt of `task` (every command in order, stopping at the first failure) to
        its end and return how it ended. Its output goes into `log`, which is left positioned
        at its end. Called from several threads at once."""

    def stop_all(self) -> None:
        """Cancel every attempt, running or waiting, with its whole process groups, and start
        no more; called once, on interrupt, from any thread."""

    def close(self) -> None:
        """Let go of what the executor holds (a connection), once the build is over."""


def open_executor(url: str, *, attached_stdout: int = 1) -> Executor:
    """The executor `url` names (`local` or `dask://HOST:PORT`); `attached_stdout` is where an
    interactive task's stdout goes (they always run locally). Connects to nothing yet."""
    problem = url_problem(url)
    if problem:
        raise UsageError(f"executor {url} (--executor, else settings.executor): {problem}")
    from buildflow.runner import SubprocessRunner

    local = SubprocessRunner(attached_stdout=attached_stdout)
    if url == LOCAL:
        return local
    from buildflow.executors.dask import DaskExecutor

    return DaskExecutor(url, local=local)


def url_problem(url: str) -> str:
    """What is wrong with an executor URL ("" if nothing)."""
    if url == LOCAL:
        return ""
    scheme, sep, address = url.partition("://")
    host, colon, port = address.rpartition(":")
    if not sep or scheme not in ("dask", "dask+tls"):
        return "expected 'local' or 'dask://HOST:PORT' (a Dask scheduler's address)"
    if not (colon and host and port.isdigit() and "/" not in address):
        return f"expected {scheme}://HOST:PORT, such as {scheme}://scheduler.example:8786"
    if not 0 < int(port) < 65536:
        return f"the port {port} is not a number from 1 to 65535"
    return ""
