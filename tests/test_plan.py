"""The plan: what is ready, in the Flowfile's order; what a failure blocks; tasks found or
dropped during the build."""

from __future__ import annotations

from buildflow.plan import Plan
from test_graph import graph, task


def drain(plan: Plan, failing: frozenset[str] = frozenset()) -> list[str]:
    """Every task in the order the plan hands them out, finishing each as it is taken."""
    taken = []
    while (name := plan.pop_ready()) is not None:
        taken.append(name)
        plan.finished(name, ok=name not in failing)
    return taken


def take(plan: Plan, name: str, ok: bool = True) -> None:
    """Take the next ready task, which must be `name`, and finish it."""
    assert plan.pop_ready() == name
    plan.finished(name, ok=ok)


def diamond() -> Plan:
    # gen -> (a, b) -> link; lint stands alone, declared last.
    g = graph(task("gen", outputs=("g.h",)), task("b", inputs=("g.h",), outputs=("b.o",)),
              task("a", inputs=("g.h",), outputs=("a.o",)),
              task("link", inputs=("a.o", "b.o")), task("lint"))
    return Plan(g, list(g.tasks))


def test_ready_tasks_come_out_in_the_flowfiles_order_after_what_they_need() -> None:
    plan = diamond()
    assert plan.ready == 2  # gen and lint
    assert drain(plan) == ["gen", "b", "a", "link", "lint"]


def test_a_task_waits_for_every_task_it_needs() -> None:
    plan = diamond()
    take(plan, "gen")
    assert [plan.pop_ready(), plan.pop_ready()] == ["b", "a"]
    plan.finished("a", ok=True)
    assert plan.pop_ready() == "lint"  # link still waits for b
    assert plan.pop_ready() is None
    plan.finished("b", ok=True)
    assert plan.pop_ready() == "link"


def test_a_failure_marks_everything_below_it_blocked_naming_itself() -> None:
    # The plan still hands them out: the scheduler skips a blocked task, or runs it (-k) when
    # it does not depend on the failure.
    plan = diamond()
    take(plan, "gen", ok=False)
    assert plan.blocked_by == {"a": "gen", "b": "gen", "link": "gen"}


def test_what_a_blocked_task_blocks_names_the_first_failure() -> None:
    plan = diamond()
    assert drain(plan, failing=frozenset({"gen", "b"})) == ["gen", "b", "a", "link", "lint"]
    assert plan.blocked_by["link"] == "gen"
    other = diamond()
    drain(other, failing=frozenset({"b"}))
    assert other.blocked_by == {"link": "b"}


def test_only_the_selected_tasks_are_waited_for() -> None:
    g = graph(task("gen", outputs=("g.h",)), task("cc", inputs=("g.h",)), task("other"))
    plan = Plan(g, ["cc"])  # gen up to date, not selected
    assert "gen" not in plan and "cc" in plan
    assert drain(plan) == ["cc"]


def test_also_after_adds_an_edge_the_graph_does_not_have() -> None:
    g = graph(task("gen", outputs=("g.h",)), task("cc"))
    plan = Plan(g, ["gen", "cc"], also_after={"cc": ["gen"]})  # a depfile named g.h
    assert plan.dependents("gen") == ["cc"] and plan.ready == 1  # cc waits
    take(plan, "gen")
    assert plan.pop_ready() == "cc"


def test_a_task_found_during_the_build_waits_for_what_has_not_finished() -> None:
    plan = diamond()
    take(plan, "gen")
    plan.add("cc:x.c", order=1, upstream=["gen", "a"], finished={"gen"})
    assert "cc:x.c" in plan and plan.dependents("a") == ["link", "cc:x.c"]
    assert drain(plan) == ["b", "a", "cc:x.c", "link", "lint"]


def test_a_task_found_blocked_stays_blocked_by_that_failure() -> None:
    plan = diamond()
    plan.add("cc:x.c", order=1, upstream=["gen"], finished=set(), blocked_by="gen")
    assert plan.blocked_by["cc:x.c"] == "gen"
    plan.add("pkg", order=9, upstream=["cc:x.c"], finished=set())
    assert plan.blocked_by["pkg"] == "gen"  # below a blocked task, from its edge


def test_a_dropped_task_releases_what_waits_for_it() -> None:
    plan = diamond()
    plan.add("cc:x.c", order=1, upstream=["gen"], finished=set())
    plan.add_edge("cc:x.c", "link")
    plan.drop("cc:x.c")  # its item is gone
    assert "cc:x.c" not in plan
    assert drain(plan) == ["gen", "b", "a", "link", "lint"]


def test_tasks_found_during_the_build_that_wait_for_each_other_are_a_cycle() -> None:
    plan = diamond()
    drain(plan)
    assert plan.cycle(["gen", "a"]) == []
    plan.add("x", 9, ["link"], finished=set())  # finished: a wait that ends
    plan.add("y", 10, ["x"], finished=set())
    plan.add_edge("y", "x")  # a reader found later, which x's inputs come from
    assert plan.ready == 0
    assert plan.cycle(["x", "y"]) == ["x", "y", "x"]
