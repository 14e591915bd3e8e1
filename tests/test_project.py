"""From declarations to task instances: foreach, placeholders, globs, links and every check."""

from __future__ import annotations

import contextlib
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

import buildflow
from buildflow import globbing, placeholders
from buildflow.errors import FlowfileError
from buildflow.model import Project


def write(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(path)


def load(root: Path, text: str, **overrides: str) -> Project:
    """The project loaded as `bflow` loads it in `root`, where messages name the `Flowfile`."""
    (root / "Flowfile").write_text(textwrap.dedent(text))
    with contextlib.chdir(root):
        return buildflow.load(root / "Flowfile", overrides=overrides)


def problems(root: Path, text: str) -> list[str]:
    with pytest.raises(FlowfileError) as caught:
        load(root, text)
    return caught.value.problems


COMPILE = """
[vars]
CC = "gcc"
[tasks.compile]
foreach = ["src/**/*.c", "!src/skip/**"]
cmd = "{CC} -c {item} -o {output}"
outputs = ["build/{relstem}.o"]
[tasks.link]
cmd = "{CC} {inputs} -o {output}"
inputs = ["build/**/*.o"]
outputs = ["build/app"]
"""


def test_foreach_instances_sorted_named_and_linked(tmp_path: Path) -> None:
    write(tmp_path, "src/z.c", "src/net/tcp.c", "src/a.c", "src/skip/no.c", "src/a.h")
    project = load(tmp_path, COMPILE)
    assert list(project.tasks) == ["compile:src/a.c", "compile:src/net/tcp.c",
                                   "compile:src/z.c", "link"]
    tcp = project.tasks["compile:src/net/tcp.c"]
    assert tcp.commands == ("gcc -c src/net/tcp.c -o build/net/tcp.o",)
    assert tcp.inputs == ("src/net/tcp.c",) and tcp.item == "src/net/tcp.c"
    link = project.tasks["link"]
    assert link.inputs == ("build/a.o", "build/net/tcp.o", "build/z.o")
    assert link.commands == ("gcc build/a.o build/net/tcp.o build/z.o -o build/app",)
    assert project.graph.upstream["link"] == (
        "compile:src/a.c", "compile:src/net/tcp.c", "compile:src/z.c")


def test_vars_overridden_from_the_command_line(tmp_path: Path) -> None:
    write(tmp_path, "src/a.c")
    project = load(tmp_path, COMPILE, CC="clang")
    assert project.tasks["link"].commands == ("clang build/a.o -o build/app",)


def test_foreach_sees_outputs_of_tasks_declared_after_it(tmp_path: Path) -> None:
    project = load(tmp_path, """
        [tasks.copy]
        foreach = "gen/*.txt"
        cmd = "cp {item} {output}"
        outputs = ["out/{name}"]
        [tasks.stage]
        foreach = "pre/*.in"
        cmd = "cp {item} {output}"
        outputs = ["gen/{stem}.txt"]
        [tasks.pre]
        cmd = "touch {outputs}"
        outputs = ["pre/a.in", "pre/b.in"]
        """)
    assert list(project.tasks) == ["copy:gen/a.txt", "copy:gen/b.txt", "stage:pre/a.in",
                                   "stage:pre/b.in", "pre"]
    assert project.graph.closure(["copy:gen/b.txt"]) == ["pre", "stage:pre/b.in",
                                                         "copy:gen/b.txt"]


def test_inputs_keep_the_written_order_each_file_once(tmp_path: Path) -> None:
    write(tmp_path, "main.o", "lib/b.a", "lib/a.a", "lib/c.a", "extra.o")
    project = load(tmp_path, """
        [tasks.link]
        cmd = "ld {inputs}"
        inputs = ["main.o", "lib/*.a", "!lib/c.a", "main.o", "lib/b.a", "extra.o"]
        """)
    assert project.tasks["link"].inputs == ("main.o", "lib/a.a", "lib/b.a", "extra.o")


def test_every_placeholder(tmp_path: Path) -> None:
    write(tmp_path, "src/net/tcp.c", "hdr.h")
    project = load(tmp_path, """
        [vars]
        OUT = "build"
        [tasks.c]
        foreach = "src/**/*.c"
        cmd = "{item}|{dir}|{name}|{stem}|{ext}|{rel}|{relstem}|{task}|{input}|{inputs}|{output}|{outputs}|{depfile}|{{x}}|{nope}"
        inputs = ["hdr.h"]
        outputs = ["{OUT}/{relstem}.o", "{OUT}/{task}.log"]
        depfile = "{output}.d"
        env = { WHO = "{task}", SRC = "{item}", ALL = "{inputs}" }
        """)
    task = project.tasks["c:src/net/tcp.c"]
    assert task.outputs == ("build/net/tcp.o", "build/c:src/net/tcp.c.log")
    assert task.depfile == "build/net/tcp.o.d"
    assert task.commands == (
        "src/net/tcp.c|src/net|tcp.c|tcp|.c|net/tcp.c|net/tcp|c:src/net/tcp.c|src/net/tcp.c|"
        "src/net/tcp.c hdr.h|build/net/tcp.o|build/net/tcp.o build/c:src/net/tcp.c.log|"
        "build/net/tcp.o.d|{x}|{nope}",)
    assert dict(task.env) == {"WHO": "c:src/net/tcp.c", "SRC": "src/net/tcp.c",
                              "ALL": "src/net/tcp.c hdr.h"}


def test_cwd_placeholders_and_paths_relative_to_it(tmp_path: Path) -> None:
    write(tmp_path, "pkg/src/a b.c")
    project = load(tmp_path, """
        [vars]
        PKG = "pkg"
        [tasks.t]
        foreach = "{PKG}/src/*.c"
        cwd = "{PKG}"
        cmd = "cc {item} -o {output} && cd {dir}"
        outputs = ["{PKG}/out/{stem}.o"]
        env = { OBJ = "{output}" }
        """)
    task = project.tasks["t:pkg/src/a b.c"]
    assert task.cwd == "pkg"
    assert task.commands == ("cc 'src/a b.c' -o 'out/a b.o' && cd src",)
    assert dict(task.env) == {"OBJ": "out/a b.o"}


def test_settings_env_comes_first_and_takes_placeholders(tmp_path: Path) -> None:
    project = load(tmp_path, """
        [settings]
        env = { LC_ALL = "C", WHO = "{task}" }
        [tasks.t]
        cmd = "true"
        env = { LC_ALL = "POSIX" }
        """)
    assert project.tasks["t"].env == (("LC_ALL", "C"), ("WHO", "t"), ("LC_ALL", "POSIX"))


def test_a_glob_never_matches_the_tasks_own_outputs(tmp_path: Path) -> None:
    write(tmp_path, "build/in.txt", "build/all.txt")
    project = load(tmp_path, """
        [tasks.cat]
        cmd = "cat {inputs} > {output}"
        inputs = ["build/*.txt"]
        outputs = ["build/all.txt"]
        """)
    assert project.tasks["cat"].inputs == ("build/in.txt",)


def test_directory_outputs(tmp_path: Path) -> None:
    project = load(tmp_path, """
        [tasks.docs]
        cmd = "mkdir -p {output} && touch {output}/index.html"
        outputs = ["site/"]
        [tasks.publish]
        cmd = "true"
        inputs = ["site/index.html"]
        [tasks.archive]
        cmd = "true"
        inputs = ["site/**/*.html"]
        [tasks.whole]
        cmd = "true"
        inputs = ["site/"]
        """)
    assert project.tasks["docs"].outputs == ("site",)
    assert project.tasks["docs"].dir_outputs == {"site"}
    for name in ("publish", "archive", "whole"):
        assert project.graph.upstream[name] == ("docs",), name
    assert project.tasks["publish"].inputs == ("site/index.html",)
    assert project.warnings == ()


def test_group_tasks_and_deps_on_foreach_tasks(tmp_path: Path) -> None:
    write(tmp_path, "a.c", "b.c")
    project = load(tmp_path, """
        [tasks.cc]
        foreach = "*.c"
        cmd = "true"
        [tasks.one]
        deps = ["cc:b.c"]
        [tasks.all]
        deps = ["cc", "one"]
        description = "everything"
        """)
    assert project.tasks["all"].is_group
    assert project.tasks["all"].deps == ("cc:a.c", "cc:b.c", "one")
    assert project.tasks["one"].deps == ("cc:b.c",)


def test_unknown_dependency_suggests_a_name(tmp_path: Path) -> None:
    assert problems(tmp_path, """
        [tasks.compile]
        cmd = "x"
        [tasks.link]
        cmd = "y"
        deps = ["compil"]
        """) == ["Flowfile: tasks.link.deps[0]: unknown task 'compil' (did you mean 'compile'?)"]


def test_cycle_through_file_links(tmp_path: Path) -> None:
    assert problems(tmp_path, """
        [tasks.a]
        cmd = "x"
        inputs = ["b.out"]
        outputs = ["a.out"]
        [tasks.b]
        cmd = "y"
        inputs = ["a.out"]
        outputs = ["b.out"]
        """) == ["Flowfile: tasks.a.inputs: dependency cycle: a -> b -> a (a reads 'b.out', an "
                 "output of b; b reads 'a.out', an output of a)"]


def test_cycle_through_deps(tmp_path: Path) -> None:
    found = problems(tmp_path, """
        [tasks.a]
        deps = ["b"]
        [tasks.b]
        cmd = "x"
        deps = ["c"]
        [tasks.c]
        cmd = "y"
        deps = ["a"]
        """)
    assert found == ["Flowfile: tasks.a.deps: dependency cycle: a -> b -> c -> a (a lists b in "
                     "deps; b lists c in deps; c lists a in deps)"]


def test_duplicate_output_names_both_tasks(tmp_path: Path) -> None:
    assert problems(tmp_path, """
        [tasks.first]
        cmd = "x"
        outputs = ["out.txt"]
        [tasks.second]
        cmd = "y"
        outputs = ["./out.txt"]
        """) == ["Flowfile: tasks.second.outputs[0]: output 'out.txt' of task 'second' is also "
                 "declared by task 'first' (tasks.first.outputs[0]); each file has one producer"]


def test_outputs_outside_the_root_or_in_the_cache(tmp_path: Path) -> None:
    found = problems(tmp_path, """
        [tasks.t]
        cmd = "x"
        outputs = ["../up.txt", "/abs.txt", ".bflow/x", "ok/../../no"]
        """)
    assert [p.split(": ")[1] for p in found] == [f"tasks.t.outputs[{i}]" for i in range(4)]
    assert "output '../up.txt' is outside the project root" in found[0]
    assert "inside the cache dir '.bflow'" in found[2]


def test_an_output_holding_the_cache_dir_is_an_error(tmp_path: Path) -> None:
    # its task's run (`rm -rf build`) would take the records, and every build ran it again
    assert problems(tmp_path, """
        [settings]
        cache_dir = "build/.bflow"
        [tasks.gen]
        cmd = "mkdir -p build && echo hi > build/a.txt"
        outputs = ["build/"]
        """) == ["Flowfile: tasks.gen.outputs[0]: output 'build/' holds the cache dir "
                 "'build/.bflow', where bflow keeps its records; set settings.cache_dir "
                 "outside it"]


def test_the_flowfile_is_no_task_s_output(tmp_path: Path) -> None:
    assert problems(tmp_path, """
        [tasks.regenerate]
        cmd = "echo '# regenerated' >> Flowfile"
        outputs = ["./Flowfile"]
        """) == ["Flowfile: tasks.regenerate.outputs[0]: output './Flowfile' is this Flowfile: "
                 "bflow reads it before anything runs, and `bflow clean` would delete it"]


def test_a_depfile_is_the_task_s_own_file(tmp_path: Path) -> None:
    # `bflow clean` deletes it: never the Flowfile, a source or another task's output
    (tmp_path / "src.txt").write_text("x\n")
    assert problems(tmp_path, """
        [tasks.t]
        cmd = "cp {input} {output}"
        inputs = ["src.txt"]
        outputs = ["out.txt"]
        depfile = "src.txt"
        [tasks.u]
        cmd = "x"
        outputs = ["u.txt"]
        depfile = "./Flowfile"
        [tasks.b]
        cmd = "x"
        outputs = ["b.out"]
        depfile = "out.txt"
        [tasks.gen]
        cmd = "x"
        outputs = ["gen/"]
        depfile = "gen/gen.d"
        [tasks.c]
        cmd = "x"
        outputs = ["c.out"]
        depfile = "gen/c.d"
        """) == [f"Flowfile: tasks.{task}.depfile: depfile '{path}' of task '{task}' is {whose}; "
                 f"bflow clean deletes a task's depfile, so name a file of the task's own "
                 f"(e.g. \"{path}.d\")" for task, path, whose in [
                     ("t", "src.txt", "a source a task reads"),
                     ("u", "Flowfile", "this Flowfile"),
                     ("b", "out.txt", "an output of task 't'"),
                     # each run of `c` changed `gen`'s directory, so `gen` ran again after it
                     ("c", "gen/c.d", "inside a directory output of task 'gen'")]]


def test_an_output_inside_another_tasks_directory_output(tmp_path: Path) -> None:
    assert problems(tmp_path, """
        [tasks.file]
        cmd = "x"
        outputs = ["site/x.html"]
        [tasks.dir]
        cmd = "y"
        outputs = ["site/"]
        """) == ["Flowfile: tasks.file.outputs[0]: output 'site/x.html' of task 'file' is "
                 "inside a directory output of task 'dir'"]


def test_input_neither_on_disk_nor_produced(tmp_path: Path) -> None:
    write(tmp_path, "src/dir/x")
    found = problems(tmp_path, """
        [tasks.gen]
        cmd = "x"
        outputs = ["gen/version.h"]
        [tasks.use]
        cmd = "y"
        inputs = ["gen/versoin.h", "missing.txt", "src/dir"]
        """)
    assert found == [
        "Flowfile: tasks.use.inputs[0]: input 'gen/versoin.h' of task 'use' is neither on disk "
        "nor an output of any task (did you mean 'gen/version.h'?)",
        "Flowfile: tasks.use.inputs[1]: input 'missing.txt' of task 'use' is neither on disk "
        "nor an output of any task",
        "Flowfile: tasks.use.inputs[2]: 'src/dir' is a directory; to depend on its files "
        "write 'src/dir/**'",
    ]


def test_unknown_default_target(tmp_path: Path) -> None:
    found = problems(tmp_path, """
        [settings]
        default = ["al"]
        [tasks.all]
        cmd = "x"
        outputs = ["out.txt"]
        """)
    assert len(found) == 1 and found[0].startswith("Flowfile: settings.default[0]: unknown "
                                                    "target 'al'")
    assert "did you mean 'all'?" in found[0]


def test_an_empty_default_is_said_to_be(tmp_path: Path) -> None:
    # read as no default at all, a plain `bflow` built every task
    assert problems(tmp_path, """
        [settings]
        default = []
        [tasks.all]
        cmd = "x"
        """) == ["Flowfile: settings.default: an empty list: name the tasks a plain `bflow` "
                 "builds, or leave it out to build every task"]


def test_default_may_name_an_output(tmp_path: Path) -> None:
    project = load(tmp_path, """
        [settings]
        default = ["out.txt"]
        [tasks.all]
        cmd = "x"
        outputs = ["out.txt"]
        """)
    assert project.settings.default == ("out.txt",)


def test_warnings_for_loose_near_misses_and_misplaced_placeholders(tmp_path: Path) -> None:
    project = load(tmp_path, """
        [vars]
        CFLAGS = "-O2"
        [tasks.t]
        cmd = "cc {CFL} {out} {item} awk '{print $1}' {HOME} ${ouput}"
        outputs = ["o"]
        """)
    assert project.warnings == (
        "Flowfile: tasks.t.cmd: '{CFL}' is not a placeholder, so it is left as written "
        "(did you mean 'CFLAGS'?)",
        "Flowfile: tasks.t.cmd: '{out}' is not a placeholder, so it is left as written "
        "(did you mean 'output'?)",
        "Flowfile: tasks.t.cmd: '{item}' is a placeholder only under foreach; it is left "
        "as written",
    )


def test_misspelt_placeholders_are_errors(tmp_path: Path) -> None:
    found = problems(tmp_path, """
        [vars]
        CFLAGS = "-O2"
        [tasks.t]
        cmd = ["cc {CFALGS} {cflags}", "awk 'NR==1{next} {print}' > {ouput}"]
        outputs = ["o"]
        """)
    assert found == [
        "Flowfile: tasks.t.cmd[0]: '{CFALGS}' is neither a var nor a placeholder (did you "
        "mean 'CFLAGS'?); for literal braces write '{{CFALGS}}'",
        "Flowfile: tasks.t.cmd[0]: '{cflags}' is neither a var nor a placeholder (did you "
        "mean 'CFLAGS'?); for literal braces write '{{cflags}}'",
        "Flowfile: tasks.t.cmd[1]: '{ouput}' is neither a var nor a placeholder (did you "
        "mean 'output'?); for literal braces write '{{ouput}}'",
    ]


def test_what_follows_from_a_misspelt_placeholder_or_an_unset_variable_is_not_said_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`inputs = ["{ouput}"]` also said the input was on no disk, and an unset `{env.NOPE}`
    in `outputs` that the output '' was outside the root."""
    monkeypatch.delenv("NOPE", raising=False)
    assert problems(tmp_path, """
        [tasks.b]
        cmd = "cat {input} > {output}"
        inputs = ["{ouput}"]
        outputs = ["b"]
        [tasks.c]
        cmd = "x"
        outputs = ["{env.NOPE}"]
        """) == [
        "Flowfile: tasks.c.outputs[0]: environment variable 'NOPE' is not set ({env.NOPE}); "
        "set it, or give a default: {env.NOPE:-text}",
        "Flowfile: tasks.b.inputs[0]: '{ouput}' is neither a var nor a placeholder (did you "
        "mean 'output'?); for literal braces write '{{ouput}}'"]


def test_awk_statements_in_braces_are_neither_errors_nor_warnings(tmp_path: Path) -> None:
    # `{print}` was a validate warning ("did you mean 'input'?") on the README's own example
    (tmp_path / "i").write_text("x\n")
    project = load(tmp_path, """
        [tasks.t]
        cmd = "awk 'NR==1{next} {print}' {input} > {output}"
        inputs = ["i"]
        outputs = ["o"]
        """)
    assert project.warnings == ()


def test_foreach_matching_nothing_is_a_warning(tmp_path: Path) -> None:
    project = load(tmp_path, """
        [tasks.t]
        foreach = "*.c"
        cmd = "x"
        [tasks.all]
        deps = ["t"]
        """)
    assert [n for n in project.tasks] == ["all"]
    assert project.warnings == ("Flowfile: tasks.t.foreach: matches no file, so the task has "
                                "no instances",)


@pytest.mark.parametrize("entry", ["src/*/", "!src/*/"])
def test_a_glob_ending_in_a_slash_is_an_error_saying_what_to_write(tmp_path: Path,
                                                                    entry: str) -> None:
    # `src/*/` matched the files right in src/ (src/top.c), none in the directories under it
    write(tmp_path, "src/top.c", "src/x/a.c")
    where = "inputs[1]" if entry.startswith("!") else "inputs[0]"
    entries = '["src/**", "!src/*/"]' if entry.startswith("!") else '["src/*/"]'
    bang = "!" if entry.startswith("!") else ""
    assert problems(tmp_path, f'[tasks.a]\ncmd = "true"\ninputs = {entries}\n') == [
        f"Flowfile: tasks.a.{where}: '{entry}' ends in '/', so it would match directories, "
        f"and inputs are files; for the files in them write '{bang}src/*/**'"]



def test_a_depfile_every_instance_writes_and_an_empty_one_are_errors(tmp_path: Path) -> None:
    # they were taken: the instances overwrote one another's, and "" named no file at all
    write(tmp_path, "src/a.c", "src/b.c", "src/c.c")
    assert problems(tmp_path, """
        [tasks.cc]
        foreach = "src/*.c"
        cmd = "true"
        outputs = ["out/{stem}.o"]
        depfile = "deps.d"
        """) == ["Flowfile: tasks.cc.depfile: depfile 'deps.d' is written by both 'cc:src/a.c' "
                 "and 'cc:src/b.c'; give each instance its own (e.g. \"{output}.d\")"]
    assert problems(tmp_path, '[tasks.a]\ncmd = "true"\noutputs = ["o"]\ndepfile = ""\n') == [
        "Flowfile: tasks.a.depfile: an empty path; leave depfile out for none"]


def test_one_file_declared_twice_through_a_symlinked_directory_is_an_error(
        tmp_path: Path) -> None:
    # accepted, and every build ran one task, then the other, for ever
    (tmp_path / "out").mkdir()
    (tmp_path / "alias").symlink_to("out")
    for first, second in (("out", "alias"), ("alias", "out")):
        assert problems(tmp_path, f"""
            [tasks.a]
            cmd = "true"
            outputs = ["{first}/x.txt"]
            [tasks.b]
            cmd = "true"
            outputs = ["{second}/x.txt"]
            """) == [f"Flowfile: tasks.b.outputs[0]: output '{second}/x.txt' of task 'b' is also "
                     f"declared by task 'a' (tasks.a.outputs[0]) as '{first}/x.txt', the same "
                     "file through a symlinked directory; each file has one producer"]


def test_what_bflow_keeps_is_no_output_or_depfile_through_a_symlinked_directory(
        tmp_path: Path) -> None:
    # `lnk -> .`: each was refused as written directly, but accepted through the link, and
    # `bflow clean` then deleted the Flowfile or the source (or the task wrote bflow's state)
    (tmp_path / "lnk").symlink_to(".")
    write(tmp_path, "src.c")
    for key, path, whose in (
            ("outputs", "lnk/Flowfile", "output 'lnk/Flowfile' is this Flowfile"),
            ("outputs", "lnk/.bflow/state", "output 'lnk/.bflow/state' is inside the cache dir"),
            ("depfile", "lnk/src.c", "depfile 'lnk/src.c' of task 'a' is a source a task reads")):
        value = f'"{path}"' if key == "depfile" else f'["{path}"]'
        extra = "" if key == "outputs" else 'outputs = ["a.o"]\n'
        found = problems(tmp_path, f'[tasks.a]\ncmd = "true"\ninputs = ["src.c"]\n'
                                   f"{extra}{key} = {value}\n")
        assert len(found) == 1 and whose in found[0], found


def test_a_reader_must_name_an_output_as_its_writer_does_through_a_symlinked_directory(
        tmp_path: Path) -> None:
    # `b` read `gen.txt`, which `a` writes as `lnk/gen.txt`: no link, so b ran beside a and
    # copied the old content
    (tmp_path / "lnk").symlink_to(".")
    write(tmp_path, "gen.txt")
    assert problems(tmp_path, """
        [tasks.a]
        cmd = "true"
        outputs = ["lnk/gen.txt"]
        [tasks.b]
        cmd = "true"
        inputs = ["gen.txt"]
        """) == ["Flowfile: tasks.b.inputs[0]: input 'gen.txt' of task 'b' is the output "
                 "'lnk/gen.txt' of task 'a' through a symlinked directory; name it "
                 "'lnk/gen.txt', as that task writes it, so that this one waits for it"]


def test_an_absolute_path_inside_the_root_is_the_file_its_relative_path_names(
        tmp_path: Path) -> None:
    # an absolute output was "outside the project root"; an absolute input of another task's
    # output was no link (a load error on a fresh checkout, a stale read after)
    project = load(tmp_path, f"""
        [tasks.a]
        cmd = "true"
        outputs = ["{tmp_path}/gen.txt"]
        [tasks.b]
        cmd = "true"
        inputs = ["{tmp_path}/gen.txt"]
        depfile = "{tmp_path}/b.d"
        """)
    assert project.tasks["a"].outputs == ("gen.txt",)
    assert project.tasks["b"].inputs == ("gen.txt",) and project.tasks["b"].depfile == "b.d"
    assert project.graph.producer_of("gen.txt") == "a"


def test_deps_naming_an_instance_of_a_task_without_instances_is_unknown(
        tmp_path: Path) -> None:
    # `a:x` was taken as `a`, which the command line and settings.default refuse
    assert problems(tmp_path, """
        [tasks.a]
        cmd = "true"
        [tasks.b]
        cmd = "true"
        deps = ["a:x"]
        """) == ["Flowfile: tasks.b.deps[0]: unknown task 'a:x'"]


def test_a_task_named_as_another_task_s_output_is_warned_of(tmp_path: Path) -> None:
    # the name meant the task, `./` the file: which one `bflow out/y.txt` built was a surprise
    project = load(tmp_path, """
        [tasks."out/y.txt"]
        cmd = "true"
        [tasks.makes_y]
        cmd = "true"
        outputs = ["out/y.txt"]
        [tasks.site]
        cmd = "true"
        outputs = ["site/"]
        """)
    assert project.warnings == (
        "Flowfile: tasks.out/y.txt: its name is also the path of an output of task 'makes_y': "
        "`bflow out/y.txt` builds this task, `bflow ./out/y.txt` that file",)


def test_a_name_in_braces_that_is_no_var_is_judged_once_per_project(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A literal `{checksum}` in thousands of different commands was matched against every
    var in each: a load of 8,000 such tasks with 300 vars took 6.7 s against 0.5 s."""
    judged: list[str] = []
    misspelt = placeholders.misspelt

    def counted(name: str, known: Sequence[str]) -> str | None:
        judged.append(name)
        return misspelt(name, known)

    monkeypatch.setattr(placeholders, "misspelt", counted)
    project = load(tmp_path, '[vars]\nOUTPUT_DIR = "x"\nSUM = "x"\n' + "".join(
        f'[tasks.t{i}]\ncmd = "echo {i} {{checksum}} {{outdirs}}"\n' for i in range(30)))
    assert judged == ["checksum", "outdirs"]
    assert project.warnings == tuple(  # each task's near miss is still said
        f"Flowfile: tasks.t{i}.cmd: '{{outdirs}}' is not a placeholder, so it is left as "
        "written (did you mean 'OUTPUT_DIR'?)" for i in range(30))
    judged.clear()
    with pytest.raises(FlowfileError) as caught:  # and each task's mistake
        load(tmp_path, '[vars]\nSUM = "x"\n' + "".join(
            f'[tasks.t{i}]\ncmd = "echo {i} {{SUMM}}"\n' for i in range(3)))
    assert judged == ["SUMM"]
    assert [p.split(":")[1] for p in caught.value.problems] == [
        f" tasks.t{i}.cmd" for i in range(3)]


def test_an_exclusion_written_as_a_path_is_taken_out_by_a_lookup(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each `!` took a pass over every file matched so far, a literal path too: 2,000 files
    left out of 20,000 loaded in 5.5 s. A glob exclusion still takes its pass."""
    write(tmp_path, *(f"src/d{i % 10}/f{i}.txt" for i in range(60)))
    compiled: list[str] = []
    compile_glob = globbing.compile_glob

    def counted(pattern: str) -> re.Pattern[str]:
        compiled.append(pattern)
        return compile_glob(pattern)

    monkeypatch.setattr(globbing, "compile_glob", counted)
    left_out = [f"src/d{i % 10}/f{i}.txt" for i in range(0, 60, 3)]
    project = load(tmp_path, f"""
        [tasks.join]
        cmd = "cat {{inputs}} > {{output}}"
        inputs = ["src/**/*.txt", {", ".join(f'"!{path}"' for path in left_out)}, "!src/d1/*"]
        outputs = ["all.txt"]
        [tasks.each]
        foreach = ["src/**/*.txt", {", ".join(f'"!{path}"' for path in left_out)}]
        cmd = "cp {{item}} {{output}}"
        outputs = ["out/{{stem}}.txt"]
        """)
    kept = sorted(f"src/d{i % 10}/f{i}.txt" for i in range(60) if i % 3 and i % 10 != 1)
    assert sorted(project.tasks["join"].inputs) == kept
    assert len([name for name in project.tasks if name.startswith("each:")]) == 40
    assert not set(compiled) & set(left_out) and "src/d1/*" in compiled
