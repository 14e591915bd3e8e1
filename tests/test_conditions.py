"""`when`: a task whose condition fails is skipped with the reason, in every reporter, keeps
its record, and counts as done for the tasks after it."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import pytest

from buildflow.cache import cacheable
from buildflow.conditions import this_platform
from buildflow.model import Task
from conftest import OnTerminal, Project, bflow_env
from test_runner import gone, wait_for

LOG = "echo {task} >> runs.log"


def test_each_condition_skips_with_its_reason(project: Project) -> None:
    project.write("here.txt", "")
    project.flowfile(f"""
        [tasks.platform]
        cmd = "{LOG}"
        when = {{ platform = ["aix", "haiku"] }}
        [tasks.env]
        cmd = "{LOG}"
        when = {{ env = "BFLOW_TEST_CI" }}
        [tasks.notenv]
        cmd = "{LOG}"
        when = {{ env = "!BFLOW_TEST_SET" }}
        [tasks.exists]
        cmd = "{LOG}"
        when = {{ exists = "missing.txt" }}
        [tasks.cmd]
        cmd = "{LOG}"
        when = {{ cmd = "exit 4" }}
        [tasks.runs]
        cmd = "{LOG}"
        when.platform = "{this_platform()}"
        when.env = ["!BFLOW_TEST_CI", "BFLOW_TEST_SET"]
        when.exists = "here.txt"
        when.cmd = "true"
        """)
    env = {"BFLOW_TEST_SET": "1"}
    result = project.bflow("--plain", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.runs() == ["runs"]
    for line in ("skip   platform (when.platform is linux, not aix or haiku)"
                 if sys.platform.startswith("linux") else "skip   platform (when.platform",
                 "skip   env (when.env BFLOW_TEST_CI is not set)",
                 "skip   notenv (when.env BFLOW_TEST_SET is set)",
                 "skip   exists (when.exists missing.txt does not exist)",
                 "skip   cmd (when.cmd exited 4: exit 4)"):
        assert line in result.stdout
    assert "5 skipped" in result.stdout
    events = [json.loads(line) for line in project.bflow("--json", env=env).stdout.splitlines()]
    skipped = {e["task"]: e["reason"] for e in events if e["event"] == "task_skipped"}
    assert skipped["env"] == "when.env BFLOW_TEST_CI is not set"
    assert all(skipped[name].startswith("when") for name in ("platform", "notenv", "exists", "cmd"))


def test_the_live_display_shows_the_reason(project: Project) -> None:
    project.flowfile("""
        [tasks.deploy]
        cmd = "true"
        when = { env = "BFLOW_TEST_NEVER" }
        """)
    terminal = OnTerminal(project.root)
    assert terminal.finish() == 0
    assert b"deploy (when.env BFLOW_TEST_NEVER is not set)" in terminal.screen


def test_a_skipped_task_keeps_its_record_and_counts_as_done(project: Project) -> None:
    project.write("in.txt", "x")
    project.flowfile(f"""
        [tasks.gen]
        cmd = "{LOG}; cp in.txt out.txt"
        inputs = ["in.txt"]
        outputs = ["out.txt"]
        when = {{ env = "!BFLOW_TEST_SKIP" }}
        [tasks.use]
        cmd = "{LOG}; cat out.txt > used.txt"
        inputs = ["out.txt"]
        outputs = ["used.txt"]
        """)
    assert project.build() == ["gen", "use"]
    skip = {"BFLOW_TEST_SKIP": "1"}
    project.write("in.txt", "changed")
    assert project.build(env=skip) == []  # skipped, so its dependent is ordered after it
    assert project.bflow("status", env=skip).stdout == \
        "gen: skipped: when.env BFLOW_TEST_SKIP is set\nbflow: 1 up to date, 1 skipped by `when`\n"
    assert project.bflow("explain", "gen", env=skip).stdout.splitlines()[0] == \
        "gen: stale; a build skips it: when.env BFLOW_TEST_SKIP is set"
    assert project.bflow("explain", "use", env=skip).stdout == "use: up to date\n"
    assert project.bflow("status", "--check", env=skip).returncode == 0
    assert project.build() == ["gen", "use"]  # the record was kept: it is stale as before
    assert project.build(env=skip) == []
    assert project.build() == []


def test_a_skipped_task_counts_as_done_for_instances_found_during_the_build(
        project: Project) -> None:
    """An instance a foreach finds in what the build writes waits for its upstream as a
    planned one does: a task skipped by its condition is done, not failed."""
    project.flowfile(f"""
        [tasks.gen]
        cmd = "{LOG}; echo a > a.txt"
        outputs = ["a.txt"]
        when = {{ env = "!BFLOW_TEST_SKIP" }}
        [tasks.more]
        cmd = "{LOG}; mkdir -p more && echo c > more/c.txt"
        outputs = ["more/"]
        [tasks.join]
        foreach = "more/*.txt"
        cmd = "{LOG}; cat {{inputs}} > {{output}}"
        inputs = ["a.txt"]
        outputs = ["joined/{{stem}}.txt"]
        """)
    assert sorted(project.build()) == ["gen", "join:more/c.txt", "more"]
    shutil.rmtree(project.root / "more")
    shutil.rmtree(project.root / "joined")
    assert sorted(project.build(env={"BFLOW_TEST_SKIP": "1"})) == ["join:more/c.txt", "more"]
    assert project.read("joined/c.txt") == "c\na\n"  # the item, then the inputs


def test_a_skipped_task_that_never_ran_fails_its_reader(project: Project) -> None:
    project.flowfile("""
        [tasks.gen]
        cmd = "echo x > out.txt"
        outputs = ["out.txt"]
        when = { env = "BFLOW_TEST_NEVER" }
        [tasks.use]
        cmd = "cat out.txt"
        inputs = ["out.txt"]
        """)
    result = project.bflow("--plain")
    assert result.returncode == 1
    assert "skip   gen" in result.stdout and "FAILED use" in result.stdout



def test_a_reader_of_a_skipped_task_s_missing_outputs_fails_without_running(
        project: Project) -> None:
    """A reader whose command shrugs at the missing file (`cat *.up 2>/dev/null`) ran and
    succeeded at every build, stale for ever; it now fails before it runs, naming the file
    and why it is missing, as Make stops at a prerequisite it cannot make."""
    project.write("src/a.txt", "a\n")
    project.write("flag", "")
    project.flowfile(f"""
        [tasks.up]
        foreach = "src/*.txt"
        cmd = "{LOG}; mkdir -p out && tr a-z A-Z < {{item}} > {{output}}"
        outputs = ["out/{{stem}}.up"]
        when = {{ exists = "flag" }}
        [tasks.join]
        cmd = "{LOG}; cat out/*.up 2>/dev/null > all.txt; true"
        inputs = ["out/*.up"]
        outputs = ["all.txt"]
        """)
    assert project.build() == ["up:src/a.txt", "join"]
    (project.root / "flag").unlink()
    (project.root / "out/a.up").unlink()
    said = "input out/a.up is missing: up:src/a.txt, which writes it, is skipped " \
           "(when.exists flag does not exist)"
    assert f"would run join: {said}" in project.bflow("-n").stdout  # as the build then says
    assert f"join: {said}" in project.bflow("status").stdout
    assert project.bflow("explain", "join").stdout.count("out/a.up is missing") == 1
    for _ in range(2):
        result = project.bflow("--plain")
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"FAILED join: {said}" in result.stdout
    assert project.runs() == ["up:src/a.txt", "join"]  # the reader never ran again
    project.write("flag", "")
    assert project.build() == ["up:src/a.txt", "join"]
    assert project.read("all.txt") == "A\n"
    assert project.build() == []

def test_a_condition_command_runs_once_for_all_instances(project: Project) -> None:
    for name in "abc":
        project.write(f"src/{name}.txt", name)
    project.flowfile("""
        [tasks.copy]
        foreach = "src/*.txt"
        cmd = "cp {item} {output}"
        outputs = ["out/{name}"]
        when = { cmd = "echo checked >> checks.log" }
        """)
    project.build()
    assert project.runs("checks.log") == ["checked"]
    assert project.read("out/c.txt") == "c"


def test_dry_run_and_status_skip_as_the_build_does(project: Project) -> None:
    project.flowfile("""
        [tasks.deploy]
        cmd = "true"
        when = { env = "BFLOW_TEST_NEVER" }
        """)
    result = project.bflow("-n", "--plain")
    assert "skip   deploy (when.env BFLOW_TEST_NEVER is not set)" in result.stdout
    assert "would run" not in result.stdout.replace("0 would run", "")
    status = project.bflow("status", "--check")
    assert status.returncode == 0
    assert "deploy: skipped: when.env BFLOW_TEST_NEVER is not set" in status.stdout


@pytest.mark.parametrize("when", ['{ exists = "flag" }', '{ env = "BFLOW_TEST_FLAG" }',
                                  '{ cmd = "test -e flag" }'])
def test_an_up_to_date_task_whose_condition_fails_is_skipped_by_every_answer(
        project: Project, when: str) -> None:
    # the build skipped it, while the no-op's proof, which knew nothing of conditions, and
    # `status`, which asked them of stale tasks only, said "up to date"
    project.write("a.txt", "a\n")
    project.write("flag", "")
    project.flowfile(f"""
        [tasks.copy]
        cmd = "cp {{input}} {{output}}"
        inputs = ["a.txt"]
        outputs = ["out.txt"]
        when = {when}
        """)
    env = {"BFLOW_TEST_FLAG": "1"}
    for _ in range(3):  # the second and third no-op may go through a proof
        assert project.bflow("--plain", env=env).returncode == 0
    (project.root / "flag").unlink()
    skipped = "bflow: 0 ran, 0 up to date, 1 skipped in "
    for _ in range(2):
        assert project.bflow("--plain").stdout.splitlines()[-1].startswith(skipped)
    status = project.bflow("status")
    assert status.stdout.splitlines()[-1] == "bflow: 0 up to date, 1 skipped by `when`"
    assert project.bflow("-n", "--plain").stdout.splitlines()[-1] == \
        "bflow: 0 would run, 0 up to date, 1 skipped (dry run)"


@pytest.mark.parametrize("when", ['{ exists = "flag" }', '{ cmd = "test -e flag" }'])
def test_a_condition_on_what_an_earlier_task_writes_is_after_that_task(project: Project,
                                                                       when: str) -> None:
    # status, -n, explain and graph checked it before gen ran, so said "skipped"
    project.flowfile(f"""
        [tasks.gen]
        cmd = "echo gen >> runs.log; echo 1 > flag"
        outputs = ["flag"]
        [tasks.pub]
        cmd = "echo pub >> runs.log; echo p > pub.out"
        outputs = ["pub.out"]
        deps = ["gen"]
        when = {when}
        """)
    said = "pub: after gen: its `when` is checked only once gen has run"
    assert said in project.bflow("status").stdout.splitlines()
    assert project.bflow("explain", "pub").stdout == said + "\n"
    events = [json.loads(line) for line in project.bflow("-n", "--json").stdout.splitlines()]
    assert {"event": "task_skipped", "task": "pub", "reason": said[5:], "after": "gen"} in events
    nodes = json.loads(project.bflow("graph", "--format", "json").stdout)["nodes"]
    assert [(n["name"], n["state"]) for n in nodes] == [("gen", "stale"), ("pub", "after")]
    assert project.build() == ["gen", "pub"]


@pytest.mark.parametrize("between", ["skipped", "group"])
def test_a_condition_on_what_a_task_far_up_writes_is_after_that_task(project: Project,
                                                                     between: str) -> None:
    # gen runs before pub through mid, a task its own `when` skips (or a group): -n and
    # status checked pub's condition before gen ran, said "skipped", and the build ran it
    mid = ('cmd = "echo mid >> runs.log"\nwhen = { env = "BFLOW_TEST_NEVER_SET" }'
           if between == "skipped" else "")
    project.flowfile(f"""
