"""The task graph as text: an indented tree, Graphviz DOT, Mermaid, or JSON.

`view()` joins the graph with the staleness decisions once; every renderer is then a pure
function of that view, so each format shows the same nodes, edges and marks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import Enum
from typing import NamedTuple

from buildflow.graph import Graph
from buildflow.staleness import Decision
from buildflow.words import printable


class NodeState(Enum):
    STALE = "stale"
    UP_TO_DATE = "up_to_date"
    AFTER = "after"  # known only once a task that would run has run: it may run
    SKIPPED = "skipped"  # its `when` fails: a build skips it, stale or not


class Node(NamedTuple):
    name: str
    state: NodeState
    group: bool
    reason: str  # the first reason a stale task runs (or is skipped); for a group, which
    # needed tasks are stale
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def stale(self) -> bool:
        """Whether building it may run something."""
        return self.state in (NodeState.STALE, NodeState.AFTER)


class GraphView(NamedTuple):
    nodes: tuple[Node, ...]  # topological order: every dependency before its dependents
    edges: tuple[tuple[str, str], ...]  # (dependency, dependent)


def view(graph: Graph, names: Iterable[str], decisions: Mapping[str, Decision],
         depfile_links: Mapping[str, list[str]] | None = None,
         skipped: Mapping[str, str] | None = None) -> GraphView:
    """The subgraph over `names` (in topological order) with each node's state, its edges
    the graph's and the `depfile_links` a build orders its tasks by too.

    A task is stale when its decision says so, and skipped when its `when` fails, stale or
    not, as a build skips it (`skipped`: why, by task). A group has no decision of its own: it is stale
    when building it would run something, that is when any task it needs is stale; but a group
    standing for instances not known yet is "after" a task, as its decision says.
    """
    links = depfile_links or {}
    names = graph.topological(names, links) if links else list(names)
    members = set(names)
    upstream = {name: [up for up in dict.fromkeys((*graph.upstream[name], *links.get(name, ())))
                       if up in members] for name in names}
    runs_something: dict[str, bool] = {}
    skipped_names: set[str] = set()
    nodes = []
    for name in names:
        task = graph.tasks[name]
        ups = upstream[name]
        decision = decisions.get(name)
        if decision is not None and decision.after:
            state, reason = NodeState.AFTER, str(decision.reasons[0])
        elif task.is_group:
            # named: the needed tasks that will run; one its `when` skips only if no other
            # does (what it needs runs)
            running = [up for up in ups if runs_something[up]]
            named = [up for up in running if up not in skipped_names] or running
            state = NodeState.STALE if running else NodeState.UP_TO_DATE
            reason = f"needs stale {', '.join(named)}" if named else ""
        elif decision is not None and skipped and name in skipped:
            state, reason = NodeState.SKIPPED, skipped[name]
            skipped_names.add(name)
        else:
            assert decision is not None
            state = NodeState.STALE if decision.stale else NodeState.UP_TO_DATE
            reason = str(decision.reasons[0]) if decision.stale else ""
        node = Node(name, state, task.is_group, reason, task.inputs, task.outputs)
        runs_something[name] = node.stale or any(runs_something[up] for up in ups)
        nodes.append(node)
    edges = tuple((up, name) for name in names for up in upstream[name])
    return GraphView(tuple(nodes), edges)


# --- text -------------------------------------------------------------------------------
_RED, _GREEN, _DIM, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[2m", "\x1b[0m"


def _label(node: Node) -> str:
    kind = "group, " if node.group else ""
    if node.state is NodeState.AFTER:
        return f"{kind}{node.reason}"
    if node.state is NodeState.SKIPPED:
        return f"{kind}skipped: {node.reason}"
    if node.stale:
        return f"{kind}stale: {node.reason}"
    return f"{kind}up to date"


def text(graph_view: GraphView, *, colour: bool = False) -> str:
    """`text_lines` in one string."""
    return "".join(text_lines(graph_view, colour=colour))


def text_lines(graph_view: GraphView, *, colour: bool = False) -> Iterator[str]:
    """A tree per final target (a node nothing else in the view needs), its dependencies
    indented below it, a line at a time (each ending in a newline), as it is made: the
    indentation of a chain is quadratic in its length (a chain 4,000 deep, 32 MB). A node
    already expanded is shown again as `(see above)`."""
    by_name = {node.name: node for node in graph_view.nodes}
    needs: dict[str, list[str]] = {node.name: [] for node in graph_view.nodes}
    needed = set()
    for up, down in graph_view.edges:
        needs[down].append(up)
        needed.add(up)
    shown: set[str] = set()

    def paint(node: Node) -> str:
        note = f"({printable(_label(node))})"
        if colour:
            note = f"{_RED if node.stale else _GREEN}{note}{_RESET}"
        return f"{printable(node.name)} {note}"

    def walk(root: str) -> Iterator[str]:
        """Depth first with a stack of its own: a chain of thousands of tasks is deeper
        than Python's recursion goes."""
        stack = [(root, "", "")]
        while stack:
            name, lead, branch = stack.pop()
            node = by_name[name]
            if name in shown and needs[name]:
                see = f"{_DIM}(see above){_RESET}" if colour else "(see above)"
                yield f"{lead}{branch}{printable(node.name)} {see}\n"
                continue
            shown.add(name)
            yield f"{lead}{branch}{paint(node)}\n"
            child_lead = lead + {"├── ": "│   ", "└── ": "    ", "": ""}[branch]
            last = len(needs[name]) - 1
            stack.extend((up, child_lead, "└── " if index == last else "├── ")
                         for index, up in reversed(list(enumerate(needs[name]))))

    for node in graph_view.nodes:
        if node.name not in needed:
            yield from walk(node.name)


