"""The DAG of the HTML page, laid out: columns after what each task needs, rows near the tasks
they need, and a large graph's foreach instances drawn as one node."""

from __future__ import annotations

from buildflow.model import Task
from buildflow.report.layout import (COLUMN_GAP, GROUP_ABOVE, GROUP_HEIGHT, MARGIN,
                                     NODE_HEIGHT, NODE_WIDTH, Layout, lay_out)


def task(name: str, commands: tuple[str, ...] = ("true",)) -> Task:
    base, _, item = name.partition(":")
    return Task(name=name, base=base, commands=commands, item=item or None)


def layout(upstream: dict[str, list[str]], groups: tuple[str, ...] = ()) -> Layout:
    """`upstream` in build order: each task after those it needs."""
    tasks = {name: task(name, () if name in groups else ("true",)) for name in upstream}
    return lay_out(list(upstream), tasks, upstream)


def columns(result: Layout) -> dict[str, int]:
    return {node.key: (node.x - MARGIN) // (NODE_WIDTH + COLUMN_GAP) for node in result.nodes}


def test_each_task_stands_one_column_after_its_longest_chain_of_needs() -> None:
    result = layout({"gen": [], "a": ["gen"], "b": [], "link": ["a", "b"], "all": ["link"]},
                    groups=("all",))
    assert columns(result) == {"gen": 0, "b": 0, "a": 1, "link": 2, "all": 3}
    assert [(up.key, down.key) for up, down in result.edges] == [
        ("gen", "a"), ("a", "link"), ("b", "link"), ("link", "all")]
    assert {node.key: node.is_group_task for node in result.nodes}["all"] is True
    assert result.width == MARGIN * 2 + 4 * NODE_WIDTH + 3 * COLUMN_GAP


def test_a_task_is_drawn_in_the_row_of_those_it_needs() -> None:
    # y needs the second task of column 0, x the first: x goes above y whatever their order.
    result = layout({"p": [], "q": [], "y": ["q"], "x": ["p"]})
    rows = {node.key: node.y for node in result.nodes}
    assert rows["p"] < rows["q"] and rows["x"] < rows["y"]


def test_a_small_graph_draws_every_instance() -> None:
    result = layout({"cc:a.c": [], "cc:b.c": [], "link": ["cc:a.c", "cc:b.c"]})
    assert sorted(node.key for node in result.nodes) == ["cc:a.c", "cc:b.c", "link"]
    assert all(not node.grouped and node.height == NODE_HEIGHT for node in result.nodes)


def test_a_large_graph_draws_a_foreach_as_one_node_for_its_instances() -> None:
    items = [f"cc:{n}.c" for n in range(GROUP_ABOVE + 1)]
    result = layout({**{item: [] for item in items}, "link": items})
    nodes = {node.key: node for node in result.nodes}
    assert sorted(nodes) == ["cc", "link"]
    assert nodes["cc"].grouped and nodes["cc"].members == tuple(items)
    assert nodes["cc"].height == GROUP_HEIGHT
    assert [(up.key, down.key) for up, down in result.edges] == [("cc", "link")]


def test_nothing_to_draw() -> None:
    result = lay_out([], {}, {})
    assert result.nodes == () and result.width == NODE_WIDTH
