"""Values from outside the Flowfile: `{env.NAME}` and computed vars, each part of the action
of exactly the tasks that use it, through the real `bflow`."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from conftest import Project, bflow_env
from test_runner import gone, wait_for

ENV_FLOWFILE = """
[tasks.greet]
cmd = "echo greet >> runs.log && echo '{env.GREETING}, {env.WHO:-world}' > {output}"
outputs = ["out/greet.txt"]
[tasks.other]
cmd = "echo other >> runs.log && echo x > {output}"
outputs = ["out/other.txt"]
"""


def test_an_environment_variable_is_part_of_the_action_of_the_tasks_using_it(
        project: Project) -> None:
    project.flowfile(ENV_FLOWFILE)
    assert sorted(project.build(env={"GREETING": "hello"})) == ["greet", "other"]
    assert project.read("out/greet.txt") == "hello, world\n"
    assert project.build(env={"GREETING": "hello"}) == []
    assert project.build(env={"GREETING": "hello"}) == []  # a no-op after a no-op too
    assert project.build(env={"GREETING": "hi"}) == ["greet"]
    assert project.build(env={"GREETING": "hi", "WHO": "you"}) == ["greet"]
    assert project.read("out/greet.txt") == "hi, you\n"
    assert project.build(env={"GREETING": "hi", "WHO": ""}) == ["greet"]  # empty: the default
    assert project.read("out/greet.txt") == "hi, world\n"


def without(*names: str) -> dict[str, str]:
    """bflow's environment for a test, with `names` unset."""
    return {k: v for k, v in bflow_env().items() if k not in names}


def test_an_unset_variable_without_a_default_is_a_load_error(project: Project) -> None:
    project.flowfile(ENV_FLOWFILE)
    result = subprocess.run([sys.executable, "-m", "buildflow"], cwd=project.root,
                            env=without("GREETING", "WHO"), capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == (
        "bflow: error: Flowfile: tasks.greet.cmd: environment variable 'GREETING' is not "
        "set ({env.GREETING}); set it, or give a default: {env.GREETING:-text}\n")
    assert not (project.root / "runs.log").exists()


def test_a_value_is_text_never_a_placeholder(project: Project) -> None:
    project.flowfile("""
        [tasks.t]
        cmd = "echo '{env.TEXT}' > {output}"
        outputs = "out/t.txt"
        env = { SEEN = "{env.TEXT}" }
        """)
    project.build(env={"TEXT": "{output} {{x}}"})
    assert project.read("out/t.txt") == "{output} {{x}}\n"
    assert project.bflow("validate", env={"TEXT": "{ouput}"}).returncode == 0


COMPUTED_FLOWFILE = """
[vars]
VERSION = { sh = "echo computed >> runs.log; cat version.txt" }
[tasks.stamp]
cmd = "echo stamp >> runs.log && echo {VERSION} > {output}"
outputs = ["out/stamp.txt"]
[tasks.other]
cmd = "echo other >> runs.log && echo x > {output}"
outputs = ["out/other.txt"]
"""


def test_a_computed_var_runs_once_per_build_and_reruns_the_tasks_using_it(
        project: Project) -> None:
    project.flowfile(COMPUTED_FLOWFILE)
    project.write("version.txt", "1.0\n\n")
    assert sorted(project.build()) == ["computed", "other", "stamp"]
    assert project.read("out/stamp.txt") == "1.0\n"  # trailing newlines dropped, as $(...)
    assert project.build() == ["computed"]
    assert project.build() == ["computed"]
    project.write("version.txt", "2.0\n")
    assert project.build() == ["computed", "stamp"]
    assert project.read("out/stamp.txt") == "2.0\n"
    assert project.build("VERSION=3") == ["stamp"]  # overridden: the command is not run


def test_a_failing_computed_var_is_a_load_error_naming_it(project: Project) -> None:
    project.flowfile(COMPUTED_FLOWFILE)
    result = project.bflow()
    assert result.returncode == 2
    assert result.stderr.startswith(
        "bflow: error: Flowfile: vars.VERSION: the command `echo computed >> runs.log; cat "
        "version.txt` failed (exit 1): cat: version.txt: No such file or directory; fix it, "
        "or give the value on the command line (VERSION=...)")
    assert project.runs() == ["computed"]
    project.flowfile('[vars]\nV = { sh = "" }\nW = { shh = "x" }\n[tasks.t]\ncmd = "true"\n')
    result = project.bflow("validate")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        'bflow: error: Flowfile: vars.V: a computed var is written { sh = "command" }, with a '
        "command that prints its value",
        "bflow: error: Flowfile: vars.W.shh: unknown key (did you mean 'sh'?)",
        'bflow: error: Flowfile: vars.W: a computed var is written { sh = "command" }, with a '
        "command that prints its value"]


def test_a_misspelt_env_group_is_a_load_error_and_other_dotted_groups_pass(
        project: Project) -> None:
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log && echo {evn.HOME}"\n')
    result = project.bflow()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "'{evn.HOME}' is not a placeholder (did you mean '{env.HOME}'?)" in result.stderr
    assert "'{{evn.HOME}}'" in result.stderr and project.runs() == []
    # The shell's ${a.b}, and a dotted group nowhere near `env`, reach the command as written.
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log && '
                     'echo \'${evn.X} {foo.bar}\' > out.txt"\noutputs = ["out.txt"]\n')
    assert project.build() == ["a"]
    assert project.read("out.txt") == "${evn.X} {foo.bar}\n"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_computed_var_s_command_stops_with_bflow(project: Project, signum: int) -> None:
    # SIGTERM reached bflow alone: the shell was killed, the `sleep` it started ran on
    project.flowfile("""
        [vars]
        V = { sh = "sleep 60 & echo $! > sleep.pid; wait" }
        [tasks.a]
        cmd = "echo {V} >> runs.log"
        """)
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"], cwd=project.root,
                               env=bflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: (project.root / "sleep.pid").exists()
                    and project.read("sleep.pid").strip() != "")
    process.send_signal(signum)
    process.communicate(timeout=30)
    assert process.returncode == 130
    assert wait_for(lambda: gone(int(project.read("sleep.pid"))), 5)
    assert project.runs() == []

