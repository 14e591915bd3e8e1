"""Typed reading of raw TOML values: every mismatch is one problem, one line, naming its place
and what was expected; reading goes on after it."""

from __future__ import annotations

import math

import pytest

from buildflow.typecheck import Checker, type_name


def test_type_names_say_what_was_found() -> None:
    assert [type_name(v) for v in ("x", True, 3, 1.5, [], {})] == [
        "a string", "a boolean (True)", "an integer (3)", "a number (1.5)", "a list", "a table"]
    assert type_name(None) == "NoneType"


def test_every_problem_is_collected_with_its_place() -> None:
    check = Checker("Flowfile")
    assert check.strings(["a.c", 3, "b.c", False], "tasks.cc.inputs") == ("a.c", "b.c")
    assert check.problems == [
        "Flowfile: tasks.cc.inputs[1]: expected a string, got an integer (3)",
        "Flowfile: tasks.cc.inputs[3]: expected a string, got a boolean (False)"]


def test_one_string_stands_for_a_list_of_one() -> None:
    check = Checker("Flowfile")
    assert check.strings("a.c", "inputs") == ("a.c",)
    assert check.strings({"a": 1}, "inputs") == ()
    assert check.problems == ["Flowfile: inputs: expected a string or a list of strings, got "
                              "a table"]


def test_a_nul_character_is_refused_where_no_path_or_command_can_hold_it() -> None:
    check = Checker("Flowfile")
    assert check.string("a\0b", "tasks.a.cmd") is None
    assert "contains a NUL character" in check.problems[0]


def test_unknown_keys_are_named_with_a_suggestion_or_the_known_ones() -> None:
    check = Checker("Flowfile")
    assert check.keys({"ouputs": [], "cmd": ""}, "tasks.a", ("cmd", "outputs")) is False
    assert check.keys({"zzz": 1}, "", ("cmd", "outputs")) is False
    assert check.keys({"cmd": ""}, "tasks.a", ("cmd",)) is True
    assert check.problems == [
        "Flowfile: tasks.a.ouputs: unknown key (did you mean 'outputs'?)",
        "Flowfile: zzz: unknown key (known keys: cmd, outputs)"]


def test_a_key_with_a_newline_stays_on_one_line() -> None:
    check = Checker("Flowfile")
    check.keys({"a\nb": 1}, "tasks", ("cmd",))
    assert len(check.problems) == 1 and "\n" not in check.problems[0]
    assert "tasks.a\\nb" in check.problems[0]


def test_environment_tables_refuse_names_no_environment_can_hold() -> None:
    check = Checker("Flowfile")
    table = {"OK": "1", "": "x", "A=B": "y", "N": 2}
    assert check.string_table(table, "settings.env", env=True) == (("OK", "1"),)
    assert [p.split(": ")[1] for p in check.problems] == [
        "settings.env.", "settings.env.A=B", "settings.env.N"]
    assert check.string_table({"A=B": "y"}, "vars") == (("A=B", "y"),)  # not an env table
    assert check.string_table(["x"], "vars") == ()


@pytest.mark.parametrize("value, integer, expected", [
    (3, True, 3), (2.5, False, 2.5), (0, False, 0), (10**9, True, 10**9),
    (2.5, True, None), (True, False, None), ("3", False, None), (-1, False, None),
    (math.nan, False, None), (10**9 + 1, True, None)])
def test_numbers_are_whole_when_asked_and_within_bounds(value: object, integer: bool,
                                                        expected: float | None) -> None:
    check = Checker("Flowfile")
    assert check.number(value, "settings.jobs", integer=integer) == expected
    assert bool(check.problems) == (expected is None)


def test_booleans_are_only_true_or_false() -> None:
    check = Checker("Flowfile")
    assert check.boolean(True, "a") is True
    assert check.boolean(1, "b") is False
    assert check.problems == ["Flowfile: b: expected true or false, got an integer (1)"]


def test_a_count_may_be_written_as_a_whole_float() -> None:
    # SPEC: retries are "numbers"; `retries = 1.0` was refused as not a whole number
    check = Checker("Flowfile")
    assert check.number(2.0, "tasks.a.retries", integer=True) == 2
    assert type(check.number(2.0, "tasks.a.retries", integer=True)) is int
    assert check.number(1.5, "tasks.a.retries", integer=True) is None
    assert check.number(math.inf, "settings.jobs", integer=True) is None
    assert check.problems == [
        "Flowfile: tasks.a.retries: expected a whole number, got a number (1.5)",
        "Flowfile: settings.jobs: expected a whole number, got a number (inf)"]
