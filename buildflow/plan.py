"""What a build intends to run and what is ready: dependency counts over the selected tasks.

A task becomes ready when everything it depends on has finished; ready tasks come out in the
Flowfile's order, so a build is reproducible. A failure blocks every task below it at once, so
each can name the failure it waits on, whether or not the build goes on.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from buildflow.graph import Graph


class Plan:
    def __init__(self, graph: Graph, names: list[str],
                 also_after: Mapping[str, list[str]] | None = None) -> None:
        """`also_after`: more tasks each must wait for, besides the graph's (the writers of
        what its depfile named, `Graph.depfile_links`); all of them among `names`."""
        selected = set(names)
        self._order = graph.order
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
        for down in self._downstream[name]:
            self._waiting[down] -= 1
            if self._waiting[down] == 0:
                heapq.heappush(self._ready, (self._order[down], down))

    def _block_below(self, name: str, failure: str) -> None:
        stack = list(self._downstream[name])
        while stack:
            down = stack.pop()
            if down not in self.blocked_by:
                self.blocked_by[down] = failure
                stack.extend(self._downstream[down])
