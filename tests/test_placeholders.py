"""Placeholder substitution, foreach pieces, and how paths look inside a command."""

from __future__ import annotations

from buildflow import placeholders
from conftest import Project


def test_known_names_are_replaced_and_others_left_alone() -> None:
    text = "{CC} -c {item} | awk '{print $1}' {unknown} { CC } {{CC}} }} {{"
    assert placeholders.expand(text, {"CC": "gcc", "item": "a.c"}) == \
        "gcc -c a.c | awk '{print $1}' {unknown} { CC } {CC} } {"


def test_double_braces_never_expand_their_contents() -> None:
    assert placeholders.expand("{{{CC}}}", {"CC": "gcc"}) == "{gcc}"
    assert placeholders.expand("${{HOME}}", {"HOME": "x"}) == "${HOME}"


def test_unknown_lists_each_unknown_name_once() -> None:
    assert placeholders.unknown("{a} {b} {a} {{c}} {x y}", ["b"]) == ["a"]


def test_item_values_below_the_glob_prefix() -> None:
    values = placeholders.item_values("src/net/tcp.c", "src/**/*.c")
    assert values == {"item": "src/net/tcp.c", "dir": "src/net", "name": "tcp.c",
                      "stem": "tcp", "ext": ".c", "rel": "net/tcp.c", "relstem": "net/tcp"}


def test_item_values_at_the_root() -> None:
    values = placeholders.item_values("README.md", "*.md")
    assert (values["dir"], values["rel"], values["relstem"]) == (".", "README.md", "README")


EVERY = frozenset(placeholders.BUILTIN_NAMES)


def test_names_in_finds_the_placeholders_templates_use() -> None:
    names = placeholders.names_in(["cc {CFLAGS} -c {item} -o {output}", "echo {{literal}} {x"])
    assert names == {"CFLAGS", "item", "output"}


def test_command_values_rebase_only_the_wanted_names() -> None:
    values = {"item": "src/a.c", "dir": "src", "name": "a.c"}
    paths = {"inputs": ["src/a.c"], "output": ["out/a.o"]}
    out = placeholders.command_values(values, paths, "/proj", "sub", quote=True,
                                      wanted=frozenset({"item", "output"}))
    assert (out["item"], out["output"]) == ("../src/a.c", "../out/a.o")
    assert "inputs" not in out and out["dir"] == "src"  # not used: left as it was


def test_command_values_quote_paths_and_leave_vars_raw() -> None:
    values = {"CFLAGS": "-O2 -Wall", "item": "src/my file.c", "dir": "src",
              "name": "my file.c", "task": "compile:src/my file.c"}
    paths = {"inputs": ["src/my file.c", "b.h"], "output": ["build/o.o"]}
    out = placeholders.command_values(values, paths, "/root", "", quote=True, wanted=EVERY)
    assert out["CFLAGS"] == "-O2 -Wall"
    assert out["inputs"] == "'src/my file.c' b.h"
    assert out["item"] == "'src/my file.c'"
    assert out["name"] == "'my file.c'"
    assert out["task"] == "'compile:src/my file.c'"
    assert out["output"] == "build/o.o"


def test_command_values_are_relative_to_the_cwd() -> None:
    values = {"item": "src/a.c", "dir": "src"}
    paths = {"inputs": ["src/a.c", "/usr/include/x.h"], "outputs": ["out.txt"]}
    out = placeholders.command_values(values, paths, "/proj", "sub/dir", quote=True,
                                      wanted=EVERY)
    assert out["inputs"] == "../../src/a.c /usr/include/x.h"
    assert out["outputs"] == "../../out.txt"
    assert out["item"] == "../../src/a.c"
    assert out["dir"] == "../../src"


def test_command_values_with_a_cwd_outside_the_root() -> None:
    out = placeholders.command_values({}, {"inputs": ["a.txt"]}, "/base/proj", "..",
                                      quote=False, wanted=EVERY)
    assert out["inputs"] == "proj/a.txt"


def test_an_empty_dir_is_the_command_directory() -> None:
    out = placeholders.command_values({"dir": ""}, {}, "/proj", "", quote=True, wanted=EVERY)
    assert out["dir"] == "."


def test_a_misspelt_placeholder_stops_the_build_before_anything_runs(project: Project) -> None:
    project.flowfile("""
        [tasks.hello]
        cmd = "echo ran >> runs.log && echo hi > {ouput}"
        outputs = ["out.txt"]
        """)
    result = project.bflow()
    assert result.returncode == 2
    assert result.stderr == (
        "bflow: error: Flowfile: tasks.hello.cmd: '{ouput}' is neither a var nor a "
        "placeholder (did you mean 'output'?); for literal braces write '{{ouput}}'\n")
    assert project.runs() == [] and not (project.root / "{ouput}").exists()


def test_shell_and_awk_braces_still_reach_the_command(project: Project) -> None:
    project.flowfile(r"""
        [tasks.words]
        cmd = [
            'echo "${HOME}" > {output}',
            "printf 'a b\\nc d\\n' | awk 'NR==1{next} {print $1}' >> {output}",
            "echo e f | awk '{print}' >> {output}",
        ]
        outputs = ["out.txt"]
        """)
    result = project.bflow("--plain", env={"HOME": "/home/someone"})
    assert result.returncode == 0, result.stderr
    assert project.read("out.txt") == "/home/someone\nc\ne f\n"
    assert "warning" not in result.stderr
