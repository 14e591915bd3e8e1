"""Outputs of tasks that no longer exist are removed before a build, so globs match exactly
what a clean build would see; edited ones are left alone, and so are those a task names as a
source (a generated file the user keeps by hand from then on)."""

from __future__ import annotations

import textwrap

import pytest

from conftest import Project, settle
from test_git import FLOW



def test_removed_source_removes_its_output_and_reruns_the_join(project: Project) -> None:
    project.flowfile(FLOW)
    project.write("src/a.txt", "a\n")
    doomed = project.write("src/d.txt", "d\n")
    assert project.bflow().returncode == 0
    assert project.read("site.txt") == "A\nD\n"
    doomed.unlink()
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed build/d.out" in result.stderr
    assert not (project.root / "build/d.out").exists()
    assert project.read("site.txt") == "A\n"
    assert sorted(project.runs()[:2]) == ["a", "d"] and project.runs()[2:] == ["join", "join"]
    assert project.bflow().returncode == 0
    assert sorted(project.runs()[:2]) == ["a", "d"] and project.runs()[2:] == ["join", "join"]


def test_an_edited_orphan_is_left_in_place(project: Project) -> None:
    project.flowfile(FLOW)
    project.write("src/a.txt", "a\n")
    doomed = project.write("src/d.txt", "d\n")
    project.bflow()
    project.write("build/d.out", "mine now\n")
    doomed.unlink()
    result = project.bflow()
    assert "left build/d.out in place" in result.stderr
    assert project.read("build/d.out") == "mine now\n"
    assert project.read("site.txt") == "A\nmine now\n"


READERS = """
[tasks.use]
cmd = "cat config.txt > used.txt && echo use >> runs.log"
inputs = ["config.txt"]
outputs = ["used.txt"]

[tasks.glob]
cmd = "cat {inputs} > globbed.txt && echo glob >> runs.log"
inputs = ["*.gen", "config.txt"]
outputs = ["globbed.txt"]
"""


def test_a_generated_file_named_as_a_source_is_kept_when_its_task_goes(project: Project) -> None:
    project.flowfile(READERS + """
        [tasks.gen]
        cmd = "echo generated > config.txt && echo gen >> runs.log"
        outputs = ["config.txt"]

        [tasks.other]
        cmd = "echo other > other.gen && echo other >> runs.log"
        outputs = ["other.gen"]
        """)
    assert sorted(project.build()) == ["gen", "glob", "other", "use"]
    # `gen` goes: config.txt is the user's to keep now, as `use` and `glob` say by naming it;
    # `other` goes too, and other.gen, which only a glob matched, goes with it.
    project.flowfile(READERS)
    dry = project.bflow("-n").stdout  # says what the build then does
    assert "would run glob" in dry and "would run use" not in dry
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed other.gen" in result.stderr and "config.txt" not in result.stderr
    assert project.read("config.txt") == "generated\n"
    assert project.runs()[4:] == ["glob"]  # its inputs changed; `use` read the same file
    assert project.build() == []
    project.write("config.txt", "by hand\n")
    assert sorted(project.build()) == ["glob", "use"]
    assert project.read("used.txt") == "by hand\n"


def test_dry_run_removes_nothing(project: Project) -> None:
    project.flowfile(FLOW)
    project.write("src/a.txt", "a\n")
    doomed = project.write("src/d.txt", "d\n")
    project.bflow()
    doomed.unlink()
    assert project.bflow("-n").returncode == 0
    assert (project.root / "build/d.out").exists()


CHAINED = """
[tasks.each]
foreach = "src/*.txt"
cmd = "cat {item} > {output}"
outputs = ["gen/{stem}.out"]

[tasks.again]
foreach = "gen/*.out"
cmd = "cat {item} > {output}"
outputs = ["gen2/{stem}.txt"]

[tasks.join]
cmd = "cat {inputs} > {output}"
inputs = ["gen2/*.txt"]
outputs = ["site.txt"]
"""


