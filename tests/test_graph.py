"""The task graph: links, cycles, target selection, closure and a stable order."""

from __future__ import annotations

import pytest

from buildflow.errors import UsageError
from buildflow.graph import Graph
from buildflow.model import Task


def task(name: str, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = (),
         deps: tuple[str, ...] = (), dirs: frozenset[str] = frozenset()) -> Task:
    return Task(name=name, base=name.partition(":")[0], commands=("true",), inputs=inputs,
                outputs=outputs, deps=deps, dir_outputs=dirs)


def graph(*tasks: Task) -> Graph:
    return Graph({t.name: t for t in tasks})


def test_links_from_outputs_to_inputs_and_deps() -> None:
    g = graph(task("gen", outputs=("a.h",)), task("cc", inputs=("a.h",), deps=("lint",)),
              task("lint"))
    assert g.upstream["cc"] == ("lint", "gen")
    assert g.link_upstream["cc"] == ("gen",)
    assert g.downstream["gen"] == ["cc"]


def test_a_directory_output_produces_the_files_in_it() -> None:
    g = graph(task("docs", outputs=("site",), dirs=frozenset({"site"})),
              task("pub", inputs=("site/index.html",)))
    assert g.producer_of("site/index.html") == "docs"
    assert g.producer_of("sitex/index.html") is None
    assert g.upstream["pub"] == ("docs",)


def test_a_path_outside_the_project_has_no_producer() -> None:
    # the walk up from an absolute path never ended: dirname("/") is "/"
    g = graph(task("docs", outputs=("site",), dirs=frozenset({"site"})),
              task("cc", inputs=("/usr/include/stdio.h",)))
    assert g.producer_of("/usr/include/stdio.h") is None
    assert g.producer_of("/") is None
    assert g.upstream["cc"] == ()


def test_find_cycle_reads_in_the_direction_of_need() -> None:
    g = graph(task("a", deps=("b",)), task("b", deps=("c",)), task("c", deps=("a",)))
    assert g.find_cycle() == ["a", "b", "c", "a"]


def test_find_cycle_through_file_links() -> None:
    g = graph(task("a", inputs=("b.out",), outputs=("a.out",)),
              task("b", inputs=("a.out",), outputs=("b.out",)))
    assert g.find_cycle() == ["a", "b", "a"]


def test_no_cycle() -> None:
    assert graph(task("a"), task("b", deps=("a",))).find_cycle() is None


def test_topological_order_is_stable_in_declaration_order() -> None:
    g = graph(task("z"), task("link", deps=("b", "a")), task("b"), task("a"))
    assert g.topological(g.tasks) == ["z", "b", "a", "link"]
    assert g.closure(["link"]) == ["b", "a", "link"]


def test_select_task_instance_and_output_path() -> None:
    g = graph(task("cc:src/a.c", outputs=("build/a.o",)),
              task("cc:src/b.c", outputs=("build/b.o",)), task("link", deps=("cc:src/a.c",)))
    assert g.select(["cc"], "/p") == ["cc:src/a.c", "cc:src/b.c"]
    assert g.select(["cc:src/b.c"], "/p") == ["cc:src/b.c"]
    assert g.select(["build/b.o", "./build/a.o"], "/p") == ["cc:src/b.c", "cc:src/a.c"]
    assert g.select(["a.o"], "/p", cwd="/p/build") == ["cc:src/a.c"]


def test_select_unknown_target_suggests_a_name() -> None:
    g = graph(task("compile"), task("link"))
    with pytest.raises(UsageError, match=r"unknown target 'lnk'.*did you mean 'link'\?"):
        g.select(["lnk"], "/p")


def test_depfile_links_take_a_writer_wherever_it_stands_but_never_close_a_cycle() -> None:
    g = graph(task("use", outputs=("use.o",)), task("gen", outputs=("gen.h",)),
              task("a", outputs=("a.h",)), task("b", inputs=("a.h",), outputs=("b.h",)))
    named = {"use": {"gen.h"}, "a": {"b.h"}, "b": set()}
    names = list(g.tasks)
    links = g.depfile_links(names, lambda name: named.get(name, set()))
    # gen comes after use in the Flowfile: use still waits for it; a's depfile names what b
    # writes, but b reads a.h, which a writes: that link would close a cycle
    assert links == {"use": ["gen"]}
    assert g.topological(names, links) == ["gen", "use", "a", "b"]


def test_depfile_links_in_both_directions_keep_the_first_in_build_order() -> None:
    g = graph(task("x", outputs=("x.h",)), task("y", outputs=("y.h",)))
    named = {"x": {"y.h"}, "y": {"x.h"}}
    links = g.depfile_links(["x", "y"], lambda name: named[name])
    assert links == {"x": ["y"]}
    assert g.topological(["x", "y"], links) == ["y", "x"]
