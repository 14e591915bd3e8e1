"""`bflow clean` deletes declared outputs (and depfiles) and their records, nothing else."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from buildflow.commands import clean
from buildflow.project import load
from conftest import Project


FLOW = """
[tasks.one]
cmd = "echo one >> runs.log && echo 1 > {output} && echo 'x: src.txt' > build/one.d && echo keep > build/other.txt"
inputs = ["src.txt"]
outputs = ["build/one.txt"]
depfile = "build/one.d"

[tasks.two]
cmd = "echo two >> runs.log && mkdir -p {output} && cp {input} {output}/copy.txt"
inputs = ["build/one.txt"]
outputs = ["build/tree/"]

[tasks.all]
deps = ["two"]
"""


def built(project: Project) -> Project:
    project.flowfile(FLOW)
    project.write("src.txt", "s\n")
    assert project.bflow().returncode == 0
    return project


def test_clean_all_removes_outputs_and_depfiles_only(project: Project) -> None:
    built(project)
    result = project.bflow("clean")
    assert result.returncode == 0
    assert sorted(os.listdir(project.root / "build")) == ["other.txt"]
    assert (project.root / "src.txt").exists()
    assert (project.root / ".bflow" / "state").exists()
    project.bflow()
    assert project.runs() == ["one", "two", "one", "two"]


def test_clean_named_task_forgets_only_its_record(project: Project) -> None:
    built(project)
    assert project.bflow("clean", "two").returncode == 0
    assert (project.root / "build/one.txt").exists()
    assert not (project.root / "build/tree").exists()
    project.bflow()
    assert project.runs() == ["one", "two", "two"]


def test_clean_group_cleans_what_it_groups(project: Project) -> None:
    built(project)
    project.bflow("clean", "all")
    assert not (project.root / "build/tree").exists()
    assert (project.root / "build/one.txt").exists()


def test_clean_never_follows_links_out_of_the_project(project: Project, tmp_path_factory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "one.txt").write_text("precious\n")
    (outside / "tree").mkdir()
    (outside / "tree" / "copy.txt").write_text("precious\n")
    project.flowfile(FLOW)
    project.write("src.txt", "s\n")
    os.symlink(outside, project.root / "build")  # build/ itself leads outside the root
    refused = project.bflow("clean")
    assert refused.returncode == 2 and "leaves the project root" in refused.stderr
    assert (outside / "one.txt").read_text() == "precious\n"
    assert (outside / "tree" / "copy.txt").read_text() == "precious\n"
    os.unlink(project.root / "build")
    (project.root / "build").mkdir()
    os.symlink(outside / "tree", project.root / "build" / "tree")  # a dir output that is a link
    assert project.bflow("clean").returncode == 0
    assert not os.path.lexists(project.root / "build" / "tree")
    assert (outside / "tree" / "copy.txt").read_text() == "precious\n"


def test_a_directory_where_a_task_declares_a_file_is_never_taken_for_it(
        project: Project) -> None:
    # `docs` (no `/`) names a file: clean deleted the user's directory there, and a build
    # took it for the task's output, so a later prune deleted it too
    project.flowfile("""
        [tasks.doc]
        cmd = "echo generated > docs.html; echo doc >> runs.log"
        outputs = ["docs"]
        """)
    project.write("docs/guide.md", "handwritten\n")
    result = project.bflow("clean")
    assert (result.returncode, result.stdout) == (0, "bflow: removed 0 outputs of 1 task\n")
    assert result.stderr == "bflow: left docs in place: task 'doc' declares a file there, and a " \
                            "directory is no file it writes; delete it by hand if it is not " \
                            "needed\n"
    result = project.bflow()
    assert result.returncode == 1
    assert "FAILED doc: left a directory at docs, which it declares as a file; declare a " \
           "directory output as 'docs/'" in result.stdout
    project.flowfile('[tasks.doc2]\ncmd = "echo generated > docs.html"\noutputs = ["docs.html"]\n')
    assert project.bflow().returncode == 0
    assert project.read("docs/guide.md") == "handwritten\n"


def test_a_file_where_a_task_declares_a_directory_is_never_taken_for_it(
        project: Project) -> None:
    # the reverse: `site/` where the user's file `site` stands; the build recorded the file
    # as the task's tree, and clean deleted it
    project.flowfile('[tasks.gen]\ncmd = "echo gen >> runs.log"\noutputs = ["site/"]\n')
    project.write("site", "handwritten\n")
    result = project.bflow("--plain")
    assert result.returncode == 1
    assert "FAILED gen: found a file at site, which it declares as a directory output 'site/' " \
           "(move the file away, or declare it as 'site')" in result.stdout
    result = project.bflow("clean")
    assert (result.returncode, result.stdout) == (0, "bflow: removed 0 outputs of 1 task\n")
    assert "bflow: left site in place: task 'gen' declares a directory there" in result.stderr
    assert project.read("site") == "handwritten\n"
    project.flowfile('[tasks.other]\ncmd = "echo other >> runs.log"\n')
    assert project.bflow().returncode == 0  # no record to prune it by
    assert project.read("site") == "handwritten\n"


def test_a_directory_output_of_a_task_that_never_ran_is_left_in_place(project: Project) -> None:
    """A directory output stands for the files its task leaves there: before its task has
    run, what stands there is someone else's (`src/` declared by mistake, holding the sources
    another task reads), and clean deleted it whole."""
    project.flowfile('[tasks.gen]\ncmd = "echo gen >> runs.log; mkdir -p site; echo g > '
                     'site/g.txt"\noutputs = ["site/"]\n'
                     '[tasks.vendored]\ncmd = "echo vendored >> runs.log"\noutputs = ["src/"]\n')
    project.write("src/main.c", "handwritten\n")
    project.write("site/notes.txt", "handwritten\n")
    result = project.bflow("clean")
    assert (result.returncode, result.stdout) == (0, "bflow: removed 0 outputs of 2 tasks\n")
    for path in ("site", "src"):
        assert f"bflow: left {path}/ in place: task " in result.stderr
    assert project.read("src/main.c") == project.read("site/notes.txt") == "handwritten\n"
    assert project.build("gen") == ["gen"]
    assert project.bflow("clean", "gen").stdout == "bflow: removed 1 output of 1 task\n"
    assert not (project.root / "site").exists()  # its task ran: the tree is its output


def test_clean_removes_what_instances_known_only_by_their_records_wrote(
        project: Project) -> None:
    # a foreach over a directory output that is gone: the load finds no instance of it, and
    # clean left their outputs and records, so the next build ran only one of three tasks
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "bb\n")
    project.flowfile("""
        [tasks.site]
        cmd = "mkdir -p site && cp src/*.txt site/ && echo site >> runs.log"
        inputs = ["src/*.txt"]
        outputs = ["site/"]
        [tasks.each]
        foreach = "site/*.txt"
        cmd = "wc -c < {item} > {output} && echo {task} >> runs.log"
        outputs = ["counts/{stem}.n"]
        """)
    assert len(project.build()) == 3
    project.write("counts/b.n", "edited by hand\n")
    for path in ("site/a.txt", "site/b.txt"):
        (project.root / path).unlink()
    (project.root / "site").rmdir()
    result = project.bflow("clean")
    assert result.returncode == 0
    assert "bflow: left counts/b.n in place: task 'each:site/b.txt' wrote it, and it was " \
           "modified since" in result.stderr
    assert sorted(p.name for p in (project.root / "counts").iterdir()) == ["b.n"]
    assert sorted(project.build()) == ["each:site/a.txt", "each:site/b.txt", "site"]


def test_clean_of_one_instance_leaves_its_siblings_known_only_by_their_records(
        project: Project) -> None:
    # naming each:site/b.html removed what each:site/c.html wrote too, as its item was gone
    project.write("cfg", "b\nc\n")
    project.flowfile("""
        [tasks.gen]
        inputs = ["cfg"]
        outputs = ["site/"]
        cmd = "mkdir -p site && for w in $(cat cfg); do echo $w > site/$w.html; done"
        [tasks.each]
        foreach = "site/*.html"
        outputs = ["proc/{stem}.txt"]
        cmd = "tr a-z A-Z < {item} > {output}"
        """)
    assert project.bflow().returncode == 0
    (project.root / "site" / "c.html").unlink()
    result = project.bflow("clean", "each:site/b.html")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (project.root / "proc").iterdir()) == ["c.txt"]
    assert project.bflow("clean", "each").returncode == 0  # the task whole: both
    assert list((project.root / "proc").iterdir()) == []


def test_clean_removes_the_temp_files_a_killed_build_left_beside_an_output(
        project: Project) -> None:
    # a build killed while it restored out/big.bin left its temp file there for good
    project.flowfile('[tasks.big]\ncmd = "mkdir -p out && echo big > out/big.bin"\n'
                     'outputs = ["out/big.bin"]\n')
    assert project.bflow().returncode == 0
    no_process = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    left = project.write(f"out/.big.bin.{no_process}-140245.tmp", "half")
    mine = project.write(f"out/.big.bin.{os.getpid()}-140245.tmp", "a live process's")
    user = project.write("out/.big.bin.notes.tmp", "the user's")
    result = project.bflow("clean")
    assert result.returncode == 0
    assert not left.exists() and not (project.root / "out" / "big.bin").exists()
    assert mine.exists() and user.exists()


def test_clean_lists_each_directory_once_for_the_temp_files_beside_its_outputs(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    # it was listed once per output: clean took time quadratic in the outputs of a directory
    # (3.5 s for 4,000, 12.4 s for 8,000)
    project.flowfile("".join(f'[tasks.t{i}]\ncmd = "echo {i} > {{output}}"\n'
                             f'outputs = ["out/f{i}.txt"]\n' for i in range(40)))
    assert project.bflow().returncode == 0
    no_process = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    left = project.write(f"out/.f7.txt.{no_process}-1.tmp", "half")
    listed: list[str] = []
    real_listdir = os.listdir

    def listdir(path: str) -> list[str]:
        listed.append(os.path.relpath(path, project.root))
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    with contextlib.chdir(project.root):
        assert clean.run(load(project.root / "Flowfile"), targets=[]) == 0
    assert listed.count("out") == 1
    assert not left.exists() and not any((project.root / "out").iterdir())


def test_clean_removes_what_a_task_no_longer_declares(project: Project) -> None:
    # clean forgot the record that named out/one.txt, so no build ever removed it, and
    # out/*.txt read it on
    project.write("a.txt", "a\n")
    project.flowfile("""
        [tasks.t]
        cmd = "cp {input} {output}"
        inputs = ["a.txt"]
        outputs = ["out/one.txt"]
        [tasks.join]
        cmd = "cat {inputs} > {output}"
        inputs = ["out/*.txt"]
        outputs = ["all.txt"]
        """)
    assert project.bflow().returncode == 0
    project.flowfile(project.read("Flowfile").replace("out/one.txt", "out/two.txt"))
    assert project.bflow("clean").returncode == 0
    assert not (project.root / "out" / "one.txt").exists()
    assert project.bflow().returncode == 0
    assert sorted(p.name for p in (project.root / "out").iterdir()) == ["two.txt"]
    assert project.read("all.txt") == "a\n"


def test_clean_of_a_directory_output_become_files_inside_it_removes_the_old_run_s_files(
        project: Project) -> None:
    # the declared file went first, so the recorded directory looked edited and stayed,
    # with the old run's other files in it for a glob to read
    project.flowfile('[tasks.gen]\noutputs = ["site/"]\n'
                     'cmd = "mkdir -p site && for w in b c d; do echo $w > site/$w.htm; done"\n')
    assert project.bflow().returncode == 0
    project.flowfile('[tasks.gen]\noutputs = ["site/c.htm"]\n'
                     'cmd = "mkdir -p site && echo c2 > site/c.htm"\n'
                     '[tasks.lister]\ninputs = ["site/*.htm"]\n'
                     'outputs = ["out/list.txt"]\ncmd = "ls site > {output}"\n')
    result = project.bflow("clean", "gen")
    assert result.returncode == 0 and "in place" not in result.stderr, result.stderr
    assert list((project.root / "site").iterdir()) == []
    assert project.bflow().returncode == 0
    assert project.read("out/list.txt") == "c.htm\n"
