"""The DAG over task instances: links from outputs to inputs, explicit deps, cycles with their
path, target selection with "did you mean", dependency closure, and a stable order."""

from __future__ import annotations

import heapq
import os
import posixpath
from collections.abc import Callable, Collection, Container, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from buildflow.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from buildflow.model import Task


class Graph:
    def __init__(self, tasks: Mapping[str, Task], ranked: Sequence[str] | None = None,
                 empty: Collection[str] = ()) -> None:
        """`ranked`: every task in topological order, when already known (the project cache
        keeps it); it must be what `topological(tasks)` gives. `empty`: the declared tasks
        with no instance now (a `foreach` that matches no file), which a target may still
        name, as `deps` may: it selects nothing."""
        self.tasks = tasks
        self.empty = frozenset(empty)
        self.order = dict(zip(tasks, range(len(tasks))))
        self.producer: dict[str, str] = {}
        self.dir_producer: dict[str, str] = {}
        for task in tasks.values():
            for output in task.outputs:
                self.producer[output] = task.name
                if output in task.dir_outputs:
                    self.dir_producer[output] = task.name
        self.upstream: dict[str, tuple[str, ...]] = {}
        self.link_upstream: dict[str, tuple[str, ...]] = {}
        self.downstream: dict[str, list[str]] = {name: [] for name in tasks}
        producer_of = self.producer_of if self.dir_producer else self.producer.get
        for task in tasks.values():
            links: dict[str, None] = {}
            for path in task.inputs:
                producer = producer_of(path)
                if producer is not None:
                    links[producer] = None
            linked = tuple(links)
            ups = tuple({**dict.fromkeys(task.deps), **dict.fromkeys(task.known_after),
                         **links}) if task.deps or task.known_after else linked
            self.link_upstream[task.name] = linked
            self.upstream[task.name] = ups
            for up in ups:
                if up in self.downstream:
                    self.downstream[up].append(task.name)
        self._rank = None
        if ranked is not None and len(ranked) == len(tasks):  # else worked out when needed
            self._rank = dict(zip(ranked, range(len(ranked))))

    @property
    def ranked(self) -> list[str]:
        """Every task in topological order."""
        rank = self._ranks()
        return sorted(rank, key=rank.__getitem__)

    def _ranks(self) -> dict[str, int]:
        if self._rank is None:
            order = self.topological(self.tasks)
            self._rank = dict(zip(order, range(len(order))))
        return self._rank

    def producer_of(self, path: str) -> str | None:
        """The task that declares `path` as an output, or whose directory output holds it.
        `path` is relative to the root, or absolute (a header outside the project), whose
        walk up ends at `/`, its own parent."""
        found = self.producer.get(path)
        if found is not None or not self.dir_producer:
            return found
        parent, child = posixpath.dirname(path), path
        while parent and parent != child:
            found = self.dir_producer.get(parent)
            if found is not None:
                return found
            parent, child = posixpath.dirname(parent), parent
        return None

    def depfile_links(self, names: Sequence[str],
                      depfile_inputs: Callable[[str], Collection[str]]) -> dict[str, list[str]]:
        """For each task of `names` (in build order) whose last depfile named a file another
        of them writes, those writers: it waits for them, as Ninja orders an edge after the
        producers of what its depfile names, since its inputs are not final before they run.
        A writer that already waits for the task (through the graph or a link taken before,
        in the order of `names`) is left out: that link would close a cycle. A writer later
        in the order is linked too, so where a task stands in the Flowfile changes nothing;
        `topological(names, links)` is then the order to decide them in."""
        links: dict[str, list[str]] = {}
        position: dict[str, int] | None = None
        backward = False  # some link points later in `names`: the order alone no longer says
        producer_of = self.producer_of
        for name in names:
            paths = depfile_inputs(name)
            if not paths:
                continue
            ups = {up for up in map(producer_of, paths) if up is not None and up != name}
            if not ups:
                continue
            if position is None:
                position = dict(zip(names, range(len(names))))
            here = position[name]
            kept = []
            for up in ups:
                there = position.get(up)
                if there is None:
                    continue
                if there < here and not backward or not self._waits_for(up, name, links,
                                                                        position):
                    kept.append(up)
                    backward = backward or there > here
            if kept:
                links[name] = sorted(kept, key=position.__getitem__)
        return links

    def _waits_for(self, task: str, other: str, links: Mapping[str, list[str]],
                   members: Container[str]) -> bool:
        """Whether `task` waits for `other`, through the graph's links among `members` and
        `links`."""
        seen = {task}
        stack = [task]
        while stack:
            node = stack.pop()
            for up in (*self.upstream[node], *links.get(node, ())):
                if up == other:
                    return True
                if up not in seen and up in members:
                    seen.add(up)
                    stack.append(up)
        return False

    def find_cycle(self) -> list[str] | None:
        """A cycle as a path `[a, b, c, a]` where each task needs the next, or None."""
        state: dict[str, int] = {}
        for start in self.tasks:
            if start in state:
                continue
            stack: list[tuple[str, Iterable[str]]] = [(start, iter(self.upstream[start]))]
            path = [start]
            state[start] = 1
            while stack:
                node, children = stack[-1]
                for child in children:
                    if state.get(child) == 1:
                        return path[path.index(child):] + [child]
                    if child not in state:
                        state[child] = 1
                        path.append(child)
                        stack.append((child, iter(self.upstream[child])))
                        break
                else:
                    state[node] = 2
                    path.pop()
                    stack.pop()
        return None

    def named(self, targets: Sequence[str], default: Sequence[str] | None, root: str,
              cwd: str | None = None) -> list[str]:
        """The instances a command line names: its targets, else the default ones, else
        every task."""
        targets = targets or default or ()
        return self.select(targets, root, cwd) if targets else list(self.tasks)

    def select(self, targets: Iterable[str], root: str, cwd: str | None = None) -> list[str]:
        """Instance names for task names, `TASK:ITEM` instances, or output paths."""
        bases: dict[str, list[str]] = {}
        for task in self.tasks.values():
            bases.setdefault(task.base, []).append(task.name)
        selected: dict[str, None] = {}
        for target in targets:
            if target in bases:  # a task, or all instances of a foreach (and their group)
                selected.update(dict.fromkeys(bases[target]))
            elif target in self.tasks:
                selected[target] = None
            elif self._expanding(target):  # an instance not found yet: all that will be
                selected[target.partition(":")[0]] = None
            elif target not in self.empty:
                producer = self._producer_for_target(target, root, cwd)
                if producer is None:
                    hint = did_you_mean(target, [*bases, *self.empty, *self.tasks, *self.producer])
                    if "=" in target:
                        hint += "; a var override is NAME=VALUE with NAME a var name"
                    raise UsageError(
                        f"unknown target '{target}': not a task, a TASK:ITEM instance or a "
                        f"declared output{hint} (see 'bflow list')"
                    )
                selected[producer] = None
        return list(selected)

    def _expanding(self, target: str) -> bool:
        """Whether `target` is `TASK:ITEM` of a foreach over files a build writes, whose
        instances are found once they are written (`Task.expands`)."""
        base, colon, _ = target.partition(":")
        group = self.tasks.get(base) if colon else None
        return group is not None and group.expands

    def _producer_for_target(self, target: str, root: str, cwd: str | None) -> str | None:
        """The task that writes the output path `target`: taken from where the user stands
        first, as the shell, Make and `rm` take it (`./out/x.txt` in `sub/` is
        `sub/out/x.txt`, though the root has an `out/x.txt` too), also when that path goes
        through a symlinked directory (`root` is the real path); then from the root."""
        candidates = []
        if cwd is not None:
            absolute = os.path.normpath(os.path.join(cwd, target))
            candidates.append(os.path.relpath(absolute, root).replace(os.sep, "/"))
            directory, name = os.path.split(absolute)
            real = os.path.join(os.path.realpath(directory), name)
            if real != absolute:
                candidates.append(os.path.relpath(real, root).replace(os.sep, "/"))
        candidates.append(posixpath.normpath(target))
        for candidate in candidates:
            producer = self.producer_of(candidate.rstrip("/"))
            if producer is not None:
                return producer
        return None

    def closure(self, names: Iterable[str]) -> list[str]:
        """`names` and everything they need, in a stable topological order."""
        needed: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in needed:
                needed.add(name)
                stack.extend(self.upstream[name])
        # Kahn's order over a set closed under dependencies is the order of all tasks with
        # the rest left out: what a task waits for, and what is ready before it, is all in.
        rank = self._ranks()
        return sorted((n for n in needed if n in rank), key=rank.__getitem__)

    def topological(self, names: Iterable[str],
                    also_after: Mapping[str, Sequence[str]] | None = None) -> list[str]:
        """Kahn's order over `names`; among ready tasks, Flowfile (then file) order first.
        `also_after`: more tasks each comes after (`depfile_links`), all among `names`."""
        members = set(names)
        waiting = {n: sum(1 for u in self.upstream[n] if u in members) for n in members}
        also_before: dict[str, list[str]] = {}
        for name, ups in (also_after or {}).items():
            for up in set(ups).difference(self.upstream[name]):
                also_before.setdefault(up, []).append(name)
                waiting[name] += 1
        ready = [(self.order[n], n) for n, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        out: list[str] = []
        while ready:
            _, name = heapq.heappop(ready)
            out.append(name)
            for down in (*self.downstream[name], *also_before.get(name, ())):
                if down in waiting:
                    waiting[down] -= 1
                    if waiting[down] == 0:
                        heapq.heappush(ready, (self.order[down], down))
        return out
