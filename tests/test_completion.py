"""`bflow completion`: scripts each shell accepts, completing commands, options and
instances through the real `bflow`."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import Project, bflow_env

FLOW = """
[tasks.compile]
foreach = "src/*.c"
cmd = "true"
[tasks.link]
cmd = "true"
"""


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_script_is_valid_in_its_shell(project: Project, shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"needs {shell}")
    result = project.bflow("completion", shell)
    assert result.returncode == 0
    path = project.write(f"bflow.{shell}", result.stdout)
    checked = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def complete_in_bash(project: Project, line: str) -> list[str]:
    """What bash offers for `line` (the cursor at its end), with bflow's script sourced and
    this checkout's bflow on PATH."""
    script = project.bflow("completion", "bash").stdout
    bflow = project.root.parent / "bin" / "bflow"
    bflow.parent.mkdir(exist_ok=True)
    bflow.write_text(f"#!/bin/sh\nexec {sys.executable} -m buildflow \"$@\"\n")
    bflow.chmod(0o755)
    words = line.split(" ")
    program = (script + 'COMP_LINE=$LINE; COMP_POINT=${#LINE}; '
               "COMP_WORDS=(" + " ".join(map(shlex.quote, words)) + f"); "
               f"COMP_CWORD={len(words) - 1}; _bflow; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    env = bflow_env({"PATH": f"{bflow.parent}{os.pathsep}{os.environ['PATH']}", "LINE": line})
    done = subprocess.run(["bash", "-c", program], cwd=project.root, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_bash_completes_commands_options_tasks_and_instances(project: Project) -> None:
    project.flowfile(FLOW)
    project.write("src/main.c", "")
    project.write("src/util.c", "")
    assert complete_in_bash(project, "bflow l") == ["list", "log", "link"]
    assert complete_in_bash(project, "bflow --str") == ["--stream"]
    assert complete_in_bash(project, "bflow comp") == [
        "completion", "compile", "compile:src/main.c", "compile:src/util.c"]
    # bash takes ':' for a word break: what it is offered is the part after it
    assert complete_in_bash(project, "bflow compile:src/u") == ["src/util.c"]
    assert complete_in_bash(project, "bflow graph --format m") == ["mermaid"]  # not tasks
    assert complete_in_bash(project, "bflow completion ") == ["bash", "zsh", "fish"]
    assert complete_in_bash(project, "bflow cache s") == ["stats"]  # not `status`
    assert project.bflow("completion", "--names").stdout.split() == [
        "compile", "link", "compile:src/main.c", "compile:src/util.c"]


def test_bash_offers_names_as_text_never_expanded(project: Project) -> None:
    # they went through `compgen -W`, which expands words: TAB ran a file name's `touch`,
    # offered $HOME.c as /root.c and a b.c as two words
    project.flowfile(FLOW)
    for name in ("`touch PWNED`.c", "$HOME.c", "a b.c", "k=v.c"):
        project.write(f"src/{name}", "")
    offered = complete_in_bash(project, "bflow compile:src/")
    assert not (project.root / "PWNED").exists()
    assert sorted(offered) == ["src/\\$HOME.c", "src/\\`touch\\ PWNED\\`.c", "src/a\\ b.c",
                               "src/k=v.c"]
    assert complete_in_bash(project, "bflow compile:src/k=") == ["v.c"]


def test_bash_completes_a_name_typed_with_an_escape_or_in_quotes(project: Project) -> None:
    """The word was the text after the last blank as typed: `a\\ ` or `'compile:src/a `
    matched nothing (and in a real bash, TAB then offered every command and task)."""
    project.flowfile(FLOW)
    for name in ("a b.c", "a c.c", "x.c"):
        project.write(f"src/{name}", "")
    assert complete_in_bash(project, "bflow compile:src/a\\ b") == ["src/a\\ b.c"]
    assert complete_in_bash(project, "bflow compile:src/a\\ ") == ["src/a\\ b.c",
                                                                    "src/a\\ c.c"]
    # inside an open quote bash takes the whole word, ':' and all, and quotes nothing
    assert complete_in_bash(project, "bflow 'compile:src/a b") == ["compile:src/a b.c"]
    assert complete_in_bash(project, 'bflow "compile:src/a ') == ["compile:src/a b.c",
                                                                 "compile:src/a c.c"]


@pytest.mark.parametrize("used_in, offered", [
    ("cmd", ["compile", "link", "compile:src/main.c", "compile:src/util.c"]),
    # the instances of a foreach over files a computed var names (link's): its name builds
    # them all
    ("foreach", ["compile", "link", "compile:src/main.c", "compile:src/util.c"]),
    # the project cannot load without the value: the task names alone
    ("inputs", ["compile", "link"])])
def test_names_to_complete_run_no_computed_var(project: Project, used_in: str,
                                               offered: list[str]) -> None:
    # every TAB ran the command of each computed var, for names that did not depend on it
    project.write("src/main.c", "")
    project.write("src/util.c", "")
    task = {"cmd": 'cmd = "cc {DIR}"', "foreach": 'foreach = "{DIR}/*.c"\ncmd = "true"',
            "inputs": 'inputs = ["{DIR}/main.c"]\ncmd = "true"'}[used_in]
    project.flowfile(f"""
        [vars]
        DIR = {{ sh = "echo DIR >> runs.log; echo src" }}
        [tasks.compile]
        foreach = "src/*.c"
        cmd = "true"
        [tasks.link]
        {task}
        """)
    names = project.bflow("completion", "--names")
    assert names.returncode == 0, names.stderr
    assert names.stdout.split() == offered
    assert project.runs() == []
    assert complete_in_bash(project, "bflow li") == ["list", "link"]
    assert project.runs() == []
