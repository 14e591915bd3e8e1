"""`on_success` and `on_failure`: the build's summary as JSON on stdin; a failing hook is a
warning and never changes the exit status."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from conftest import Project, bflow_env
from test_runner import gone, wait_for

TASKS = """
[tasks.good]
cmd = "echo good >> runs.log && echo > {output}"
outputs = ["good.txt"]

[tasks.bad]
cmd = "echo bad >> runs.log; echo oops; exit {CODE}"

[vars]
CODE = "0"
"""


def test_hooks_get_the_summary_on_stdin(project: Project) -> None:
    project.flowfile('[settings]\non_success = "cat > success.json; echo hook >> runs.log"\n'
                     'on_failure = "cat > failure.json"\n' + TASKS)
    assert sorted(project.build("-j1")) == ["bad", "good", "hook"]
    summary = json.loads(project.read("success.json"))
    assert summary == {**summary, "event": "build_finished", "ran": 2, "failed": 0,
                       "exit_status": 0, "failed_tasks": []}
    assert not (project.root / "failure.json").exists()
    result = project.bflow("-k", "--json", "CODE=4")
    assert result.returncode == 1
    for line in result.stdout.splitlines():  # stdout stays JSON Lines
        json.loads(line)
    summary = json.loads(project.read("failure.json"))
    assert summary["exit_status"] == 1 and summary["failed"] == 1
    [failed] = summary["failed_tasks"]
    assert failed["task"] == "bad" and failed["reason"].endswith(" 4"), failed
    with open(failed["log"]) as log:
        assert "oops" in log.read()


def test_a_failing_hook_is_a_warning_and_keeps_the_exit_status(project: Project) -> None:
    project.flowfile('[settings]\non_success = "echo to stderr; exit 7"\n'
                     'on_failure = "exit 9"\n' + TASKS)
    result = project.bflow("--plain")
    assert result.returncode == 0
    assert "warning: settings.on_success: 'echo to stderr; exit 7' exited 7" in result.stderr
    assert "to stderr" in result.stderr and "to stderr" not in result.stdout
    result = project.bflow("--plain", "CODE=1")
    assert result.returncode == 1
    assert "warning: settings.on_failure: 'exit 9' exited 9" in result.stderr


def test_no_hook_for_a_build_with_nothing_to_do(project: Project) -> None:
    project.flowfile('[settings]\non_success = "echo hook >> runs.log"\n' + TASKS)
    assert sorted(project.build()) == ["bad", "good", "hook"]
    project.flowfile('[settings]\non_success = "echo hook >> runs.log"\n'
                     + TASKS.replace("[tasks.bad]", "[tasks.bad]\noutputs = ['bad.txt']")
                     .replace("exit {CODE}", "echo > {output}"))
    assert sorted(project.build()) == ["bad", "hook"]
    assert project.build() == []  # the fast path answers: no hook
    assert project.build("-v") == []  # the full way: no hook either


def test_a_hook_that_builds_the_project_again_ends(project: Project) -> None:
    # with a hook after every build, a no-op included, `bflow deploy` in the hook started
    # builds without end, each in a process group of its own
    deploy = f"echo hook >> runs.log; {sys.executable} -m buildflow -q deploy"
    project.flowfile(f'[settings]\non_success = "{deploy}"\n'
                     '[tasks.deploy]\ncmd = "echo deploy >> runs.log; echo > {output}"\n'
                     'outputs = ["deployed.txt"]\n')
    result = project.bflow(timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.runs() == ["deploy", "hook"]  # the hook's build had nothing to do


def test_an_incremental_build_from_the_fast_path_runs_the_hook(project: Project) -> None:
    project.flowfile('[settings]\non_success = "echo hook >> runs.log"\n'
                     '[tasks.copy]\ncmd = "echo copy >> runs.log && cp {input} {output}"\n'
                     'inputs = ["src.txt"]\noutputs = ["out.txt"]\n')
    project.write("src.txt", "1")
    assert project.build() == ["copy", "hook"]
    assert project.build() == []
    project.write("src.txt", "2")
    assert project.build() == ["copy", "hook"]
    assert "copy" in project.bflow("report").stdout


def test_a_hook_gets_settings_env_as_a_task_does(project: Project) -> None:
    """`WEBHOOK = "{HOOK_URL}"` reached the hook as `{HOOK_URL}` (and `{{x}}` as written),
    where tasks get the var's value: a webhook posted nowhere, silently. Also after a build
    the fast path made, and with the var overridden on the command line."""
    project.flowfile("""
        [vars]
        HOOK_URL = "https://chat.example/hook"
        [settings]
        env = { WEBHOOK = "{HOOK_URL}", LIT = "{{x}}" }
        on_success = "echo hook $WEBHOOK $LIT >> env.log"
        [tasks.t]
        cmd = "echo task $WEBHOOK $LIT >> env.log; cp {input} {output}"
        inputs = ["src.txt"]
        outputs = ["out.txt"]
        """)
    project.write("src.txt", "1")
    assert project.bflow().returncode == 0
    project.write("src.txt", "2")
    assert project.bflow().returncode == 0  # the fast path's build of what changed
    assert project.bflow("HOOK_URL=https://other.example").returncode == 0
    assert project.read("env.log").splitlines() == [
        "task https://chat.example/hook {x}", "hook https://chat.example/hook {x}"] * 2 + [
        "task https://other.example {x}", "hook https://other.example {x}"]


@pytest.mark.output_cache
def test_a_build_that_restored_its_outputs_runs_the_hook(project: Project) -> None:
    """Every task restored from the output cache (a clean build of what was built before):
    outputs written, and the hook that deploys them never ran."""
    project.flowfile('[settings]\non_success = "echo hook >> runs.log"\n'
                     '[tasks.copy]\ncmd = "echo copy >> runs.log && cp {input} {output}"\n'
                     'inputs = ["src.txt"]\noutputs = ["out.txt"]\n')
    project.write("src.txt", "1")
    assert project.build() == ["copy", "hook"]
    assert project.bflow("clean").returncode == 0
    assert project.build() == ["hook"]  # restored, not run
    assert project.read("out.txt") == "1"


def test_a_hook_must_be_a_string(project: Project) -> None:
    project.flowfile('[settings]\non_failure = ["notify"]\n' + TASKS)
    result = project.bflow()
    assert result.returncode == 2
    assert "settings.on_failure: expected a string" in result.stderr


def test_a_hook_s_processes_are_stopped_with_bflow(project: Project) -> None:
    # SIGTERM reaches bflow alone; the hook's shell was killed, the `sleep` it started ran on
    project.flowfile('[settings]\non_success = "sleep 30 & echo $! > hook.pid; wait"\n' + TASKS)
    with open(project.root / "bflow.out", "w") as out:  # not a pipe the sleep would hold
        process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"],
                                   cwd=project.root, env=bflow_env(), stdout=out, stderr=out)
    pid_file = project.root / "hook.pid"
    assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 130, project.read("bflow.out")
    hook = int(pid_file.read_text())
    assert wait_for(lambda: gone(hook), timeout=5)
