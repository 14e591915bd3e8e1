"""Runs the real `bflow` for the tests without paying for a new interpreter each time.

Most of what a test's `bflow` costs is Python starting and importing the engine (every run in
the suite checks its shortcuts against the full decision, so it imports all of it): several
times the build itself on a test's small project. A server process imports `buildflow` once;
each run is a child forked from it that takes the test's directory, environment, argv and
standard streams, then calls the same `buildflow.cli.run` as `python -m buildflow`. Every run
is still its own process, starting from the state the server had after its imports, so nothing
one run does reaches the next.

What the server cannot show, the tests that need it start `python -m buildflow` themselves:
the start-up path and its imports (`test_startup.py`), signals sent to bflow, terminals. CI runs
the decision's tests once more with `BFLOW_TEST_FRESH=1`, a new interpreter for every run.

Run as a script, this file is the server: it reads one JSON request a line on stdin and answers
`{"pid": N}` when the run has started, then `{"status": N}` when it has ended.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

def interpreter_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The variables Python reads only as it starts: a run that sets them differently from
    the server needs an interpreter of its own."""
    return {name: value for name, value in env.items()
            if name.startswith("PYTHON") or name in ("LANG", "LC_ALL", "LC_CTYPE")}


class ForkServer:
    """One server per test process, started on first use with the suite's environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.settings = interpreter_settings(env)
        self._process = subprocess.Popen([sys.executable, __file__], env=dict(env), cwd="/",
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._busy = threading.Lock()
        assert self._process.stdin is not None and self._process.stdout is not None
        self._requests: IO[bytes] = self._process.stdin
        self._answers: IO[bytes] = self._process.stdout
        if self._answer() != {"ready": True}:
            raise RuntimeError("the bflow fork server did not start")

    def run(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str],
            timeout: float) -> subprocess.CompletedProcess[str] | None:
        """bflow's result, as `subprocess.run(..., capture_output=True, text=True)` gives it;
        None when the run needs a fresh interpreter: the server is busy with another (a test's
        own threads), or the run sets what Python reads as it starts (`PYTHONPATH`)."""
        if interpreter_settings(env) != self.settings or not self._busy.acquire(blocking=False):
            return None
        try:
            return self._run(argv, cwd, env, timeout)
        finally:
            self._busy.release()

    def _run(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str],
             timeout: float) -> subprocess.CompletedProcess[str]:
        import tempfile

        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            request = {"argv": list(argv), "cwd": str(cwd), "env": dict(env),
                       "stdout": f"/proc/{os.getpid()}/fd/{out.fileno()}",
                       "stderr": f"/proc/{os.getpid()}/fd/{err.fileno()}"}
            self._requests.write(json.dumps(request).encode() + b"\n")
            self._requests.flush()
            pid = self._answer()["pid"]
            assert isinstance(pid, int)
            timed_out = threading.Event()

            def kill() -> None:
                timed_out.set()
                os.kill(pid, signal.SIGKILL)

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                status = self._answer()["status"]
            finally:
                timer.cancel()
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
            if timed_out.is_set():
                raise subprocess.TimeoutExpired(["bflow", *argv], timeout, stdout, stderr)
            assert isinstance(status, int)
            return subprocess.CompletedProcess(["bflow", *argv], status, stdout, stderr)

    def _answer(self) -> dict[str, object]:
        line = self._answers.readline()
        if not line:
            raise RuntimeError("the bflow fork server ended")
        answer: dict[str, object] = json.loads(line)
        return answer


def _preload() -> None:
    """Import every module of bflow's (and so the standard modules they import), as a run
    may import any of them: a module a run imports itself is read, compiled and set up again
    in every run. Then freeze what is loaded, so that no run's garbage collection walks it,
    touching (and so copying) every page it holds. (bflow imports optional packages, Dask's
    or rich's, only where it uses them, so every module imports here.)"""
    import gc
    import importlib
    import pkgutil

    import buildflow

    for module in pkgutil.walk_packages(buildflow.__path__, "buildflow."):
        if module.name.endswith(".__main__"):  # runs the command line
            continue
        importlib.import_module(module.name)
    gc.collect()
    gc.freeze()


def _serve() -> None:
    _preload()
    answers = sys.stdout.buffer
    answers.write(b'{"ready": true}\n')
    answers.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        answers.write(json.dumps({"pid": pid}).encode() + b"\n")
        answers.flush()
        _, wait_status = os.waitpid(pid, 0)
        answers.write(json.dumps({"status": os.waitstatus_to_exitcode(wait_status)}).encode()
                      + b"\n")
        answers.flush()


def _child(request: dict[str, object]) -> None:
    """Become `bflow ARGV` run in the request's directory and environment; never returns."""
    status = 1
    try:
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                (1, request["stdout"], os.O_WRONLY),
                                (2, request["stderr"], os.O_WRONLY)):
            opened = os.open(str(path), flags)
            os.dup2(opened, fd)
            os.close(opened)
        os.chdir(str(request["cwd"]))
        sys.path[0] = os.getcwd()  # as `python -m` puts it there
        os.environ.clear()
        os.environ.update(request["env"])  # type: ignore[arg-type]
        argv = request["argv"]
        assert isinstance(argv, list)
        sys.argv = ["bflow", *argv]
        from buildflow.cli import run

        run()
    except SystemExit as ended:
        if ended.code is None or isinstance(ended.code, int):
            status = ended.code or 0
        else:
            print(ended.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


if __name__ == "__main__":
    _serve()
