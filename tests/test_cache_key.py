"""Action keys: the same in any checkout directory, different when anything the decision read
or the declared outputs differ."""

from __future__ import annotations

from buildflow.cache.key import action_key, depfile_key, portable

ACTION = (("cc -c a.c -o a.o",), ("CC", "gcc"))
INPUTS = {"a.c": "h1", "inc/a.h": "h2"}


def test_paths_inside_the_root_are_kept_relative_and_others_as_they_are() -> None:
    assert portable("/p/root", "/p/root/inc/a.h") == "inc/a.h"
    assert portable("/p/root/", "/p/root/a.c") == "a.c"
    assert portable("/p/root", "/p/rootless/a.h") == "/p/rootless/a.h"
    assert portable("/p/root", "/usr/include/stdio.h") == "/usr/include/stdio.h"
    assert portable("/p/root", "a.c") == "a.c"


def test_a_checkout_elsewhere_has_the_same_keys() -> None:
    here = action_key("/home/a/proj", ACTION, INPUTS, ["a.o"])
    there = action_key("/tmp/b/proj", ACTION, INPUTS, ["a.o"])
    assert here == there and len(here) == 64
    assert depfile_key("/home/a/proj", here, {"/home/a/proj/inc/b.h": "h3"}) == \
        depfile_key("/tmp/b/proj", there, {"/tmp/b/proj/inc/b.h": "h3"})


def test_anything_the_decision_read_changes_the_key() -> None:
    key = action_key("/r", ACTION, INPUTS, ["a.o"])
    others = [action_key("/r", (("cc -O2 -c a.c -o a.o",), ("CC", "gcc")), INPUTS, ["a.o"]),
              action_key("/r", ACTION, {**INPUTS, "a.c": "h9"}, ["a.o"]),
              action_key("/r", ACTION, {"a.c": "h1"}, ["a.o"]),
              action_key("/r", ACTION, INPUTS, ["a.o", "a.d"]),
              action_key("/r", ACTION, INPUTS, ["b.o"])]
    assert len({key, *others}) == 6


def test_a_depfile_key_does_not_depend_on_the_order_the_depfile_named_its_files() -> None:
    key = action_key("/r", ACTION, INPUTS, ["a.o"])
    assert depfile_key("/r", key, {"x.h": "1", "y.h": "2"}) == \
        depfile_key("/r", key, {"y.h": "2", "x.h": "1"})
    assert depfile_key("/r", key, {"x.h": "1"}) != depfile_key("/r", key, {"x.h": "3"})
