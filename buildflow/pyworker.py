"""A worker process for `py` tasks (see `pyworkers` for bflow's side): it reads one task at a
time from its socket, with the task's log as a file descriptor, runs the function with the log
as its stdout and stderr, and answers one byte. It exits when bflow closes the socket.

The request is marshalled: (reference, root, cwd, env, name, item, inputs, outputs, depfile,
vars). The environment and the working directory are the task's while it runs, so programs
the function starts see what a command of the task would.
"""

from __future__ import annotations

import importlib
import marshal
import os
import socket
import sys
from collections.abc import Callable, Mapping
from types import AsyncGeneratorType, CoroutineType, GeneratorType, MappingProxyType

from buildflow import sourceimport

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: every worker starts so
if TYPE_CHECKING:
    from typing import TextIO

# Set in a worker: `Project.main()` then does nothing, so a build script imported for its
# functions (`build:compile`) does not start a build of its own.
IN_WORKER = False
_FROM_SOURCE: dict[str, sourceimport.ProjectSources] = {}  # by project root


class Context:
    """What a `py` task's function is called with (SPEC §1 "Python tasks"): paths relative to
    the project root, and the root itself (absolute), to find them from a task's `cwd`;
    `vars` and `env` read-only; `log` the task's output."""

    def __init__(self, name: str, item: str | None, inputs: list[str], outputs: list[str],
                 depfile: str | None, vars: Mapping[str, str], env: Mapping[str, str],
                 log: TextIO, root: str) -> None:
        self.root = root
        self.name = name
        self.item = item
        self.inputs = inputs
        self.outputs = outputs
        self.depfile = depfile
        self.vars = vars
        self.env = env
        self.log = log

    @property
    def input(self) -> str:
        """The first input, as `{input}` is in a command."""
        return self.inputs[0]

    @property
    def output(self) -> str:
        """The first output, as `{output}` is in a command."""
        return self.outputs[0]

    def __repr__(self) -> str:
        return f"Context(name={self.name!r}, item={self.item!r})"


def serve(fd: int) -> None:
    """Run tasks from the socket `fd` until bflow closes it, then end the process at once:
    a thread a function started (not a daemon) would keep the worker, and what it started,
    alive past its build."""
    try:
        _serve(fd)
    finally:
        _flush_streams()
        os._exit(0)


def _serve(fd: int) -> None:
    global IN_WORKER
    IN_WORKER = True
    connection = socket.socket(fileno=fd)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    while True:
        try:
            head, fds, _, _ = socket.recv_fds(connection, 8, 1)
            if not head:
                return
            head += _exactly(connection, 8 - len(head))
            request = marshal.loads(_exactly(connection, int.from_bytes(head, "little")))
        except (OSError, EOFError):
            return
        ok = _run(request, fds[0], null)
        try:
            connection.sendall(b"\0" if ok else b"\1")
        except OSError:
            return


def _exactly(connection: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def _run(request: tuple[object, ...], log_fd: int, null: int) -> bool:
    """Run one task with `log_fd` as stdout and stderr; whether it succeeded. The environment
    and directory are set only when they differ from the last task's (most tasks of a build
    share them, and setting the environment costs a call per variable)."""
    reference, root, cwd, env, name, item, inputs, outputs, depfile, variables = request
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        assert isinstance(env, dict) and isinstance(root, str) and isinstance(cwd, str)
        if os.environ != env:
            os.environ.clear()
            os.environ.update(env)
        if os.getcwd() != cwd:
            os.chdir(cwd)
        if root not in sys.path[:1]:
            sys.path.insert(0, root)
        if root not in _FROM_SOURCE:  # the project's modules, never a stale .pyc of them
            _FROM_SOURCE[root] = sourceimport.install(root)
        elif _FROM_SOURCE[root].changed():  # a task wrote a module an earlier one imported
            _FROM_SOURCE[root].forget()
        function = _function(str(reference))
        result = function(Context(str(name), item if isinstance(item, str) else None,
                         list(inputs), list(outputs),  # type: ignore[call-overload]
                         depfile if isinstance(depfile, str) else None,
                         MappingProxyType(dict(variables)),  # type: ignore[call-overload]
                         MappingProxyType(dict(env)), sys.stdout, root))
        if isinstance(result, (CoroutineType, GeneratorType, AsyncGeneratorType)):
            if not isinstance(result, AsyncGeneratorType):
                result.close()  # never started, and never will: no warning that it was not
            print(f"bflow: {reference} returned a {type(result).__name__} without running its "
                  "body (an `async def`, or a function with `yield`): make it a plain "
                  "function (an `async def` can be run with asyncio.run inside one)",
                  file=sys.stderr)
            ok = False
        else:
            ok = True
    except SystemExit as exc:
        ok = exc.code in (None, 0)
        if not ok:
            _print_traceback(exc)
    except BaseException as exc:  # noqa: BLE001 - any failure of the user's function fails it
        _print_traceback(exc)
        ok = False
    finally:
        _flush_streams()
        os.dup2(null, 1)
        os.dup2(null, 2)
    return ok


def _flush_streams() -> None:
    """Flush stdout and stderr into the log; one the function closed (a `TextIOWrapper` it
    put around `sys.stdout.buffer` closes that when collected) is opened again on its file
    descriptor, for the next task."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        try:
            stream.flush()
        except ValueError:  # closed
            setattr(sys, name, open(fd, "w", buffering=1, closefd=False,
                                    errors="backslashreplace"))


def _print_traceback(exc: BaseException) -> None:
    """The traceback from the user's code down, without this module's frame."""
    import traceback

    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def _function(reference: str) -> Callable[[Context], object]:
    module_name, _, name = reference.partition(":")
    function = getattr(importlib.import_module(module_name), name)
    if not callable(function):
        raise TypeError(f"{reference} is not callable")
    return function  # type: ignore[no-any-return]
