"""Seeing a build: its trace, a live HTML page, a history of builds with their critical path,
and the hooks that announce it. Each is an observer of the build's events, next to the
reporter that prints them; none of it decides or runs anything in the build itself.

This module and the history are imported by every build that runs something; the hooks, the
trace and the page only by the builds that have or ask for them; none of it by a no-op that
the fast path answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from buildflow import events as ev

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from buildflow.model import Settings


ALL_EVENTS = frozenset(ev.Event.__args__)


class Observer(Protocol):
    """Sees the events its `routes` name, each handed to the function named with its kind
    (after the reporter has seen it); `close` comes once the build has ended and released
    its lock."""

    def routes(self) -> Mapping[type, Callable[[Any], None]]: ...

    def close(self) -> None: ...


class Observed(ev.Relay):
    """A reporter with observers: the builder sees one reporter, and each event goes to the
    reporter first, then to the observers that want it. A 10,000-task build has some 20,000
    events: routing them by kind keeps an event no observer wants to a dict lookup."""

    def __init__(self, reporter: ev.Reporter, observers: Sequence[Observer]) -> None:
        super().__init__(reporter)
        self.observers = tuple(observers)
        routes = [observer.routes() for observer in observers]
        self.routes = {kind: tuple(route[kind] for route in routes if kind in route)
                       for kind in ALL_EVENTS}

    def handle(self, event: ev.Event) -> None:
        self.reporter.handle(event)
        for handle in self.routes[type(event)]:
            handle(event)

    def close(self) -> None:
        """Close the observers first (a hook's warning is still printed), then the reporter."""
        try:
            for observer in self.observers:
                observer.close()
        finally:
            self.reporter.close()


def observed(reporter: ev.Reporter, *, root: str, cache_dir: str, settings: Settings,
             variables: Mapping[str, str], extra: Sequence[Observer] = ()) -> Observed:
    """`reporter` with what every build keeps (its history) and announces (the hooks, with
    the project's `variables` for their `settings.env`), and the `extra` observers asked for
    (a trace, a page)."""
    from buildflow.report.history import HistoryRecorder

    observers: list[Observer] = [HistoryRecorder(cache_dir), *extra]
    if settings.on_success or settings.on_failure:
        from buildflow.report.hooks import Hooks

        observers.append(Hooks(settings, variables, root=root, cache_dir=cache_dir,
                               warn=reporter.warn))
    return Observed(reporter, observers)
