"""Filesystem changes from watchdog, as a queue of `Change`s: OS events (inotify and friends), or
polling when asked, or when the system runs out of inotify watches. watchdog is imported only
here, and only when watch mode starts."""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from buildflow.signals import SIGNAL_CHECK_SECONDS, without_signals
from buildflow.watchset import Change

POLL_INTERVAL = 1.0
CLOSE_GRACE_SECONDS = 5.0  # how long `close` waits for watchdog's threads to end
_KINDS = frozenset({"created", "deleted", "modified", "moved"})
_LIMITS = {
    errno.ENOSPC: "the system's inotify watch limit is reached (fs.inotify.max_user_watches)",
    errno.EMFILE: "the system's inotify instance limit is reached "
                  "(fs.inotify.max_user_instances)",
}


def _not_the_stop_race(record: logging.LogRecord) -> bool:
    """watchdog's inotify emitter logs an error when a read it started ends as the observer is
    being stopped: harmless, and printed on the terminal after the user's Ctrl-C."""
    return not record.getMessage().endswith("called when the thread is inactive")


logging.getLogger("watchdog.observers.inotify").addFilter(_not_the_stop_race)


def make_observer(poll: bool) -> Any:
    if poll:
        from watchdog.observers.polling import PollingObserver

        return PollingObserver(timeout=POLL_INTERVAL)
    from watchdog.observers import Observer

    return Observer()


class _Forward:
    """A watchdog event handler (watchdog only calls `dispatch`) feeding our queue."""

    def __init__(self, changes: queue.SimpleQueue[Change]) -> None:
        self.changes = changes

    def dispatch(self, event: Any) -> None:
        if event.event_type not in _KINDS or (event.is_directory and
                                              event.event_type == "modified"):
            return  # opens, closes, attributes: a build reads every input
        structural = event.event_type != "modified"
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                self.changes.put(Change(os.fsdecode(path), structural))


def _identity(directory: str) -> tuple[int, int] | None:
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class WatchdogSource:
    """A `ChangeSource` over a watchdog observer."""

    def __init__(self, *, poll: bool, warn: Callable[[str], None],
                 observer_for: Callable[[bool], Any] = make_observer) -> None:
        self.changes: queue.SimpleQueue[Change] = queue.SimpleQueue()
        self.handler = _Forward(self.changes)
        self.poll = poll
        self.warn = warn
        self.observer_for = observer_for
        self.observer = observer_for(poll)
        without_signals(self.observer.start)
        self.watches: dict[tuple[str, bool], Any] = {}
        self.identities: dict[tuple[str, bool], tuple[int, int] | None] = {}
        self.replaced: set[str] = set()  # watched directories deleted or moved since

    def watch(self, roots: Collection[tuple[str, bool]]) -> bool:
        """Watch exactly `roots`, (directory, recursive) pairs; a vanished one is skipped.
        A directory replaced since its watch was placed (`rm -rf src && cp -r tpl src`, a
        rename over it) is watched again: the OS's watch followed the old one. It is told by
        the event of its deletion or move, or by another inode (a new directory may get the
        old one's number). Returns whether any watch was placed."""
        identities = {key: _identity(key[0]) for key in roots}
        for key in set(self.watches):
            if key not in identities or identities[key] != self.identities[key] \
                    or key[0] in self.replaced:
                self.observer.unschedule(self.watches.pop(key))
        self.replaced.clear()
        placed = False
        for path, recursive in sorted(set(roots) - set(self.watches)):
            try:
                self.watches[path, recursive] = without_signals(  # it starts a thread
                    lambda: self.observer.schedule(self.handler, path, recursive=recursive))
                self.identities[path, recursive] = identities[path, recursive]
                placed = True
            except FileNotFoundError:
                continue
            except OSError as exc:
                if self.poll or exc.errno not in _LIMITS:
                    raise
                self.warn(f"{_LIMITS[exc.errno]}; falling back to polling, which is slower "
                          f"(raise the limit with sysctl to get events again)")
                self._poll_instead()
                return self.watch(roots)
        return placed

    def _poll_instead(self) -> None:
        self.close()
        self.poll = True
        self.watches.clear()
        self.observer = self.observer_for(True)
        without_signals(self.observer.start)

    def get(self, timeout: float | None) -> Change | None:
        """The next change; None when `timeout` seconds pass without one. Waits in slices, so
        that a Ctrl-C is handled (`SIGNAL_CHECK_SECONDS`; the watch once sat 30 s past one)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SIGNAL_CHECK_SECONDS if deadline is None else min(SIGNAL_CHECK_SECONDS,
                                                             deadline - time.monotonic())
            try:
                change = self.changes.get(timeout=max(left, 0))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            if change.structural and any(path == change.path for path, _ in self.watches):
                self.replaced.add(change.path)
            return change

    def close(self) -> None:
        """Stop the observer. watchdog's `stop` joins its emitter threads, and `join` its
        observer thread, with no time limit; they run here in a thread of their own, waited for
        CLOSE_GRACE_SECONDS at most, so that a thread that does not end cannot keep Ctrl-C from
        ending the watch. watchdog's threads are daemon threads: they end with the process."""
        stopping = threading.Thread(target=self._stop, name="bflow-watch-stop", daemon=True)
        stopping.start()
        stopping.join(CLOSE_GRACE_SECONDS)
        if stopping.is_alive():
            self.warn(f"the file watcher did not stop within {CLOSE_GRACE_SECONDS:g}s; "
                      "leaving it behind")

    def _stop(self) -> None:
        self.observer.stop()
        self.observer.join()
