"""A Flowfile parsed in parts gives what tomllib gives for the whole text: the same document,
or the same error, whatever the text holds where it is cut."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
import tomli as tomllib  # the parser bflow uses (the standard library's only without tomli)

from buildflow import tomlparts
from conftest import Project

# Pieces a Flowfile may hold, among them every way the parts could disagree with the whole:
# a task defined twice or extended by a later table, `tasks` itself defined, a header inside
# a multi-line string, other tables after the tasks, arrays of tables, a broken header.
NAMES = ["a", "b", "c", '"q.x"']
BLOCKS = st.one_of(
    st.builds("[tasks.{}]\ncmd = \"{}\"\n".format, st.sampled_from(NAMES), st.sampled_from("xy")),
    st.builds("[tasks.{}.env]\nX = \"1\"\n".format, st.sampled_from(NAMES)),
    st.sampled_from([
        "[tasks]\n",
        "[tasks]\nd = { cmd = \"x\" }\n",
        "tasks = { e = { cmd = \"x\" } }\n",
        "tasks.f.cmd = \"x\"\n",
        "[vars]\nV = \"1\"\n",
        "[settings]\njobs = 2\n",
        "cmd = \"\"\"\n[tasks.evil]\ncmd = \"x\"\n\"\"\"\n",
        "cmd = '''\n[tasks.evil2]\n'''\n",
        "inputs = [\n  [\"a\"],\n]\n",
        "[[tasks.arr]]\ncmd = \"x\"\n",
        "  [tasks.indented]\ncmd = \"x\"\n",
        "# [tasks.comment]\n",
        "[tasks.broken\n",
        "[ tasks . spaced ]\ncmd = \"x\"\n",
        "description = \"a\"\n",
    ]),
)


@contextmanager
def parts_of(tables: int) -> Iterator[None]:
    """Cut after every `tables` task tables, so that short texts are parsed in parts."""
    kept = tomlparts.PART_TABLES
    tomlparts.PART_TABLES = tables
    try:
        yield
    finally:
        tomlparts.PART_TABLES = kept


def outcome(parse: Any, text: str) -> tuple[str, object]:
    try:
        return "document", parse(text)
    except tomllib.TOMLDecodeError as exc:
        return "error", str(exc)


@settings(max_examples=400, deadline=None)
@given(st.lists(BLOCKS, max_size=10), st.integers(1, 3))
@example(["tasks = { e = { cmd = \"x\" } }\n", "[tasks.a]\n", "[tasks.b]\n"], 1)  # closed
@example(["tasks.f.cmd = \"x\"\n", "[tasks.a]\n", "[tasks.b]\n"], 1)  # dotted, then tables
@example(["[tasks.a]\n", "[tasks]\n", "[tasks.b]\n", "[tasks]\n"], 1)  # `tasks` twice
@example(["[tasks.a]\n", "[tasks.b]\n", "[tasks.a.env]\nX = \"1\"\n"], 1)  # extended later
def test_the_parts_give_what_the_whole_text_gives(blocks: list[str], tables: int) -> None:
    text = "".join(blocks)
    with parts_of(tables):
        in_parts = outcome(lambda t: tomlparts.loads(t, tomllib.loads), text)
    whole = outcome(tomllib.loads, text)
    assert in_parts == whole
    if in_parts[0] == "document":
        assert str(in_parts[1]) == str(whole[1])  # the same order, at every level


def generated(n: int) -> str:
    """A Flowfile as a generator writes one: settings, then one table per task."""
    tables = [f'[tasks.t{i}]\ncmd = "echo {i} > {{output}}"\noutputs = ["out/{i}.txt"]\n'
              for i in range(n)]
    return '[settings]\ndefault = ["t0"]\n\n' + "\n".join(tables)


@pytest.mark.parametrize("preamble", [True, False])
def test_a_generated_flowfile_is_parsed_in_parts_never_whole(preamble: bool) -> None:
    text = generated(20)
    if not preamble:
        text = text[text.index("[tasks."):]
    seen: list[str] = []

    def parse(part: str) -> dict[str, Any]:
        seen.append(part)
        return tomllib.loads(part)

    with parts_of(3):
        document = tomlparts.loads(text, parse)
    assert document == tomllib.loads(text)
    assert len(seen) == 1 + 7 and text not in seen  # the text before the first task, 7 parts
    assert "".join(seen) == text


def test_an_error_deep_in_a_large_flowfile_names_its_line(project: Project) -> None:
    """Past the size where parts are used, a syntax error still names its line in the whole
    file, and a valid file loads every task."""
    n = 2 * tomlparts.PART_TABLES + 10
    project.flowfile(generated(n))
    result = project.bflow("list")
    assert result.returncode == 0, result.stderr
    assert len([line for line in result.stdout.splitlines() if line.startswith("t")]) == n
    lines = generated(n).split("\n")
    broken = lines.index(f"[tasks.t{n - 5}]") + 1
    lines[broken] = 'cmd = "unterminated'
    project.flowfile("\n".join(lines))
    result = project.bflow("list")
    assert result.returncode == 2
    assert f"Flowfile:{broken + 1}:" in result.stderr, result.stderr