def test_a_removed_source_removes_outputs_down_a_chain_of_foreach_tasks(project: Project) -> None:
    project.flowfile(CHAINED)
    project.write("src/a.txt", "a\n")
    doomed = project.write("src/d.txt", "d\n")
    assert project.bflow().returncode == 0
    doomed.unlink()
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert not (project.root / "gen2/d.txt").exists()
    assert project.read("site.txt") == "a\n"


def test_a_vanished_instance_s_depfile_goes_with_its_outputs(project: Project) -> None:
    project.flowfile("""
        [tasks.cc]
        foreach = "src/*.c"
        cmd = "cat {item} > {output}; echo '{output}: {item}' > {depfile}"
        outputs = ["build/{stem}.o"]
        depfile = "build/{stem}.d"

        [tasks.deps]
        cmd = "cat {inputs} > {output}"
        inputs = ["build/*.d"]
        outputs = ["deps.txt"]
        """)
    project.write("src/a.c", "a\n")
    doomed = project.write("src/b.c", "b\n")
    assert project.bflow().returncode == 0
    doomed.unlink()
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed build/b.d, written by task 'cc:src/b.c', which no longer exists" in \
        result.stderr
    assert sorted(p.name for p in (project.root / "build").iterdir()) == ["a.d", "a.o"]
    assert project.read("deps.txt") == "build/a.o: src/a.c\n"  # as a clean build has it


def test_a_depfile_a_current_task_names_is_kept(project: Project) -> None:
    project.flowfile("""
        [tasks.old]
        cmd = "echo x > {output}; echo 'x.txt: a.txt' > {depfile}"
        inputs = ["a.txt"]
        outputs = ["x.txt"]
        depfile = "shared.d"
        """)
    project.write("a.txt", "a\n")
    assert project.bflow().returncode == 0
    project.flowfile("""
        [tasks.new]
        cmd = "echo y > {output}"
        inputs = ["a.txt"]
        outputs = ["y.txt"]
        depfile = "shared.d"
        """)
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed x.txt" in result.stderr and "shared.d" not in result.stderr
    assert project.read("shared.d") == "x.txt: a.txt\n"


FAILS_ON_BAD = """
[tasks.cc]
foreach = "src/*.c"
cmd = "if grep -q bad {item}; then {write}exit 1; fi; cat {item} > {output}"
outputs = ["out/{stem}.o"]

[tasks.link]
inputs = ["out/*.o"]
cmd = "cat {inputs} > {output}"
outputs = ["app"]
"""


@pytest.mark.parametrize("succeeded_before", [False, True])
def test_what_a_failed_run_wrote_into_its_directory_output_goes_with_its_task(
        project: Project, succeeded_before: bool) -> None:
    """A file output a failed run wrote went once its task did, a directory output's files
    stayed (its tree was never taken as the run's), and `**/*.g` read them: a clean build's
    all.txt is empty."""
    gen = '[tasks.gen]\ncmd = "mkdir -p gen; cp src/a.txt gen/$(cat src/a.txt).g; ' \
          'cp src/a.txt f.g; exit $FAIL"\ninputs = ["src/a.txt"]\noutputs = ["gen/", "f.g"]\n'
    project.write("src/a.txt", "a\n")
    project.flowfile(gen)
    if succeeded_before:
        assert project.bflow(env={"FAIL": "0"}).returncode == 0
        project.write("src/a.txt", "b\n")
    assert project.bflow(env={"FAIL": "1"}).returncode == 1
    project.flowfile('[tasks.join]\ncmd = "cat {inputs} > {output}"\ninputs = ["**/*.g"]\n'
                     'outputs = ["all.txt"]\n')
    result = project.bflow("--plain")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removed gen, written by task 'gen', which no longer exists" in result.stderr
    assert not (project.root / "gen").exists() and not (project.root / "f.g").exists()
    assert project.read("all.txt") == ""


