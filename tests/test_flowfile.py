"""Reading a Flowfile: TOML syntax, keys, types, names; discovery and -f/-C."""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from buildflow import flowfile
from buildflow.errors import FatalError, FlowfileError, UsageError
from buildflow.model import Settings
from buildflow.project import resolve
from conftest import Project


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "Flowfile"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(FlowfileError) as caught, contextlib.chdir(tmp_path):
        flowfile.load(str(path))
    return caught.value.problems


def test_every_key_is_read(tmp_path: Path) -> None:
    path = tmp_path / "Flowfile"
    path.write_text(textwrap.dedent("""
        [settings]
        jobs = 3
        default = "all"
        shell = "/bin/bash"
        retries = 1
        retry_delay = 0.5
        timeout = 9
        env = { LC_ALL = "C" }
        cache_dir = ".cache"
        [vars]
        CC = "cc"
        [tasks.t]
        cmd = ["a", "b"]
        inputs = ["x"]
        outputs = ["y"]
        deps = ["u"]
        foreach = "*.c"
        depfile = "y.d"
        env = { A = "1" }
        cwd = "sub"
        retries = 2
        retry_delay = 3
        timeout = 4.5
        always = true
        description = "d"
        """))
    loaded = flowfile.load(str(path))
    assert loaded.settings == Settings(
        jobs=3, default=("all",), shell="/bin/bash", retries=1, retry_delay=0.5, timeout=9.0,
        env=(("LC_ALL", "C"),), cache_dir=".cache")
    assert loaded.vars == (("CC", "cc"),)
    assert loaded.tasks == (flowfile.TaskDecl(
        name="t", cmd=("a", "b"), inputs=("x",), outputs=("y",), deps=("u",),
        foreach=("*.c",), depfile="y.d", env=(("A", "1"),), cwd="sub", retries=2,
        retry_delay=3.0, timeout=4.5, always=True, description="d"),)


def test_toml_syntax_error_shows_line_and_column(tmp_path: Path) -> None:
    found = problems(tmp_path, '[tasks.a]\ncmd = "x"\noutputs = [1,, 2]\n')
    assert found == ["Flowfile:3:14: TOML syntax error: Invalid value"]


def test_toml_error_at_the_end_points_after_the_last_character(tmp_path: Path) -> None:
    found = problems(tmp_path, '[tasks.a]\ncmd = "x"\noutputs = ["a"\n\n')
    assert found == ["Flowfile:3:15: TOML syntax error: Unclosed array at the end of the file"]


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_not_utf8(tmp_path: Path, bom: bytes) -> None:
    # after a byte-order mark the offset was 3 short; neither said the line
    (tmp_path / "Flowfile").write_bytes(bom + b'[tasks.a]\ncmd = "\xff"\n')
    with pytest.raises(FlowfileError) as caught:
        flowfile.load(str(tmp_path / "Flowfile"))
    [problem] = caught.value.problems
    assert problem.endswith(f"Flowfile:2:8: not valid UTF-8 (byte {17 + len(bom)} of the file); "
                            "save it as UTF-8")


def test_unknown_keys_suggest_the_right_name(tmp_path: Path) -> None:
    found = problems(tmp_path, """
        [setings]
        [settings]
        job = 2
        [tasks.a]
        cmd = "x"
        ouputs = ["a"]
        zzz = 1
        """)
    assert "Flowfile: setings: unknown key (did you mean 'settings'?)" in found
    assert "Flowfile: settings.job: unknown key (did you mean 'jobs'?)" in found
    assert "Flowfile: tasks.a.ouputs: unknown key (did you mean 'outputs'?)" in found
    zzz = [p for p in found if "tasks.a.zzz" in p]
    assert zzz and "known keys: cmd, inputs, outputs" in zzz[0]


def test_wrong_types_name_the_key_and_the_value(tmp_path: Path) -> None:
    found = problems(tmp_path, """
        [settings]
        jobs = 0
        timeout = "long"
        [vars]
        N = 1
        [tasks.a]
        cmd = ""
        outputs = ["ok", 3]
        retries = -1
        always = "yes"
        env = { A = true }
        """)
    assert found == [
        "Flowfile: settings.jobs: expected a number from 1 to 1000000000, got 0",
        "Flowfile: settings.timeout: expected a number, got a string",
        'Flowfile: vars.N: expected a string (or { sh = "command" }), got an integer (1)',
        "Flowfile: tasks.a.cmd: a command must not be empty (leave cmd out for a group task)",
        "Flowfile: tasks.a.outputs[1]: expected a string, got an integer (3)",
        "Flowfile: tasks.a.retries: expected a number from 0 to 1000000000, got -1",
        "Flowfile: tasks.a.env.A: expected a string, got a boolean (True)",
        "Flowfile: tasks.a.always: expected true or false, got a string",
    ]


