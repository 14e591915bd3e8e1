"""The Dask executor (`--executor dask://HOST:PORT`): each attempt is one Dask task, run on a
worker by `executors.remote.run_attempt`; bflow keeps everything else (SPEC §7).

`distributed` is imported, and the scheduler connected to, when the first attempt is
submitted: a build with nothing to run never pays for either. Each of the builder's `-j`
threads waits for its own attempt's future, so `-j` bounds how many run at once on the
cluster. Interactive tasks run here, on bflow's terminal, through the local executor.

A worker lost while it runs an attempt is Dask's to handle: the scheduler runs the task again
on another worker, and the attempt goes on as one (the new run's output follows the lost one's
in the log). Only when workers died under it more often than Dask's `allowed-failures` does
the attempt fail.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

from buildflow.errors import BuildError
from buildflow.executors import AttemptLost, remote
from buildflow.model import Task
from buildflow.runner import RunResult, SubprocessRunner
from buildflow.signals import SIGKILL, SIGTERM

if TYPE_CHECKING:
    from typing import IO, Any

CONNECT_SECONDS = 10
_INSTALL = "pip install 'buildflow[dask]'"


class DaskExecutor:
    """Runs attempts on the workers of the Dask scheduler at `url`. Thread-safe."""

    def __init__(self, url: str, *, local: SubprocessRunner) -> None:
        scheme, _, address = url.partition("://")
        self.url = url
        self.address = f"{'tls' if scheme == 'dask+tls' else 'tcp'}://{address}"
        self.local = local
        self._lock = threading.Lock()
        self._connecting = threading.Lock()  # not `_lock`: `stop_all` must not wait for it
        self._client: Any = None
        self._futures: dict[str, Any] = {}  # attempt id -> its future, while it runs
        self._stopping = False
        self._unreachable: BuildError | None = None  # why no client could be had

    def run(self, task: Task, root: str, env: Mapping[str, str], log: IO[bytes]) -> RunResult:
        if task.interactive:
            return self.local.run(task, root, env, log)
        client = self._connect()
        if client is None:  # stopped while connecting
            return RunResult(None, signal=SIGTERM)
        attempt = f"bflow-{task.name}-{uuid.uuid4().hex}"
        with self._lock:
            if self._stopping:
                return RunResult(None, signal=SIGTERM)
            # pure=False and a key of its own: an attempt is never shared with another
            future = client.submit(remote.run_attempt, attempt, task, root, dict(env),
                                   log.name, key=attempt, pure=False)
            self._futures[attempt] = future
        try:
            return self._result(future, task, log)
        finally:
            with self._lock:
                del self._futures[attempt]
            log.seek(0, os.SEEK_END)  # past what the worker wrote, for what bflow adds

    def _result(self, future: Any, task: Task, log: IO[bytes]) -> RunResult:
        """The attempt's result, once its future has one."""
        from asyncio import CancelledError

        from distributed import KilledWorker

        try:
            result: RunResult = future.result()
            return result
        except KilledWorker as exc:  # Dask gave up: workers kept dying under the attempt
            log.seek(0, os.SEEK_END)
            log.write(f"bflow: {exc.allowed_failures + 1} Dask workers died while running this "
                      "attempt; Dask gave up on it (KilledWorker)\n".encode())
            return RunResult(None, signal=SIGKILL)
        except remote.NotShared as exc:
            raise BuildError(f"task '{task.name}': {exc}") from None
        except (Exception, CancelledError) as exc:
            if self._stopping:  # cancelled by `stop_all` (Ctrl-C)
                return RunResult(None, signal=SIGTERM)
            raise AttemptLost(f"task '{task.name}': the Dask cluster at {self.url} could not "
                              f"run it: {type(exc).__name__}: {exc}") from None

    def stop_all(self) -> None:
        """Stop the running attempts' process groups on every worker (and keep the waiting
        ones from starting there), then cancel their futures."""
        with self._lock:
            self._stopping = True
            client, attempts = self._client, list(self._futures)
            futures = list(self._futures.values())
        self.local.stop_all()
        if client is None or not attempts:
            return
        try:
            client.run(remote.stop, attempts, on_error="ignore")
        finally:
            client.cancel(futures)

    def close(self) -> None:
        # A client whose scheduler is gone is reconnecting ("connecting"): asking it to sweep
        # would wait out Dask's reconnect (10 s) after the build's summary, for nothing.
        if self._client is not None and getattr(self._client, "status", "") == "running":
            try:  # what a worker that died during the build left running (`remote.sweep`)
                self._client.run(remote.sweep, on_error="ignore")
            except Exception:  # noqa: BLE001 - the scheduler is gone, and the workers with
                pass  # it out of reach: the build has said what failed, and its status stands
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - the same: Dask's own close may trip over the
                pass  # lost connection ("Cannot change state of expiring Timeout")

    def _connect(self) -> Any:
        """The client, connected on first use; None once the build is stopping. The
        connection is made on a thread of its own and waited for at most CONNECT_SECONDS,
        as Dask's own timeout does not bound its handshake: a port where something else
        listens, or a stopped scheduler, would hold the build (and Ctrl-C) for as long as
        that peer keeps the connection open."""
        with self._connecting:
            if self._unreachable is not None:  # for each job thread that waited: its task
                raise self._unreachable  # never started, as the first one's did not
            if self._client is None and not self._stopping:
                try:
                    import distributed
                except ImportError:
                    raise self._unreachable_for(
                        f"executor {self.url} needs Dask's distributed package: "
                        f"{_INSTALL}") from None
                try:
                    _listening(self.address)
                except OSError as exc:
                    raise self._cannot_reach(exc) from None
                made: dict[str, Any] = {}
                client: Any = distributed.Client  # untyped

                def connect() -> None:
                    try:
                        made["client"] = client(self.address, timeout=CONNECT_SECONDS,
                                                set_as_default=False)
                    except BaseException as exc:  # noqa: BLE001 - handed to the waiter
                        made["error"] = exc

                connecting = threading.Thread(target=connect, name="bflow-dask-connect",
                                              daemon=True)
                connecting.start()
                deadline = time.monotonic() + CONNECT_SECONDS
                while connecting.is_alive() and not self._stopping \
                        and time.monotonic() < deadline:
                    connecting.join(0.05)
                if "client" in made:
                    self._client = made["client"]
                elif not self._stopping:
                    error = made.get("error") or TimeoutError(
                        f"no answer from {self.address} in {CONNECT_SECONDS} s: is a Dask "
                        "scheduler listening there?")
                    raise self._cannot_reach(error)
            return self._client

    def _cannot_reach(self, error: BaseException) -> BuildError:
        return self._unreachable_for(
            f"executor {self.url} (--executor, else settings.executor): cannot reach the Dask "
            f"scheduler ({error}); start one with `dask scheduler` and workers with `dask "
            "worker ADDRESS`")

    def _unreachable_for(self, message: str) -> BuildError:
        """The fault that no client can be had, kept for the threads that wait for one."""
        self._unreachable = BuildError(message)
        return self._unreachable


def _listening(address: str) -> None:
    """Raise OSError at once when nothing listens at `address` (`tcp://HOST:PORT`): Dask's
    client retries a refused connection until its timeout, so a mistyped port would cost
    CONNECT_SECONDS before the error."""
    import socket

    host, _, port = address.partition("://")[2].rpartition(":")
    socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