@pytest.mark.parametrize("write", ["", "echo partial > {output}; "])
def test_the_outputs_of_an_instance_that_failed_before_it_vanished_go_too(
        project: Project, write: str) -> None:
    # its last success left out/x.o; the failed run left it as it was, or wrote part of it
    project.flowfile(FAILS_ON_BAD.replace("{write}", write))
    project.write("src/a.c", "a\n")
    doomed = project.write("src/x.c", "x\n")
    assert project.bflow().returncode == 0
    project.write("src/x.c", "bad\n")
    assert project.bflow().returncode == 1
    doomed.unlink()
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed out/x.o, written by task 'cc:src/x.c', which no longer exists" in \
        result.stderr
    assert project.read("app") == "a\n"  # as a clean build has it


def test_the_depfile_of_a_task_that_failed_before_it_vanished_goes_too(project: Project) -> None:
    project.flowfile("""
        [tasks.t]
        cmd = "cat a.txt > {output} && echo '{output}: a.txt' > {depfile}"
        outputs = ["out.txt"]
        depfile = "out.d"
        """)
    project.write("a.txt", "a\n")
    assert project.bflow().returncode == 0
    project.flowfile("""
        [tasks.t]
        cmd = "exit 1"
        outputs = ["out.txt"]
        depfile = "out.d"
        """)
    assert project.bflow().returncode == 1
    project.flowfile("""
        [tasks.other]
        cmd = "cat a.txt > {output}"
        outputs = ["o2.txt"]
        """)
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed out.d, written by task 't', which no longer exists" in result.stderr
    assert sorted(p.name for p in project.root.iterdir() if p.name != ".bflow") == [
        "Flowfile", "a.txt", "o2.txt"]


def test_a_file_of_the_user_s_at_the_output_of_a_failed_instance_is_kept(
        project: Project) -> None:
    # the instance never succeeded and its run did not write out/x.o: bflow did not write it
    project.flowfile(FAILS_ON_BAD.replace("{write}", ""))
    project.write("src/a.c", "a\n")
    doomed = project.write("src/x.c", "bad\n")
    project.write("out/x.o", "mine\n")
    settle(project.root / "out" / "x.o")
    assert project.bflow().returncode == 1
    doomed.unlink()
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert project.read("out/x.o") == "mine\n"


def test_a_directory_at_a_vanished_task_s_depfile_is_the_user_s(project: Project) -> None:
    project.flowfile("""
        [tasks.cc]
        cmd = "echo obj > out.o; echo 'out.o: Flowfile' > deps"
        outputs = ["out.o"]
        depfile = "deps"
        """)
    project.build()
    project.flowfile('[tasks.other]\ncmd = "echo x > x"\noutputs = ["x"]\n')
    (project.root / "deps").unlink()
    project.write("deps/notes.txt", "my notes\n")
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed out.o" in result.stderr and "deps" not in result.stderr
    assert project.read("deps/notes.txt") == "my notes\n"


def test_a_source_inside_a_vanished_directory_output_is_kept(project: Project) -> None:
    # the README's rule for a generated file the user now keeps, inside a directory output
    project.flowfile("""
        [tasks.gen]
        cmd = "mkdir -p gen && echo config > gen/config.txt && echo other > gen/other.txt"
        outputs = ["gen/"]
        """)
    project.build()
    project.flowfile("""
        [tasks.use]
        cmd = "cat gen/config.txt > used.txt"
        inputs = ["gen/config.txt"]
        outputs = ["used.txt"]
        """)
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed the files in gen, written by task 'gen', which no longer exists, but " \
           "gen/config.txt, which the Flowfile names now" in result.stderr
    assert "in place" not in result.stderr  # its own removal is no edit of the user's
    assert project.read("used.txt") == "config\n"
    assert sorted(p.name for p in (project.root / "gen").iterdir()) == ["config.txt"]
    assert project.bflow().stderr == ""  # nothing more to remove, nothing more said


def test_an_output_no_longer_declared_goes_and_its_task_runs_again(project: Project) -> None:
    # the command, unchanged, still writes the map: the build removed it as no longer the
    # task's and ran nothing, so it was gone where a clean build has it
    flow = ('[tasks.link]\ncmd = "echo link >> runs.log; echo code > out/app; '
            'echo symbols > out/app.map"\noutputs = [{}]\n')
    project.flowfile(flow.format('"out/app", "out/app.map"'))
    assert project.build() == ["link"]
    project.flowfile(flow.format('"out/app"'))
    assert "link: out/app.map is no longer an output" in project.bflow("status").stdout
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed out/app.map, written by task 'link', which no longer declares it" \
        in result.stderr
    assert project.runs() == ["link", "link"]
    assert project.read("out/app.map") == "symbols\n"
    assert project.build() == []


