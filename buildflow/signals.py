"""The signal numbers and `signal()` that a build needs, from `_signal`, the module under
`signal`: importing `signal` builds enums of every signal and handler (and imports `enum`),
which a no-op would pay for at every start (docs/speed.md). Interpreters other than CPython get them from `signal`."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from signal import (SIG_BLOCK, SIG_SETMASK, SIGINT, SIGKILL, SIGPIPE, SIGTERM,
                        SIGTTOU, SIGXFSZ, pthread_sigmask, signal)
else:
    try:
        from _signal import (SIG_BLOCK, SIG_SETMASK, SIGINT, SIGKILL, SIGPIPE, SIGTERM,
                             SIGTTOU, SIGXFSZ, pthread_sigmask, signal)
    except ImportError:
        from signal import (SIG_BLOCK, SIG_SETMASK, SIGINT, SIGKILL, SIGPIPE, SIGTERM,
                            SIGTTOU, SIGXFSZ, pthread_sigmask, signal)

__all__ = ["SIG_BLOCK", "SIG_SETMASK", "SIGINT", "SIGKILL", "SIGPIPE", "SIGTERM",
           "SIGTTOU", "SIGXFSZ", "pthread_sigmask", "signal"]


def signal_name(signum: int) -> str:
    """`SIGTERM` for 15: for messages, so `signal`'s enums are built only when one is shown."""
    import signal as signals

    try:
        return signals.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