# --- dot --------------------------------------------------------------------------------
_STALE_STYLE = 'fillcolor="#ffd6d6", color="#c62828"'
_FRESH_STYLE = 'fillcolor="#dcf5dc", color="#2e7d32"'


def _dot_string(value: str) -> str:
    """A DOT quoted string holding `value`: for identifiers and labels alike (in a label `\\\\`
    reads as one backslash, so escaping backslashes keeps them literal)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def dot(graph_view: GraphView) -> str:
    """Graphviz DOT; stale nodes red, up-to-date ones green, groups as ellipses."""
    lines = ["digraph bflow {", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for node in graph_view.nodes:
        attributes = [f"label={_dot_string(node.name)}",
                      _STALE_STYLE if node.stale else _FRESH_STYLE,
                      f"tooltip={_dot_string(_label(node))}"]
        if node.group:
            attributes.append("shape=ellipse")
        lines.append(f"  {_dot_string(node.name)} [{', '.join(attributes)}];")
    for up, down in graph_view.edges:
        lines.append(f"  {_dot_string(up)} -> {_dot_string(down)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- mermaid ----------------------------------------------------------------------------
def _mermaid_label(value: str) -> str:
    """A quoted Mermaid label: `#` and `"` become entity codes, as they could end or change
    a quoted label, and so do `<`, `>` and `&`, which Mermaid's HTML labels would read as
    markup (a file `<b>.txt` would show as an empty bold tag, `a&amp;b` as `a&b`)."""
    return '"' + value.replace("#", "#35;").replace('"', "#quot;").replace(
        "<", "#lt;").replace(">", "#gt;").replace("&", "#38;") + '"'


def mermaid(graph_view: GraphView) -> str:
    """A Mermaid flowchart. Task names hold ':' '/' '.', which Mermaid ids cannot, so nodes get
    ids n0, n1, ... and carry the name as their label."""
    ids = {node.name: f"n{index}" for index, node in enumerate(graph_view.nodes)}
    lines = ["flowchart LR",
             "  classDef stale fill:#ffd6d6,stroke:#c62828",
             "  classDef fresh fill:#dcf5dc,stroke:#2e7d32"]
    for node in graph_view.nodes:
        shape = ("([", "])") if node.group else ("[", "]")
        lines.append(f"  {ids[node.name]}{shape[0]}{_mermaid_label(node.name)}{shape[1]}")
    for up, down in graph_view.edges:
        lines.append(f"  {ids[up]} --> {ids[down]}")
    for state, members in (("stale", [n for n in graph_view.nodes if n.stale]),
                           ("fresh", [n for n in graph_view.nodes if not n.stale])):
        if members:
            lines.append(f"  class {','.join(ids[n.name] for n in members)} {state}")
    return "\n".join(lines) + "\n"


# --- json -------------------------------------------------------------------------------
def to_json(graph_view: GraphView) -> str:
    """`{"nodes": [...], "edges": [...]}`; each edge goes from a dependency to its dependent."""
    data = {
        "nodes": [{"name": node.name, "state": node.state.value, "stale": node.stale,
                   "group": node.group, "reason": node.reason or None,
                   "inputs": list(node.inputs), "outputs": list(node.outputs)}
                  for node in graph_view.nodes],
        "edges": [{"from": up, "to": down} for up, down in graph_view.edges],
    }
    return json.dumps(data, indent=2) + "\n"


RENDERERS: dict[str, Callable[[GraphView], str]] = {
    "text": text, "dot": dot, "mermaid": mermaid, "json": to_json}