@pytest.mark.parametrize("reader", ["glob", "foreach"])
def test_dry_run_and_status_take_the_files_of_a_dead_directory_output_as_gone(
        project: Project, reader: str) -> None:
    # they took the directory as gone, not the files in it, which the build removes first:
    # -n said the glob's reader was up to date, or named the foreach's instances
    project.write("src/a.txt", "A\n")
    site = ('[tasks.site]\ncmd = "rm -rf site && mkdir site && cp {inputs} site/"\n'
            'inputs = ["src/*.txt"]\noutputs = ["site/"]\n')
    reads = ('[tasks.reader]\ncmd = "echo reader >> runs.log && cat {inputs} > {output}"\n'
             'inputs = ["src/*.txt", "site/**/*.txt"]\noutputs = ["out.txt"]\n'
             if reader == "glob" else
             '[tasks.each]\nforeach = "site/*.txt"\ncmd = "echo each >> runs.log && '
             'cp {item} {output}"\noutputs = ["final/{stem}.out"]\n')
    project.flowfile(site + reads)
    assert project.build() == ["reader" if reader == "glob" else "each"]
    project.flowfile(reads)
    dry = project.bflow("-n").stdout
    assert project.bflow("status", "--check").returncode == (1 if reader == "glob" else 0)
    if reader == "glob":
        assert "would run reader: " in dry
        assert project.build() == ["reader"] and project.read("out.txt") == "A\n"
    else:
        assert dry.splitlines() == ["bflow: 0 would run, 0 up to date (dry run)"]
        assert project.build() == []
    assert not (project.root / "site").exists()


@pytest.mark.parametrize("left", ["nothing", "only the file now declared"])
def test_a_directory_output_turned_into_files_inside_it_holding_no_other_builds(
        project: Project, left: str) -> None:
    # the prune found nothing to remove in site/ and said it had removed its files, over
    # and over: the build never started
    made = "mkdir -p site" + (" && echo b > site/b.html" if left != "nothing" else "")
    project.flowfile(f'[tasks.gen]\noutputs = ["site/"]\ncmd = "{made} && echo gen >> runs.log"\n')
    assert project.build() == ["gen"]
    project.flowfile('[tasks.gen]\noutputs = ["site/b.html"]\n'
                     'cmd = "mkdir -p site && echo b > site/b.html && echo gen >> runs.log"\n')
    result = project.bflow(timeout=30)
    assert result.returncode == 0, result.stderr
    assert "removed the files in site" not in result.stderr
    assert project.runs() == ["gen", "gen"] and project.read("site/b.html") == "b\n"
    assert project.build() == []


def test_a_foreach_renamed_as_its_items_vanish_leaves_no_stray_output(project: Project) -> None:
    # the prune forgot `old`'s record while `new`, found from a file it was about to remove,
    # declared that output; once `new` was gone too, nothing removed proc2/b.x
    chain = """
        [tasks.gen]
        outputs = ["site/b.EXT"]
        cmd = "mkdir -p site && echo b > site/b.EXT"
        [tasks.each]
        foreach = "site/*.html"
        outputs = ["proc/{stem}.txt"]
        cmd = "cat {item} > {output}"
        [tasks.NAME]
        foreach = "proc/*.txt"
        outputs = ["proc2/{stem}.x"]
        cmd = "cat {item} > {output}"
        """
    project.flowfile(chain.replace("EXT", "html").replace("NAME", "old"))
    assert project.bflow().returncode == 0
    project.write("kept.txt", "mine\n")
    project.flowfile(chain.replace("EXT", "htm").replace("NAME", "new"))
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    files = sorted(str(p.relative_to(project.root)) for p in project.root.rglob("*")
                   if p.is_file() and ".bflow" not in p.parts)
    assert files == ["Flowfile", "kept.txt", "site/b.htm"]


