"""The Python API: the same engine as the CLI, from a Flowfile or from Python objects."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import buildflow
from buildflow.errors import FlowfileError, UsageError
from buildflow.events import Collector, TaskFinished
from buildflow.scheduler import Outcome
from conftest import Project

DOC = {
    "tasks": {
        "shout": {"foreach": "src/*.txt",
                  "cmd": "echo {stem} >> runs.log && tr a-z A-Z < {item} > {output}",
                  "outputs": ["build/{stem}.out"]},
        "join": {"cmd": "echo join >> runs.log && cat {inputs} > {output}",
                 "inputs": ["build/*.out"], "outputs": ["site.txt"]},
    }
}


def test_load_and_build_report_each_task(project: Project) -> None:
    project.flowfile("""
    [vars]
    WORD = "hello"
    [tasks.say]
    cmd = "echo {WORD} > {output}"
    outputs = ["say.txt"]
    """)
    loaded = buildflow.load(project.root / "Flowfile", overrides={"WORD": "bye"})
    collector = Collector()
    result = buildflow.build(loaded, ["say"], jobs=1, reporter=collector)
    assert result.exit_status == 0
    assert result.tasks["say"].outcome is Outcome.RAN and result.tasks["say"].attempts == 1
    assert project.read("say.txt") == "bye\n"
    assert [e.task for e in collector.events if isinstance(e, TaskFinished)] == ["say"]
    again = buildflow.build(loaded, ["say"])
    assert again.tasks["say"].outcome is Outcome.UP_TO_DATE


def test_a_project_from_python_objects_builds_incrementally(project: Project) -> None:
    project.write("src/a.txt", "a\n")
    doomed = project.write("src/d.txt", "d\n")
    made = buildflow.from_dict(DOC, root=project.root)
    assert buildflow.build(made).exit_status == 0
    assert project.read("site.txt") == "A\nD\n"
    doomed.unlink()
    result = buildflow.build(buildflow.from_dict(DOC, root=project.root))
    assert result.exit_status == 0
    assert project.read("site.txt") == "A\n"  # the orphaned d.out was removed and not joined
    assert project.runs()[2:] == ["join", "join"]


def test_a_bad_document_is_a_flowfile_error(project: Project) -> None:
    with pytest.raises(FlowfileError) as caught:
        buildflow.from_dict({"tasks": {"x": {"cmd": "true", "inputz": []}}}, root=project.root)
    assert caught.value.problems == [
        "<python>: tasks.x.inputz: unknown key (did you mean 'inputs'?)"]


def test_the_api_is_what_dir_lists_and_a_misspelt_name_says_so() -> None:
    assert dir(buildflow) == sorted(buildflow.__all__)
    assert all(getattr(buildflow, name) is not None for name in buildflow.__all__)
    with pytest.raises(AttributeError, match="module 'buildflow' has no attribute 'biuld'"):
        buildflow.biuld  # type: ignore[attr-defined]  # noqa: B018


def test_projects_loaded_in_two_threads_each_find_their_own_modules(tmp_path: Path) -> None:
    # the load's import of `gen` took the other project's gen.py: its error, or its file
    for name, function in (("a", "run"), ("b", "other")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "gen.py").write_text(
            f"import time\ntime.sleep(0.02)\ndef {function}(ctx):\n    pass\n")
    problems: list[str] = []

    def load(name: str, function: str) -> None:
        for _ in range(15):
            try:
                project = buildflow.from_dict(
                    {"tasks": {"g": {"py": f"gen:{function}", "outputs": ["o"]}}},
                    root=tmp_path / name)
            except FlowfileError as exc:
                problems.append(str(exc))
                continue
            problems.extend(file for file, _ in project.code  # and gen/ looked for in vain
                            if not file.startswith(f"{tmp_path / name}/gen"))

    threads = [threading.Thread(target=load, args=("a", "run")),
               threading.Thread(target=load, args=("b", "other"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []


def test_what_build_cannot_take_is_said_at_once(project: Project) -> None:
    """`jobs=-1` waited for ever (no slot for any task), where `-j -1` is a usage error; a
    project declared with `buildflow.Project()` raised an AttributeError from inside."""
    project.flowfile("""
    [tasks.a]
    cmd = "echo a >> runs.log"
    """)
    loaded = buildflow.load(project.root / "Flowfile")
    for jobs in (0, -1):
        with pytest.raises(UsageError, match=f"jobs: expected at least 1, got {jobs}"):
            buildflow.build(loaded, jobs=jobs, reporter=Collector())
    with pytest.raises(TypeError, match=r"builds with project\.main\(\)"):
        buildflow.build(buildflow.Project(project.root), reporter=Collector())  # type: ignore
    # a string's letters were the targets ("unknown target 'a'" at best); jobs="2" was a
    # TypeError from inside, and jobs=1.5 was taken
    with pytest.raises(TypeError, match=r"not the string 'a' \(write \['a'\]\)"):
        buildflow.build(loaded, "a", reporter=Collector())
    for jobs in ("2", 1.5, True):
        with pytest.raises(TypeError, match="jobs: expected a whole number"):
            buildflow.build(loaded, jobs=jobs, reporter=Collector())  # type: ignore[arg-type]
    assert not (project.root / "runs.log").exists()


@pytest.mark.parametrize("data", [[1], "tasks"])
def test_a_document_that_is_no_table_is_said_to_be(data: object) -> None:
    """`from_dict([1])` was an AttributeError from inside the checks."""
    with pytest.raises(FlowfileError, match="<python>: expected a table"):
        buildflow.from_dict(data)  # type: ignore[arg-type]


def test_overrides_that_are_not_strings_are_said_to_be(project: Project) -> None:
    project.flowfile("""
    [vars]
    X = "1"
    [tasks.a]
    cmd = "echo {X}"
    """)
    with pytest.raises(TypeError, match="overrides: 'X': 2: a var's name and value are "
                                        "strings \\(write 'X': '2'\\)"):
        buildflow.load(project.root / "Flowfile", overrides={"X": 2})  # type: ignore[dict-item]


@pytest.mark.parametrize("keep_going", [False, True])
def test_a_group_a_failure_stops_is_in_the_result_either_way(project: Project,
                                                             keep_going: bool) -> None:
    """With `keep_going` the group was skipped in `BuildResult.tasks`; without, missing."""
    project.flowfile('[tasks.bad]\ncmd = "exit 1"\n[tasks.other]\ncmd = "true"\n'
                     '[tasks.all]\ndeps = ["bad", "other"]\n')
    result = buildflow.build(buildflow.load(project.root / "Flowfile"), ["all"],
                             keep_going=keep_going, jobs=1, reporter=Collector())
    outcomes = {name: task.outcome for name, task in result.tasks.items()}
    assert outcomes == {"bad": Outcome.FAILED, "all": Outcome.SKIPPED,
                        "other": Outcome.RAN if keep_going else Outcome.SKIPPED}


@pytest.mark.parametrize("force", [False, True])
def test_a_dry_run_says_of_a_foreach_over_a_directory_output_what_the_build_does(
        project: Project, force: bool) -> None:
    """The dry run's result had the foreach as a task that would run (skipped, "after gen"),
    beside its instances: four where the build then ran three. It runs nothing itself: up to
    date, as the build's result has it, named with why its instances are not known yet."""
    project.flowfile("""
    [tasks.gen]
    cmd = "rm -rf site && mkdir site && for f in a b; do cat version.txt > site/$f.html; done && echo gen >> runs.log"
    inputs = ["version.txt"]
    outputs = ["site/"]
    [tasks.each]
    foreach = "site/*.html"
    cmd = "cp {item} out/{stem}.txt && echo {task} >> runs.log"
    outputs = ["out/{stem}.txt"]
    """)
    project.write("version.txt", "1\n")
    project.build()
    project.write("version.txt", "2\n")
    dry = buildflow.build(buildflow.load(project.root / "Flowfile"), dry_run=True, force=force,
                          reporter=Collector())
    assert dry.tasks["each"].reason == "after gen: its instances are found only once gen has run"
    before = len(project.runs())
    built = buildflow.build(buildflow.load(project.root / "Flowfile"), force=force,
                            reporter=Collector())
    assert sorted(project.runs()[before:]) == sorted(dry.names(Outcome.SKIPPED)) == [
        "each:site/a.html", "each:site/b.html", "gen"]
    assert {name: task.outcome for name, task in dry.tasks.items()
            if task.outcome is not Outcome.SKIPPED} == {
        name: task.outcome for name, task in built.tasks.items()
        if task.outcome is not Outcome.RAN} == {"each": Outcome.UP_TO_DATE}


def test_a_dry_run_names_every_task_the_build_names(project: Project) -> None:
    """A plain group (`all`, with only deps) was left out of a dry run's result, which the
    build's result has, up to date: it runs nothing."""
    project.flowfile("""
    [tasks.a]
    cmd = "cp {input} {output} && echo a >> runs.log"
    inputs = ["in.txt"]
    outputs = ["a.txt"]
    [tasks.b]
    cmd = "cp {input} {output} && echo b >> runs.log"
    inputs = ["in.txt"]
    outputs = ["b.txt"]
    [tasks.all]
    deps = ["a", "b"]
    """)
    project.write("in.txt", "1\n")
    dry = buildflow.build(buildflow.load(project.root / "Flowfile"), ["all"], dry_run=True,
                          reporter=Collector())
    built = buildflow.build(buildflow.load(project.root / "Flowfile"), ["all"],
                            reporter=Collector())
    assert sorted(project.runs()) == sorted(dry.names(Outcome.SKIPPED)) == ["a", "b"]
    assert sorted(dry.tasks) == sorted(built.tasks) == ["a", "all", "b"]
    assert dry.tasks["all"].outcome is built.tasks["all"].outcome is Outcome.UP_TO_DATE
