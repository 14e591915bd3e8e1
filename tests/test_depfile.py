"""Makefile-syntax depfiles as gcc and clang write them."""

from __future__ import annotations

from buildflow.depfile import parse


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


def test_several_targets_and_glued_colon() -> None:
    assert parse("a.o b.o: x.h\n") == ["x.h"]
    assert parse("a.o:x.h y.h\n") == ["x.h", "y.h"]


def test_empty_file() -> None:
    assert parse("") == []