def test_an_edited_orphan_is_warned_of_once_when_others_go(project: Project) -> None:
    project.flowfile('[tasks.a]\ncmd = "echo a > a.out"\noutputs = ["a.out"]\n'
                     '[tasks.b]\ncmd = "echo b > b.out"\noutputs = ["b.out"]\n'
                     '[tasks.c]\ncmd = "true"\n')
    assert project.bflow().returncode == 0
    project.write("a.out", "edited\n")
    project.flowfile('[tasks.c]\ncmd = "true"\n')
    result = project.bflow()
    assert result.stderr.count("left a.out in place") == 1, result.stderr
    assert "removed b.out" in result.stderr and not (project.root / "b.out").exists()


def test_outputs_of_a_vanished_task_that_alone_keep_the_flowfile_from_loading_are_removed(
        project: Project) -> None:
    # `gen` deleted as `each` came to wait for `grp`, which needs `each`: the files gen left
    # made an instance of `each`, and so a cycle, at load, before the build could remove
    # them; exit 2 on every build, where a clean checkout builds
    project.write("list.txt", "p\n")
    each = '[tasks.each]\nforeach = "out/gen/*.g"\ncmd = "cp {item} {output}"\n' \
           'outputs = ["out/each/{stem}.e"]\n'
    project.flowfile(each + '[tasks.grp]\ndeps = ["each"]\n[tasks.gen]\n'
                     'cmd = "mkdir -p out/gen && for w in $(cat {input}); do '
                     'echo $w > out/gen/$w.g; done"\ninputs = ["list.txt"]\n'
                     'outputs = ["out/gen/"]\n')
    assert project.bflow().returncode == 0
    assert project.read("out/each/p.e") == "p\n"
    project.flowfile(each + 'deps = ["grp"]\n[tasks.grp]\ndeps = ["each"]\n')
    status = project.bflow("status")
    assert status.returncode == 0, status.stdout + status.stderr
    result = project.bflow("--plain")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (project.root / "out" / "gen").exists()
    assert not (project.root / "out" / "each" / "p.e").exists()
    assert project.bflow("--plain").returncode == 0
    project.flowfile(each + 'deps = ["grp"]\n[tasks.grp]\ndeps = ["each"]\n'
                     '[tasks.bad]\ncmd = 3\n')
    result = project.bflow()  # a Flowfile that is wrong on its own is still an error
    assert result.returncode == 2 and "tasks.bad" in result.stderr


@pytest.mark.parametrize("change", ["the item deleted", "the foreach made a plain task"])
def test_outputs_of_vanished_instances_of_a_task_still_there_that_keep_it_from_loading_go(
        project: Project, change: str) -> None:
    """As above, for instances whose task's name stays (its item deleted, or the task no
    longer a foreach): their outputs gave two items writing one output, exit 2 on every
    build and on `bflow clean`, where a clean checkout builds."""
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    upper = '[tasks.A]\nforeach = "src/*.txt"\ncmd = "cat {item} > {output}"\n' \
            'outputs = ["build/{stem}/x.o"]\n'
    reader = '[tasks.B]\nforeach = "build/*/x.o"\ncmd = "cat {item} > {output}"\n'
    project.flowfile(upper + reader + 'outputs = ["res/{dir}.r"]\n')
    assert project.bflow().returncode == 0
    if change == "the item deleted":
        (project.root / "src" / "b.txt").unlink()
        project.flowfile(upper + reader + 'outputs = ["res/{stem}.r"]\n')
    else:
        project.flowfile('[tasks.A]\ncmd = "cat {inputs} > {output}"\ninputs = ["src/*.txt"]\n'
                         'outputs = ["all.txt"]\n' + reader + 'outputs = ["res/{stem}.r"]\n')
    assert project.bflow("-n").returncode == 0
    result = project.bflow("--plain")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (project.root / "build" / "b" / "x.o").exists()
    assert project.bflow("clean").returncode == 0


