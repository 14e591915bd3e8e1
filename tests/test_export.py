"""buildflow.export: the view over graph + decisions, and each renderer, on hand-made graphs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from buildflow import export
from buildflow.graph import Graph
from buildflow.model import Task
from buildflow.staleness import Decision, Reason, ReasonKind

UP_TO_DATE = Decision([], (), {}, {}, {})


def stale(kind: ReasonKind = ReasonKind.NEVER_RUN, subject: str = "") -> Decision:
    return Decision([Reason(kind, subject)], (), {}, {}, {})


def task(name: str, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = (),
         deps: tuple[str, ...] = (), group: bool = False) -> Task:
    return Task(name=name, base=name.partition(":")[0], commands=() if group else ("true",),
                inputs=inputs, outputs=outputs, deps=deps)


def pipeline() -> Graph:
    """gen -> compile:a, compile:b (file links) -> link; all = group over link and docs."""
    tasks = [
        task("gen", outputs=("gen.h",)),
        task("compile:src/a.c", inputs=("src/a.c", "gen.h"), outputs=("a.o",)),
        task("compile:src/b.c", inputs=("src/b.c", "gen.h"), outputs=("b.o",)),
        task("link", inputs=("a.o", "b.o"), outputs=("app",)),
        task("docs", outputs=("docs.html",)),
        task("all", deps=("link", "docs"), group=True),
    ]
    return Graph({t.name: t for t in tasks})


def pipeline_view(decisions: dict[str, Decision] | None = None) -> export.GraphView:
    graph = pipeline()
    names = graph.topological(graph.tasks)
    every = {n: UP_TO_DATE for n in names if not graph.tasks[n].is_group}
    return export.view(graph, names, {**every, **(decisions or {})})


def test_view_edges_go_from_dependency_to_dependent() -> None:
    graph_view = pipeline_view()
    assert set(graph_view.edges) == {
        ("gen", "compile:src/a.c"), ("gen", "compile:src/b.c"),
        ("compile:src/a.c", "link"), ("compile:src/b.c", "link"),
        ("link", "all"), ("docs", "all")}
    order = [node.name for node in graph_view.nodes]
    assert all(order.index(up) < order.index(down) for up, down in graph_view.edges)


def test_view_leaves_out_edges_to_unselected_tasks() -> None:
    graph = pipeline()
    names = ["docs", "all"]  # as if only these were selected
    graph_view = export.view(graph, names, {"docs": UP_TO_DATE})
    assert graph_view.edges == (("docs", "all"),)


def test_group_is_stale_when_anything_it_needs_is_stale() -> None:
    fresh = {node.name: node for node in pipeline_view().nodes}
    assert not fresh["all"].stale and fresh["all"].group
    deep = pipeline_view({"gen": stale(ReasonKind.OUTPUT_MISSING, "gen.h")})
    nodes = {node.name: node for node in deep.nodes}
    # compile and link have no decision of their own saying stale here; the group still
    # runs something, through the explicit chain.
    assert nodes["gen"].stale and nodes["gen"].reason == "output gen.h is missing"
    assert nodes["all"].stale and nodes["all"].state is export.NodeState.STALE
    assert not nodes["docs"].stale


def test_a_group_names_the_tasks_that_will_run_not_one_its_when_skips() -> None:
    # `publish` is stale (after `link`) but skipped by its `when`: "needs stale link, publish"
    graph = Graph({t.name: t for t in [
        task("link", outputs=("app",)), task("publish", inputs=("app",)),
        task("all", deps=("link", "publish"), group=True),
        task("ship", deps=("publish",), group=True)]})
    names = graph.topological(graph.tasks)
    view = export.view(graph, names, {"link": stale(), "publish": stale()},
                       skipped={"publish": "when.env CI is not set"})
    nodes = {node.name: node for node in view.nodes}
    assert nodes["publish"].state is export.NodeState.SKIPPED
    assert nodes["all"].reason == "needs stale link"
    assert nodes["ship"].reason == "needs stale publish"  # what it needs, `link`, runs


def test_text_is_a_tree_under_each_final_target() -> None:
    out = export.text(pipeline_view({"compile:src/b.c": stale(ReasonKind.INPUT_CHANGED,
                                                              "src/b.c")}))
    assert out == (
        "all (group, stale: needs stale link)\n"
        "├── link (up to date)\n"
        "│   ├── compile:src/a.c (up to date)\n"
        "│   │   └── gen (up to date)\n"
        "│   └── compile:src/b.c (stale: input src/b.c changed)\n"
        "│       └── gen (up to date)\n"
        "└── docs (up to date)\n")
    assert "\x1b[" not in out


def test_text_shows_a_shared_subtree_once() -> None:
    graph = Graph({t.name: t for t in [
        task("base", outputs=("base.txt",)),
        task("mid", inputs=("base.txt",), outputs=("mid.txt",)),
        task("left", inputs=("mid.txt",)), task("right", inputs=("mid.txt",))]})
    names = graph.topological(graph.tasks)
    out = export.text(export.view(graph, names, dict.fromkeys(names, UP_TO_DATE)))
    assert out.splitlines() == [
        "left (up to date)", "└── mid (up to date)", "    └── base (up to date)",
        "right (up to date)", "└── mid (see above)"]


def test_text_draws_a_chain_deeper_than_python_s_recursion() -> None:
    # a RecursionError, exit 3, for `bflow graph` of 1,000 tasks each needing the last
    depth = 3000
    graph = Graph({f"t{i}": task(f"t{i}", deps=(f"t{i - 1}",) if i else ())
                   for i in range(depth)})
    names = graph.topological(graph.tasks)
    lines = export.text(export.view(graph, names, dict.fromkeys(names, UP_TO_DATE))).splitlines()
    assert len(lines) == depth
    assert lines[0] == f"t{depth - 1} (up to date)"
    assert lines[-1] == " " * 4 * (depth - 2) + "└── t0 (up to date)"


def test_text_colours_stale_red_and_fresh_green() -> None:
    out = export.text(pipeline_view({"docs": stale()}), colour=True)
    assert "docs \x1b[31m(stale: no successful run recorded)\x1b[0m" in out
    assert "link \x1b[32m(up to date)\x1b[0m" in out


def test_json_has_nodes_with_state_inputs_outputs_and_edges() -> None:
    data = json.loads(export.to_json(pipeline_view({"link": stale(ReasonKind.OUTPUT_MISSING,
                                                                  "app")})))
    nodes = {node["name"]: node for node in data["nodes"]}
    assert nodes["link"] == {"name": "link", "state": "stale", "stale": True, "group": False,
                             "reason": "output app is missing", "inputs": ["a.o", "b.o"],
                             "outputs": ["app"]}
    assert nodes["gen"]["state"] == "up_to_date" and nodes["gen"]["reason"] is None
    assert nodes["all"]["group"] is True and nodes["all"]["stale"] is True
    assert {"from": "gen", "to": "compile:src/a.c"} in data["edges"]
    assert len(data["edges"]) == 6


NASTY = ['say"hi"', "back\\slash", "ends\\", 'mixed\\"quote', "a:b/c.d", "#quot;"]


def nasty_view() -> export.GraphView:
    tasks = [task(f"t:{name}", outputs=(f"{index}.out",)) for index, name in enumerate(NASTY)]
    tasks.append(task("sink", inputs=tuple(t.outputs[0] for t in tasks)))
    graph = Graph({t.name: t for t in tasks})
    names = graph.topological(graph.tasks)
    return export.view(graph, names, {n: stale() if n == "sink" else UP_TO_DATE
                                      for n in names})


def test_dot_quotes_identifiers() -> None:
    out = export.dot(nasty_view())
    assert out.startswith("digraph bflow {\n") and out.endswith("}\n")
    assert '"t:say\\"hi\\"" -> "sink";' in out
    assert '"t:ends\\\\" -> "sink";' in out
    assert '"t:mixed\\\\\\"quote" -> "sink";' in out
    sink = next(line for line in out.splitlines() if line.startswith('  "sink" ['))
    assert "#c62828" in sink  # stale is marked


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz (dot) is not installed")
def test_dot_renders_with_graphviz_and_keeps_every_name() -> None:
    result = subprocess.run(["dot", "-Tplain"], input=export.dot(nasty_view()),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # `-Tplain` lines: "node NAME x y w h LABEL ..."; count nodes and edges as graphviz saw them.
    lines = result.stdout.splitlines()
    assert sum(line.startswith("node ") for line in lines) == len(NASTY) + 1
    assert sum(line.startswith("edge ") for line in lines) == len(NASTY)
    svg = subprocess.run(["dot", "-Tsvg"], input=export.dot(nasty_view()),
                         capture_output=True, text=True, timeout=60)
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", svg.stdout)
    unescape = {"&quot;": '"', "&amp;": "&", "&#45;": "-", "&lt;": "<", "&gt;": ">"}
    shown = set()
    for label in labels:
        for entity, char in unescape.items():
            label = label.replace(entity, char)
        shown.add(label)
    assert {f"t:{name}" for name in NASTY} | {"sink"} == shown


def test_mermaid_labels_show_angle_brackets_and_ampersands_as_text() -> None:
    name = "copy:<b>&amp;.txt"
    graph = Graph({name: task(name, outputs=("out/<b>&amp;.txt",))})
    out = export.mermaid(export.view(graph, [name], {name: UP_TO_DATE}))
    assert '  n0["copy:#lt;b#gt;#38;amp;.txt"]' in out.splitlines()
    assert "<" not in out and "&" not in out


def test_mermaid_uses_safe_ids_and_marks_stale() -> None:
    out = export.mermaid(nasty_view())
    lines = out.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  n0["t:say#quot;hi#quot;"]' in lines
    assert '  n5["t:#35;quot;"]' in lines
    assert "  n0 --> n6" in lines
    assert "  class n6 stale" in lines
    assert "  class n0,n1,n2,n3,n4,n5 fresh" in lines
    node_lines = [line for line in lines if re.match(r"  n\d+[\[(]", line)]
    assert len(node_lines) == len(NASTY) + 1
    for line in node_lines:  # the label is one quoted string: no raw quote inside it
        label = re.match(r'  n\d+\(?\["(.*)"\]\)?$', line)
        assert label and '"' not in label.group(1)


def test_mermaid_draws_groups_rounded() -> None:
    lines = export.mermaid(pipeline_view()).splitlines()
    assert '  n5(["all"])' in lines and '  n0["gen"]' in lines
