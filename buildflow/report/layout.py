"""The DAG drawn left to right: each task in a column after every task it needs (its longest
chain of dependencies), the tasks of a column ordered near those they need (one barycenter
pass), edges from a dependency to its dependent. Its own simple layered layout rather than
Graphviz, so the page is the same on every machine and a 10,000-task build lays out in well
under a second.

A large graph (more than GROUP_ABOVE tasks) draws each `foreach` task as one node standing
for all its instances, which the page counts per state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from buildflow.model import Task

GROUP_ABOVE = 100
NODE_WIDTH, NODE_HEIGHT, GROUP_HEIGHT = 200, 28, 44
COLUMN_GAP, ROW_GAP, MARGIN = 70, 14, 10


class Node(NamedTuple):
    key: str  # the task's name, or the foreach task's name for a grouped node
    members: tuple[str, ...]  # the tasks it stands for: itself, or the instances
    grouped: bool
    is_group_task: bool  # a task without commands, drawn as a rounded pill
    x: int
    y: int
    height: int


class Layout(NamedTuple):
    nodes: tuple[Node, ...]
    edges: tuple[tuple[Node, Node], ...]
    width: int
    height: int


def lay_out(names: Sequence[str], tasks: Mapping[str, Task],
            upstream: Mapping[str, Sequence[str]]) -> Layout:
    """`names` in build order (every task after those it needs)."""
    group = len(names) > GROUP_ABOVE
    key_of: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for name in names:
        task = tasks[name]
        key = task.base if group and task.item is not None else name
        key_of[name] = key
        members.setdefault(key, []).append(name)
    ups: dict[str, dict[str, None]] = {key: {} for key in members}
    for name in names:
        for up in upstream.get(name, ()):
            if up in key_of and key_of[up] != key_of[name]:
                ups[key_of[name]][key_of[up]] = None
    column: dict[str, int] = {}
    for key in members:  # in build order, so each key's upstream has its column already
        column[key] = 1 + max((column[up] for up in ups[key] if up in column), default=-1)
    columns: list[list[str]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    for key in members:
        columns[column[key]].append(key)
    row: dict[str, float] = {}
    for keys in columns:
        for index, key in enumerate(keys):
            near = [row[up] for up in ups[key] if up in row]
            row[key] = sum(near) / len(near) if near else float(index)
        keys.sort(key=row.__getitem__)
        for index, key in enumerate(keys):
            row[key] = float(index)
    nodes: dict[str, Node] = {}
    height = 0
    for number, keys in enumerate(columns):
        y = MARGIN
        for key in keys:
            grouped = len(members[key]) > 1 or key not in tasks
            node_height = GROUP_HEIGHT if grouped else NODE_HEIGHT
            nodes[key] = Node(key, tuple(members[key]), grouped,
                              not grouped and tasks[key].is_group,
                              MARGIN + number * (NODE_WIDTH + COLUMN_GAP), y, node_height)
            y += node_height + ROW_GAP
        height = max(height, y)
    edges = tuple((nodes[up], nodes[key]) for key in members for up in ups[key])
    width = MARGIN * 2 + len(columns) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP
    return Layout(tuple(nodes.values()), edges, max(width, NODE_WIDTH), height + MARGIN)
