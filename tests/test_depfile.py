"""Makefile-syntax depfiles as gcc and clang write them."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from buildflow.depfile import RootNames, parse


def test_gcc_mmd_with_continuations() -> None:
    text = "build/a.o: src/a.c include/a.h \\\n  include/b.h\n"
    assert parse(text) == ["src/a.c", "include/a.h", "include/b.h"]


def test_mp_empty_rules_add_nothing_new() -> None:
    text = "a.o: a.c a.h b.h\n\na.h:\n\nb.h:\n"
    assert parse(text) == ["a.c", "a.h", "b.h"]


def test_escaped_spaces_dollars_and_hashes() -> None:
    text = "out.o: my\\ file.c cost$$.h weird\\#name.h\n"
    assert parse(text) == ["my file.c", "cost$.h", "weird#name.h"]


def test_crlf_comments_blank_lines_and_duplicates() -> None:
    text = "# generated\r\na.o: a.c \\\r\n a.h\r\n\r\nb.o: a.h b.c\r\n"
    assert parse(text) == ["a.c", "a.h", "b.c"]


def test_a_comment_after_a_rule_and_order_only_prerequisites_name_no_inputs() -> None:
    """A hand-written `a.o: a.h # see NOTES` made `#`, `see` and `NOTES` inputs, and Make's
    order-only `a.o: x | dir` an input named `|`."""
    assert parse("a.o: a.h # see NOTES\nb.o: b.h#old\n") == ["a.h", "b.h"]
    assert parse("a.o: x.h y.h | out \\\n  logs\nb.o: z.h\n") == ["x.h", "y.h", "z.h"]
    assert parse("a.o: a|b.h weird\\#.h\n") == ["a|b.h", "weird#.h"]


def test_several_targets_and_glued_colon() -> None:
    assert parse("a.o b.o: x.h\n") == ["x.h"]
    assert parse("a.o:x.h y.h\n") == ["x.h", "y.h"]


def test_empty_file() -> None:
    assert parse("") == []


# Names as a compiler may meet them: spaces, dollars, hashes and colons inside.
NAMES = st.text(st.sampled_from("ab/._- $#:"), min_size=1, max_size=8).filter(
    lambda name: not name.isspace() and not name.endswith(":"))


def escaped(name: str) -> str:
    """`name` as gcc writes it in a depfile."""
    return name.replace("$", "$$").replace(" ", "\\ ").replace("#", "\\#")


@given(st.lists(NAMES, min_size=1, max_size=6), st.lists(st.booleans(), min_size=6,
                                                         max_size=6), st.booleans())
def test_what_gcc_writes_reads_back_as_the_names_in_order(names: list[str], breaks: list[bool],
                                                          phony: bool) -> None:
    # gcc -MMD breaks long lines with a backslash; -MP adds an empty rule per header.
    line = "out/x.o:"
    for name, wrap in zip(names, breaks):
        line += (" \\\n  " if wrap else " ") + escaped(name)
    text = line + "\n" + ("".join(f"\n{escaped(name)}:\n" for name in names[1:]) if phony else "")
    assert parse(text) == list(dict.fromkeys(names))


def test_absolute_paths_are_named_from_the_root_however_it_is_spelled(tmp_path: Path) -> None:
    root = tmp_path / "real"
    (root / "inc").mkdir(parents=True)
    (tmp_path / "link").symlink_to(root)
    (tmp_path / "outside").mkdir()
    (root / "ext").symlink_to(tmp_path / "outside")
    names = RootNames(str(root), os.path.realpath)
    assert names.name(f"{root}/inc/h.h") == "inc/h.h"
    assert names.name(f"{tmp_path}/link/inc/h.h") == "inc/h.h"
    assert names.name(f"{tmp_path}/link/h.h") == "h.h"
    assert names.name(f"{tmp_path}/outside/o.h") == f"{tmp_path}/outside/o.h"
    assert names.name("/usr/include/stdio.h") == "/usr/include/stdio.h"


def test_relative_paths_are_named_where_their_directories_lead(tmp_path: Path) -> None:
    root = tmp_path / "real"
    (root / "inc").mkdir(parents=True)
    (root / "lib" / "real").mkdir(parents=True)
    (root / "incl").symlink_to("inc")
    (root / "l").symlink_to("lib/real")
    (tmp_path / "outside").mkdir()
    (root / "ext").symlink_to(tmp_path / "outside")
    names = RootNames(str(root), lambda path: os.path.realpath(os.path.join(root, path)))
    assert names.name("inc/h.h") == "inc/h.h"
    assert names.name("./inc//h.h") == "inc/h.h"
    assert names.name("h.h") == "h.h"
    assert names.name("incl/h.h") == "inc/h.h"
    assert names.name("l/../inc/h.h") == "lib/inc/h.h"  # as the kernel climbs: from lib/real
    assert names.name("inc/../h.h") == "h.h"
    assert names.name("ext/o.h") == "ext/o.h"  # leads out of the root: as written
    assert names.name("../sibling/s.h") == "../sibling/s.h"