[tasks.gen]
cmd = "echo gen >> runs.log; echo 1 > flag"
outputs = ["flag"]
[tasks.mid]
deps = ["gen"]
{mid}
[tasks.pub]
cmd = "echo pub >> runs.log"
deps = ["mid"]
when = {{ exists = "flag" }}
""")
    said = "pub: after gen: its `when` is checked only once gen has run"
    assert said in project.bflow("status").stdout.splitlines()
    assert "may run pub: after gen" in project.bflow("-n").stdout
    assert project.build() == ["gen", "pub"]


def test_a_condition_on_a_file_the_build_removes_first_fails_in_status_too(
        project: Project) -> None:
    # the file is the output of a task deleted from the Flowfile: -n and status found it,
    # said pub would run, and the build removed it and skipped pub
    project.flowfile('[tasks.gen]\ncmd = "echo gen >> runs.log; echo 1 > flag"\n'
                     'outputs = ["flag"]\n')
    assert project.build() == ["gen"]
    project.flowfile('[tasks.pub]\ncmd = "echo pub >> runs.log; echo p > pub.out"\n'
                     'outputs = ["pub.out"]\nwhen = { exists = "flag" }\n')
    assert "pub: skipped: when.exists flag does not exist" in project.bflow("status").stdout
    assert "skip   pub (when.exists flag does not exist)" in project.bflow("-n").stdout
    result = project.bflow("--plain")
    assert "skip   pub (when.exists flag does not exist)" in result.stdout
    assert project.runs() == ["gen"]


def test_graph_marks_a_task_its_condition_skips_as_the_build_does(project: Project) -> None:
    project.flowfile("""
        [tasks.gen]
        cmd = "echo gen >> runs.log; cat in.txt > gen.out"
        inputs = ["in.txt"]
        outputs = ["gen.out"]
        [tasks.ci]
        cmd = "echo ci >> runs.log; cat gen.out > ci.out"
        inputs = ["gen.out"]
        outputs = ["ci.out"]
        when = { env = "BFLOW_TEST_CI" }
        [tasks.use]
        cmd = "echo use >> runs.log; cat ci.out > use.out"
        inputs = ["ci.out"]
        outputs = ["use.out"]
        """)
    project.write("in.txt", "1\n")
    assert project.build(env={"BFLOW_TEST_CI": "1"}) == ["gen", "ci", "use"]
    project.write("in.txt", "2\n")
    nodes = json.loads(project.bflow("graph", "--format", "json").stdout)["nodes"]
    assert [(n["name"], n["state"], n["stale"]) for n in nodes] == [
        ("gen", "stale", True), ("ci", "skipped", False), ("use", "up_to_date", False)]
    assert "ci (skipped: when.env BFLOW_TEST_CI is not set)" in project.bflow("graph").stdout
    assert project.build() == ["gen"]
    assert project.build(env={"BFLOW_TEST_CI": "1"}) == ["ci", "use"]
    # every task up to date, and ci skipped all the same, as the build says
    nodes = json.loads(project.bflow("graph", "--format", "json").stdout)["nodes"]
    assert [(n["name"], n["state"]) for n in nodes] == [
        ("gen", "up_to_date"), ("ci", "skipped"), ("use", "up_to_date")]


def test_a_condition_command_keeps_the_task_out_of_the_output_cache() -> None:
    task = Task("t", "t", ("true",), outputs=("o",))
    assert cacheable(task)
    assert not cacheable(task._replace(when=(("cmd", ("true",)),)))
    assert cacheable(task._replace(when=(("env", ("CI",)),)))


def test_bad_conditions_are_load_errors(project: Project) -> None:
    project.flowfile("""
        [tasks.a]
        cmd = "true"
        when = { enviroment = "CI", env = "not a name", exists = "" }
        [tasks.b]
        cmd = "true"
        when = "CI"
        [tasks.c]
        cmd = "true"
        when = { platform = ["Linux", "darwin"] }
        [tasks.release]
        deps = ["c"]
        when = { env = "CI" }
        """)
    result = project.bflow("validate")
    assert result.returncode == 2
    # accepted, and ignored: its deps ran, and nothing said the group was skipped
    assert "tasks.release.when: a group task (no cmd) runs nothing a condition could skip" \
        in result.stderr
    # a typo skipped the task on every machine, silently
    assert "tasks.c.when.platform: 'Linux' is no platform Python names (did you mean " \
           "'linux'?)" in result.stderr and "'darwin'" not in result.stderr
    assert "Flowfile: tasks.a.when.enviroment: unknown key" in result.stderr
    assert "tasks.a.when.env: 'not a name' is not a variable name" in result.stderr
    assert "tasks.a.when.exists: must not be empty" in result.stderr
    assert "tasks.b.when: expected a table" in result.stderr


@pytest.mark.parametrize("command", ["build", "status"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_condition_command_stops_it(project: Project, signum: int,
                                                      command: str) -> None:
    # the build waited for the probe to end (a `sleep 30`) before it took the signal; status,
    # which asks in bflow's main thread, where the signal raised, left the probe running
    project.flowfile("""
        [tasks.a]
        cmd = "echo a >> runs.log"
        when = { cmd = "sleep 30 & echo $! > probe.pid; wait" }
        """)
    process = subprocess.Popen([sys.executable, "-m", "buildflow", command, "--plain"],
                               cwd=project.root, env=bflow_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: (project.root / "probe.pid").exists()
                    and (project.root / "probe.pid").read_text().strip())
    process.send_signal(signum)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 130, out + err
    if command == "build":
        assert "(interrupted)" in out and "when.cmd" not in out
    assert wait_for(lambda: gone(int(project.read("probe.pid"))), 5)
    assert project.runs() == []