@pytest.mark.parametrize("renamed", ["{stem}.u1", "{stem}.x1"])
def test_outputs_a_task_still_there_no_longer_declares_that_keep_it_from_loading_go(
        project: Project, renamed: str) -> None:
    """The first stage of a foreach chain renamed its output: the old file, still on disk,
    was an item of the second stage beside the new one, both writing `b2/a.t2`, exit 2 on
    every build (and -n) until it was deleted by hand, where a clean checkout builds. Only
    the outputs of tasks gone from the Flowfile were taken away for the load, not those a
    task still there no longer declares."""
    project.write("src/a.txt", "a\n")
    chain = '[tasks.s1]\nforeach = "src/*.txt"\ncmd = "cp {item} {output}"\n' \
            'outputs = ["b1/OUT"]\n[tasks.s2]\nforeach = "b1/*"\n' \
            'cmd = "cp {item} {output} && echo {task} >> runs.log"\n' \
            'outputs = ["b2/{stem}.t2"]\n'
    project.flowfile(chain.replace("OUT", "{stem}.t1"))
    assert project.build() == ["s2:b1/a.t1"]
    project.flowfile(chain.replace("OUT", renamed))
    assert project.bflow("-n").returncode == 0
    assert project.build("--plain") == [f"s2:b1/{renamed.replace('{stem}', 'a')}"]
    assert not (project.root / "b1" / "a.t1").exists()
    assert project.build() == []


@pytest.mark.parametrize("flip", ["directory to file", "file to directory of another task"])
def test_an_output_that_changes_kind_at_its_path_goes_before_the_build(
        project: Project, flip: str) -> None:
    """The tree (or file) bflow wrote at `gen` stayed when the Flowfile declared the other
    kind there: the command met it ("left a directory at gen, which it declares as a file",
    or `mkdir gen` failing) on every build, where a clean build succeeds."""
    project.write("src/a.txt", "a\n")
    as_tree = '[tasks.gen]\ncmd = "mkdir -p gen; cp src/a.txt gen/a.g"\ninputs = ["src/a.txt"]\n' \
              'outputs = ["gen/"]\n'
    as_file = '[tasks.gen]\ncmd = "cp src/a.txt gen"\ninputs = ["src/a.txt"]\n' \
              'outputs = ["gen"]\n'
    before, after = (as_tree, as_file) if flip == "directory to file" else \
        (as_file, as_tree.replace("tasks.gen", "tasks.gen2"))
    project.flowfile(before)
    assert project.bflow().returncode == 0
    project.flowfile(after)
    assert project.bflow("-n").returncode == 0
    result = project.bflow("--plain")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bflow: removed gen, written by task 'gen'" in result.stderr
    assert (project.root / "gen").is_dir() == (flip != "directory to file")
    assert project.bflow("status", "--check").returncode == 0


def test_flowfiles_in_one_directory_keep_apart_with_a_cache_dir_each(project: Project) -> None:
    """They share `.bflow`, so each build takes the other's tasks for vanished ones and
    removes what they wrote; a `cache_dir` of its own keeps each project's outputs."""
    dev = """
        [tasks.dev]
        cmd = "echo dev > dev.txt && echo dev >> runs.log"
        outputs = ["dev.txt"]
        """
    release = """
        [tasks.release]
        cmd = "echo release > release.txt && echo release >> runs.log"
        outputs = ["release.txt"]
        """
    project.flowfile(dev)
    project.write("release.toml", textwrap.dedent(release))
    assert project.build() == ["dev"]
    result = project.bflow("-f", "release.toml")
    assert "removed dev.txt, written by task 'dev', which no longer exists" in result.stderr
    assert not (project.root / "dev.txt").exists()
    assert project.build() == ["dev"]
    assert not (project.root / "release.txt").exists()

    project.write("release.toml", '[settings]\ncache_dir = ".bflow-release"\n'
                  + textwrap.dedent(release))
    assert project.build("-f", "release.toml") == ["release"]
    assert project.build() == [] and project.build("-f", "release.toml") == []
    assert project.read("dev.txt") == "dev\n" and project.read("release.txt") == "release\n"
