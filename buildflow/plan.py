"""What a build intends to run and what is ready: dependency counts over the selected tasks.

A task becomes ready when everything it depends on has finished; ready tasks come out in the
Flowfile's order, so a build is reproducible. A failure blocks every task below it at once, so
each can name the failure it waits on, whether or not the build goes on.
"""

from __future__ import annotations

import heapq
from collections.abc import Container, Iterable, Mapping

from buildflow.graph import Graph


class Plan:
    def __init__(self, graph: Graph, names: list[str],
                 also_after: Mapping[str, list[str]] | None = None) -> None:
        """`also_after`: more tasks each must wait for, besides the graph's (the writers of
        what its depfile named, `Graph.depfile_links`); all of them among `names`."""
        selected = set(names)
        self.order = self._graph_order = graph.order
        if len(selected) == len(graph.tasks) and not also_after:  # the usual build
            self._downstream = graph.downstream
        else:
            self._downstream = {n: [d for d in graph.downstream[n] if d in selected]
                                for n in names}
        self._waiting = {n: len(selected.intersection(graph.upstream[n])) for n in names}
        for name, ups in (also_after or {}).items():
            for up in ups:
                if name not in self._downstream[up]:
                    self._downstream[up].append(name)
                    self._waiting[name] += 1
        self._ready = [(graph.order[n], n) for n in names if self._waiting[n] == 0]
        heapq.heapify(self._ready)
        self.blocked_by: dict[str, str] = {}  # task -> the failed task it depends on

    @property
    def ready(self) -> int:
        """How many tasks are ready and not yet taken."""
        return len(self._ready)

    def pop_ready(self) -> str | None:
        return heapq.heappop(self._ready)[1] if self._ready else None

    def finished(self, name: str, ok: bool) -> None:
        """`name` is done (ok: ran or up to date); its dependents may become ready."""
        if not ok:
            self._block_below(name, self.blocked_by.get(name, name))
        waiting = self._waiting
        for down in self._downstream[name]:
            left = waiting.get(down)
            if left is None:  # dropped
                continue
            waiting[down] = left - 1
            if left == 1:
                heapq.heappush(self._ready, (self.order[down], down))

    def __contains__(self, name: str) -> bool:
        return name in self._waiting

    def dependents(self, name: str) -> list[str]:
        """The tasks of the plan waiting for `name`."""
        return [down for down in self._downstream[name] if down in self._waiting]

    def add(self, name: str, order: int, upstream: Iterable[str], finished: Container[str],
            blocked_by: str | None = None) -> None:
        """A task found during the build (an instance of a foreach over files the build
        wrote, or a task it needs): it waits for those of `upstream` in the plan that have not
        `finished`, and starts after them in `order` (the Flowfile's place of its task)."""
        if self.order is self._graph_order:  # shared with the graph until now
            self.order = dict(self.order)
            self._downstream = {n: list(downs) for n, downs in self._downstream.items()}
        self.order[name] = order
        self._downstream[name] = []
        self._waiting[name] = 0
        if blocked_by is not None:
            self.blocked_by[name] = blocked_by
        for up in dict.fromkeys(upstream):
            if up in self._waiting and up not in finished:
                self.add_edge(up, name)
        if self._waiting[name] == 0:
            heapq.heappush(self._ready, (order, name))

    def add_edge(self, up: str, down: str) -> None:
        """`down`, which is not ready yet, also waits for `up`."""
        self._downstream[up].append(down)
        self._waiting[down] += 1
        if up in self.blocked_by:
            self.blocked_by.setdefault(down, self.blocked_by[up])

    def drop(self, name: str) -> None:
        """`name`, not ready yet, will not run after all (an instance whose item is gone):
        nothing waits for it any more."""
        del self._waiting[name]
        self.finished(name, ok=True)

    def cycle(self, among: Iterable[str]) -> list[str]:
        """A cycle of waits among `among`, tasks still waiting when nothing runs any more
        (`a -> b -> a`, each waiting for the next), which edges added during the build made:
        the load finds every other cycle. Empty when there is none."""
        stuck = set(among)
        waits_for: dict[str, list[str]] = {name: [] for name in stuck}
        for up in stuck:
            for down in self._downstream.get(up, ()):
                if down in stuck:
                    waits_for[down].append(up)
        for start in sorted(stuck, key=lambda name: self.order.get(name, 0)):
            path, seen = [start], {start}
            while waits_for[path[-1]]:
                following = waits_for[path[-1]][0]
                if following in seen:
                    return path[path.index(following):] + [following]
                path.append(following)
                seen.add(following)
        return []

    def _block_below(self, name: str, failure: str) -> None:
        stack = list(self._downstream[name])
        while stack:
            down = stack.pop()
            if down not in self.blocked_by:
                self.blocked_by[down] = failure
                stack.extend(self._downstream[down])