def test_a_value_of_the_wrong_type_is_one_problem(tmp_path: Path) -> None:
    assert problems(tmp_path, """
        [tasks.a]
        cmd = 3
        outputs = ["o"]
        """) == ["Flowfile: tasks.a.cmd: expected a string or a list of strings, got an integer (3)"]


def test_a_flowfile_is_toml_1_0_as_tomllib_reads_it(tmp_path: Path) -> None:
    # TOML 1.1 (tomli 2.4 and later) would take `\x41` for "A": a Flowfile must mean the same
    # wherever it is built, with tomli or with the standard library's tomllib
    found = problems(tmp_path, """
        [tasks.a]
        cmd = "echo \\x41"
        """)
    assert found == ["Flowfile:3:15: TOML syntax error: Unescaped '\\' in a string"]


def test_task_and_var_names(tmp_path: Path) -> None:
    found = problems(tmp_path, """
        [vars]
        output = "x"
        "my-var" = "y"
        [tasks."a:b"]
        cmd = "x"
        [tasks.g]
        outputs = ["o"]
        """)
    assert found[0] == "Flowfile: vars.output: 'output' is a built-in placeholder; name the " \
                       "var something else"
    assert found[1].startswith("Flowfile: vars.my-var: a var name is letters, digits and _")
    assert found[2].startswith("Flowfile: tasks.a:b: a task name starts with a letter")
    assert found[3] == "Flowfile: tasks.g.outputs: a group task (no cmd) cannot have " \
                       "outputs; add a cmd"


def test_no_tasks(tmp_path: Path) -> None:
    assert problems(tmp_path, "[vars]\n") == [
        "Flowfile: tasks: no tasks declared; add a [tasks.NAME] table with a cmd"]


def test_discovery_walks_up_and_prefers_flowfile(tmp_path: Path) -> None:
    (tmp_path / "Flowfile.toml").write_text("")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert flowfile.find_flowfile(str(deep)) == str(tmp_path / "Flowfile.toml")
    (tmp_path / "a" / "Flowfile").write_text("")
    assert flowfile.find_flowfile(str(deep)) == str(tmp_path / "a" / "Flowfile")


def test_discovery_failure_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no Flowfile found.*bflow init.*-f PATH"):
        flowfile.find_flowfile(str(tmp_path))


def test_resolve_path_applies_directory_then_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "other.toml").write_text("")
    assert flowfile.resolve_path("other.toml", str(tmp_path / "sub")) == \
        str(tmp_path / "sub" / "other.toml")
    with pytest.raises(UsageError, match="nope.toml: no such Flowfile"):
        flowfile.resolve_path("nope.toml", str(tmp_path))


scalars = st.one_of(st.integers(-2, 3), st.booleans(), st.text("ab*{}/!.:", max_size=6),
                    st.floats(allow_nan=True))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["cmd", "inputs", "outputs", "deps", "foreach", "env", "cwd", "depfile", "a", "b",
         "jobs", "default"]), inner, max_size=4)), max_leaves=12)
documents = st.fixed_dictionaries({}, optional={
    "settings": st.dictionaries(st.sampled_from(flowfile.SETTINGS_KEYS), values, max_size=3),
    "vars": st.dictionaries(st.sampled_from(["A", "B", "input", "x-y"]), values, max_size=2),
    "tasks": st.dictionaries(st.sampled_from(["a", "b", "c:d"]), values, max_size=3),
})


@settings(max_examples=150, deadline=None)
@given(documents)
def test_any_document_gives_a_project_or_a_clear_error(tmp_path_factory: pytest.TempPathFactory,
                                                       data: dict[str, object]) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    try:
        with contextlib.chdir(root):
            resolve(flowfile.parse(str(root / "Flowfile"), data))
    except FatalError as exc:
        assert str(exc).startswith("Flowfile")


