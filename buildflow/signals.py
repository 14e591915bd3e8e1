"""The signal numbers and `signal()` that a build needs, from `_signal`, the module under
`signal`: importing `signal` builds enums of every signal and handler (and imports `enum`),
which a no-op would pay for at every start (docs/speed.md). Interpreters other than CPython
get them from `signal`. And `without_signals`, which keeps the signals that stop bflow for the
main thread."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from signal import (SIG_BLOCK, SIG_IGN, SIG_SETMASK, SIGHUP, SIGINT, SIGKILL, SIGPIPE,
                        SIGTERM, SIGTTOU, SIGXFSZ, getsignal, pthread_sigmask, raise_signal,
                        signal)
    from typing import TypeVar

    T = TypeVar("T")
else:
    try:
        from _signal import (SIG_BLOCK, SIG_IGN, SIG_SETMASK, SIGHUP, SIGINT, SIGKILL,
                             SIGPIPE, SIGTERM, SIGTTOU, SIGXFSZ, getsignal, pthread_sigmask,
                             raise_signal, signal)
    except ImportError:
        from signal import (SIG_BLOCK, SIG_IGN, SIG_SETMASK, SIGHUP, SIGINT, SIGKILL,
                            SIGPIPE, SIGTERM, SIGTTOU, SIGXFSZ, getsignal, pthread_sigmask,
                            raise_signal, signal)

# The longest the main thread waits before it may run a signal's handler. Python runs handlers
# only there, a signal another thread takes does not end its wait, and one that lands just
# before the wait blocks only sets the handler's flag: a wait with no limit can miss Ctrl-C.
SIGNAL_CHECK_SECONDS = 0.1

__all__ = ["SIGNAL_CHECK_SECONDS", "SIG_BLOCK", "SIG_SETMASK", "SIGINT", "SIGKILL", "SIGPIPE",
           "SIGTERM", "SIGTTOU", "SIGXFSZ", "Flag", "interrupts", "pthread_sigmask",
           "raise_signal", "run_alone", "signal", "without_signals"]


class Flag:
    """A flag that a signal handler may set, and others read by polling. A handler runs in
    the main thread between two of its steps, wherever it is: `threading.Event.set` takes a
    lock, so a handler setting an Event while the main thread is inside `set` (a second
    Ctrl-C in the first one's handler) waits for that lock for ever, and bflow with it."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


def interrupts() -> tuple[int, ...]:
    """The signals that stop bflow as Ctrl-C does: SIGINT, SIGTERM, and SIGHUP (the terminal
    closed, the ssh connection dropped), as Ninja takes it, but each that bflow was started
    with ignored, which a handler must not undo, as Make leaves it: SIGHUP under `nohup`,
    SIGINT in a background job of a script (`bflow &`), which the shell shields from the
    terminal's Ctrl-C. Its commands run in sessions of their own, which a hangup never
    reaches: bflow stops them, or they would run on."""
    return tuple(signum for signum in (SIGINT, SIGTERM, SIGHUP) if getsignal(signum) != SIG_IGN)


def without_signals(start: Callable[[], T]) -> T:
    """Call `start` (a thread's, or a library's that starts threads) with the `interrupts`
    blocked, so that every thread it starts keeps them blocked and the kernel delivers them
    to another thread. Python runs handlers in the main thread only, and a signal another
    thread takes does not wake it from a wait on a lock: a Ctrl-C went unseen until
    something else woke it. Never for a thread that starts processes: they would inherit
    the mask, and ignore Ctrl-C."""
    old = pthread_sigmask(SIG_BLOCK, interrupts())
    try:
        return start()
    finally:
        pthread_sigmask(SIG_SETMASK, old)


def signal_name(signum: int) -> str:
    """`SIGTERM` for 15: for messages, so `signal`'s enums are built only when one is shown."""
    import signal as signals

    try:
        return signals.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def run_alone(argv: list[str], cwd: str, env: Mapping[str, str] | None = None, *,
              capture: bool = False, stop: Flag | None = None,
              stdin: bytes | None = None, output: int | None = None
              ) -> tuple[int, bytes, bytes]:
    """Run `argv` as the leader of a process group of its own and wait for it: its exit
    status and, with `capture`, its stdout and stderr (else both go to the file descriptor
    `output`, by default nowhere). It reads `stdin`, else nothing. The whole group is killed
    once `stop` is set, and when Ctrl-C or SIGTERM stops bflow meanwhile: SIGTERM reaches
    bflow alone, and what the command started (a `sleep` in the background) would run on.
    OSError when it cannot start."""
    import subprocess

    sink = subprocess.PIPE if capture else subprocess.DEVNULL if output is None else output
    process: subprocess.Popen[bytes] | None = None
    try:
        with _HeldInterrupts():  # until its pid is known
            process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=sink, stderr=sink, start_new_session=True,
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE)
        while True:
            try:
                stdout, stderr = process.communicate(stdin,
                                                     timeout=None if stop is None else 0.05)
                return process.returncode, stdout or b"", stderr or b""
            except subprocess.TimeoutExpired:
                if stop is not None and stop.is_set():
                    _kill_group(process.pid)
                    return process.wait(), b"", b""
    except BaseException:  # Ctrl-C, SIGTERM
        if process is not None:
            _kill_group(process.pid)
            process.wait()
        raise


def _kill_group(pgid: int) -> None:
    """SIGKILL to the process group `pgid`, which may be gone already."""
    import os

    try:
        os.killpg(pgid, SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _HeldInterrupts:
    """The `interrupts` held back for a `with` block (a child being started, whose pid is
    known only once `Popen` returns: stopped in between, bflow would leave it running), then
    delivered as they came, to the handlers they had. In the main thread only, the one
    whose handlers may be set; elsewhere a no-op."""

    def __enter__(self) -> None:
        import threading

        self.caught: list[int] = []
        self.previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in interrupts():
                self.previous[signum] = signal(signum, self._hold)

    def _hold(self, signum: int, frame: object) -> None:
        self.caught.append(signum)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal(signum, handler)  # type: ignore[arg-type]
        if self.caught:
            raise_signal(self.caught[0])