@pytest.mark.parametrize("text, problem", [
    ('foreach = 3', "tasks.a.foreach: expected a string or a list of strings, got an integer (3)"),
    ('when = { env = 3 }',
     "tasks.a.when.env: expected a string or a list of strings, got an integer (3)"),
    ('when = { cmd = 3 }', "tasks.a.when.cmd: expected a string, got an integer (3)")])
def test_a_value_of_the_wrong_type_is_reported_without_its_consequences(
        tmp_path: Path, text: str, problem: str) -> None:
    # a second problem followed, about the value it could not read: "must not be empty",
    # "needs at least one glob that is not an exclusion"
    assert problems(tmp_path, f'[tasks.a]\ncmd = "true"\n{text}\n') == [f"Flowfile: {problem}"]


@pytest.mark.parametrize(("key", "meant"), [
    ("cmds", "cmd"), ("commands", "cmd"), ("script", "cmd"), ("run", "cmd"),  # go-task, CI files
    ("sources", "inputs"), ("srcs", "inputs"), ("prerequisites", "inputs"),  # go-task, Bazel, Make
    ("generates", "outputs"), ("targets", "outputs"), ("outs", "outputs"),
    ("dependencies", "deps"), ("needs", "deps"), ("dir", "cwd"), ("desc", "description"),
    ("Commands", "cmd")])
def test_a_key_as_another_tool_names_it_suggests_bflow_s(tmp_path: Path, key: str,
                                                          meant: str) -> None:
    # by spelling alone, `generates` was nearest to `interactive`, `script` to `description`
    assert problems(tmp_path, f'[tasks.a]\ncmd = "true"\n{key} = ["x"]\n') == [
        f"Flowfile: tasks.a.{key}: unknown key (did you mean '{meant}'?)"]


def test_a_settings_key_as_another_tool_names_it_suggests_bflow_s(tmp_path: Path) -> None:
    assert problems(tmp_path, '[settings]\nparallel = 2\n[tasks.a]\ncmd = "true"\n') == [
        "Flowfile: settings.parallel: unknown key (did you mean 'jobs'?)"]


def test_a_misspelt_key_is_reported_without_its_consequences(project: Project) -> None:
    project.flowfile("""
        [tasks.hello]
        cmdd = "echo hi > {output}"
        outputs = ["hello.txt"]
        """)
    result = project.bflow()
    assert (result.returncode, result.stderr) == (
        2, "bflow: error: Flowfile: tasks.hello.cmdd: unknown key (did you mean 'cmd'?)\n")
    project.flowfile("""
        [tasks.hello]
        outputs = ["hello.txt"]
        """)
    assert project.bflow().stderr == ("bflow: error: Flowfile: tasks.hello.outputs: a group task "
                                      "(no cmd) cannot have outputs; add a cmd\n")


def test_a_single_string_stands_for_a_list_of_one(project: Project) -> None:
    """`inputs`, `outputs`, `deps` and `foreach` take one string as `cmd` does."""
    project.flowfile("""
        [tasks.gen]
        cmd = "echo gen >> runs.log && cp {input} {output}"
        inputs = "src/*.txt"
        outputs = "out/a.txt"
        [tasks.use]
        foreach = "out/*.txt"
        cmd = "echo use >> runs.log && cp {item} {output}"
        outputs = "use/{name}"
        deps = "gen"
        """)
    project.write("src/a.txt", "a")
    assert project.build() == ["gen", "use"]
    assert project.read("use/a.txt") == "a"
    assert project.build() == []
    project.flowfile('[tasks.a]\ncmd = "true"\ninputs = 3\n')
    result = project.bflow("validate")
    assert result.returncode == 2
    assert "Flowfile: tasks.a.inputs: expected a string or a list of strings, got an integer " \
           "(3)" in result.stderr


def test_a_byte_order_mark_before_the_flowfile_is_read_past(project: Project) -> None:
    """Some editors start a UTF-8 file with one; TOML's readers refuse it as a syntax error at
    1:1 that the user cannot see."""
    (project.root / "Flowfile").write_bytes(
        b'\xef\xbb\xbf[tasks.hi]\ncmd = "echo hi >> runs.log"\noutputs = []\n')
    assert project.build() == ["hi"]
    (project.root / "Flowfile").write_bytes(b'\xef\xbb\xbf[tasks.hi]\ncmd = "echo hi"\n[x\n')
    result = project.bflow()
    assert result.returncode == 2 and "Flowfile:3:3: TOML syntax error" in result.stderr
