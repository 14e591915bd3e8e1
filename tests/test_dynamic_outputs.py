"""Outputs known only after a run (SPEC §1): globs and foreach over a directory output, or over
the outputs of a foreach over one, are expanded again once their producers have run. A clean
build gives the final result in one run, the next build runs nothing, and `-n`, `status`,
`graph` and `validate` say "after TASK" where nothing can be known yet. Runs are counted from
the log the commands append to."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import Project

# `gen` writes one page per line of list.txt into site/, starting afresh each run.
SITE = """\
[tasks.gen]
cmd = "rm -rf site && mkdir site && for f in $(cat list.txt); do echo $f > site/$f.html; done && echo gen >> runs.log"
inputs = ["list.txt"]
outputs = ["site/"]

[tasks.join]
cmd = "cat {inputs} > all.txt && echo join >> runs.log"
inputs = ["site/*.html"]
outputs = ["all.txt"]

[tasks.each]
foreach = "site/*.html"
cmd = "cp {item} out/{stem}.txt && echo {task} >> runs.log"
outputs = ["out/{stem}.txt"]
"""


def _dry_run(project: Project) -> dict[str, str]:
    """What `-n --json` names, by task: its reason."""
    result = project.bflow("-n", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    return {e["task"]: e["reason"] for e in events
            if e["event"] == "task_skipped" and e["reason"] != "up to date"}


def test_a_clean_build_reads_what_the_producer_wrote_and_the_next_build_runs_nothing(
        project: Project) -> None:
    project.flowfile(SITE)
    project.write("list.txt", "a\nb\n")
    assert _dry_run(project) == {
        "gen": "would run: no successful run recorded",
        "join": "after gen: what it reads is known only once gen has run",
        "each": "after gen: its instances are found only once gen has run"}
    assert sorted(project.build()) == ["each:site/a.html", "each:site/b.html", "gen", "join"]
    assert project.read("all.txt") == "a\nb\n"
    assert project.read("out/b.txt") == "b\n"
    assert project.build() == []
    assert _dry_run(project) == {}
    assert project.bflow("status", "--check").returncode == 0


def test_files_the_producer_adds_or_drops_are_seen_in_the_same_build(project: Project) -> None:
    project.flowfile(SITE)
    project.write("list.txt", "a\nb\n")
    project.build()
    project.write("list.txt", "b\nc\n")
    after_gen = "after gen: what it reads is known only once gen has run"
    dry = _dry_run(project)
    assert dry["gen"].startswith("would run: input list.txt changed")
    assert dry.pop("each") == "after gen: its instances are found only once gen has run"
    assert {name: reason for name, reason in dry.items() if name != "gen"} == {
        name: after_gen for name in ("join", "each:site/a.html", "each:site/b.html")}
    assert sorted(project.build()) == ["each:site/c.html", "gen", "join"]
    assert project.read("all.txt") == "b\nc\n"
    # The instance whose page is gone is gone too, with what it wrote.
    assert sorted(p.name for p in (project.root / "out").iterdir()) == ["b.txt", "c.txt"]
    assert project.build() == []
    listed = project.bflow("list", "each:*").stdout
    assert "each:site/a.html" not in listed and "each:site/c.html" in listed


@pytest.mark.parametrize("command", ["-n", "status"])
def test_a_foreach_over_a_directory_output_is_named_for_instances_to_come_not_counted(
        project: Project, command: str) -> None:
    # the foreach was named as a task that may run, and counted beside its instances:
    # `4 would run` where the build ran 3
    project.flowfile("""
        [tasks.gen]
        cmd = "rm -rf site && mkdir site && for f in a b; do cat version.txt > site/$f.html; done"
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
    lines = project.bflow(command, "--plain").stdout.splitlines()
    after_gen = "after gen: what it reads is known only once gen has run"
    shown = ("may run " if command == "-n" else "") + "{}: {}"
    assert [line for line in lines if "after gen" in line] == [
        shown.format("each", "after gen: its instances are found only once gen has run"),
        shown.format("each:site/a.html", after_gen), shown.format("each:site/b.html", after_gen)]
    ran = project.build()
    assert sorted(ran) == ["each:site/a.html", "each:site/b.html"]
    if command == "-n":
        assert lines[-1] == "bflow: 3 would run, 0 up to date (dry run)"


@pytest.mark.parametrize("gone", ["by a build of the producer alone", "by hand"])
def test_an_instance_whose_file_went_before_a_load_loses_its_outputs(project: Project,
                                                                     gone: str) -> None:
    # the project is loaded without each:site/b.html; only its record says what it wrote
    project.flowfile(SITE)
    project.write("list.txt", "a\nb\n")
    project.build()
    project.write("list.txt", "a\n")
    if gone == "by hand":
        (project.root / "site" / "b.html").unlink()
    else:
        assert project.build("gen") == ["gen"]
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed out/b.txt, written by task 'each:site/b.html'" in result.stderr
    assert sorted(p.name for p in (project.root / "out").iterdir()) == ["a.txt"]
    assert project.read("all.txt") == "a\n"
    assert project.build() == []


def test_what_an_instance_no_longer_declares_is_removed(project: Project) -> None:
    # the Flowfile renames the output and drops the depfile of a foreach over site/
    each = """
        [tasks.each]
        foreach = "site/*.html"
        cmd = "cp {item} {output} && echo 'x: list.txt' > dep/{stem}.d && echo {task} >> runs.log"
        outputs = ["out/{stem}.txt"]
        depfile = "dep/{stem}.d"
        """
    project.flowfile(SITE.split("[tasks.each]")[0] + each)
    project.write("list.txt", "a\n")
    (project.root / "dep").mkdir()
    project.build()
    assert project.read("dep/a.d") == "x: list.txt\n"
    project.flowfile(SITE.split("[tasks.each]")[0] + each.replace(
        " && echo 'x: list.txt' > dep/{stem}.d", "").replace("out/", "obj/").replace(
        'depfile = "dep/{stem}.d"', ""))
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert "removed out/a.txt, written by task 'each:site/a.html', which no longer declares it" \
        in result.stderr
    assert not (project.root / "out" / "a.txt").exists()
    assert not (project.root / "dep" / "a.d").exists()
    assert project.read("obj/a.txt") == "a\n"
    assert project.build() == []


CHAIN = """\
[tasks.generate]
cmd = "rm -rf gen && mkdir gen && for f in $(cat names.txt); do echo \\"int $f;\\" > gen/$f.c; done && echo generate >> runs.log"
inputs = ["names.txt"]
outputs = ["gen/"]

[tasks.compile]
foreach = "gen/*.c"
cmd = "cp {item} {output} && echo {task} >> runs.log"
outputs = ["build/{stem}.o"]

[tasks.link]
cmd = "cat {inputs} > {output} && echo link >> runs.log"
inputs = ["build/*.o"]
outputs = ["app"]
"""


def test_two_dynamic_stages_build_in_one_run(project: Project) -> None:
    project.flowfile(CHAIN)
    project.write("names.txt", "x\ny\n")
    assert project.bflow("validate").stderr == ""
    assert _dry_run(project)["link"] == \
        "after compile: what it reads is known only once compile has run"
    assert project.build("-j1") == ["generate", "compile:gen/x.c", "compile:gen/y.c", "link"]
    assert project.read("app") == "int x;\nint y;\n"
    assert project.build() == []
    project.write("names.txt", "y\nz\n")
    ran = project.build()
    assert sorted(ran) == ["compile:gen/z.c", "generate", "link"]
    assert project.read("app") == "int y;\nint z;\n"
    assert not (project.root / "build" / "x.o").exists()
    assert project.build() == []


def test_a_hidden_file_an_instance_writes_can_be_read_by_name(project: Project) -> None:
    # `copy`'s instances are known only after `gen` runs; `out/.env`, named by `use`, is one
    # of their outputs to come even though `*` skips hidden files on disk.
    project.flowfile("""
        [tasks.gen]
        cmd = "mkdir -p gen && echo secret > gen/.env && echo gen >> runs.log"
        outputs = ["gen/"]

        [tasks.copy]
        foreach = "gen/.*"
        cmd = "cp {item} {output} && echo copy >> runs.log"
        outputs = ["out/{name}"]

        [tasks.use]
        cmd = "cat {input} > used.txt && echo use >> runs.log"
        inputs = ["out/.env"]
        outputs = ["used.txt"]
        """)
    assert project.build() == ["gen", "copy", "use"]
    assert project.read("used.txt") == "secret\n"
    assert project.build() == []


def test_a_failing_producer_runs_none_of_its_readers(project: Project) -> None:
    project.flowfile(SITE.replace('"rm -rf site', '"test -s list.txt && rm -rf site'))
    project.write("list.txt", "")
    result = project.bflow("--json")
    assert result.returncode == 1
    assert project.runs() == []
    skipped = {e["task"]: e["reason"] for e in map(json.loads, result.stdout.splitlines())
               if e["event"] == "task_skipped"}
    assert skipped == {"join": "dependency failed: gen"}  # `each`: a group, not reported
    project.write("list.txt", "a\n")
    assert sorted(project.build()) == ["each:site/a.html", "gen", "join"]


def test_graph_marks_what_is_known_only_after_a_run(project: Project) -> None:
    project.flowfile(CHAIN)
    project.write("names.txt", "x\n")
    nodes = {n["name"]: n for n in json.loads(
        project.bflow("graph", "--format", "json").stdout)["nodes"]}
    assert nodes["compile"]["state"] == "after" and nodes["compile"]["group"]
    assert nodes["link"]["state"] == "after"
    assert nodes["generate"]["state"] == "stale"
    text = project.bflow("graph", "--plain").stdout
    assert "link (after compile: what it reads" in text
    project.build()
    nodes = {n["name"]: n for n in json.loads(
        project.bflow("graph", "--format", "json").stdout)["nodes"]}
    assert {n["state"] for n in nodes.values()} == {"up_to_date"}
    assert "compile:gen/x.c" in nodes


def test_a_project_loaded_before_its_producer_ran_keeps_what_the_build_found(
        project: Project) -> None:
    # As `bflow watch` does: one project, loaded when site/ was empty, built again and again.
    from buildflow import engine

    project.flowfile(SITE)
    project.write("list.txt", "a\n")
    loaded = engine.load(project.root / "Flowfile")
    assert engine.build(loaded).exit_status == 0
    project.write("list.txt", "a\nb\n")
    assert engine.build(loaded).exit_status == 0
    assert len(project.runs()) == 6
    assert sorted(project.runs()[3:]) == ["each:site/b.html", "gen", "join"]
    assert project.read("out/a.txt") == "a\n"


def test_the_counter_counts_only_instances_the_plan_held(project: Project) -> None:
    # records of another Flowfile's instances of the same task were taken off the count too:
    # `[2/1]`, `[3/1]`
    over_site = """
        [tasks.site]
        cmd = "mkdir -p site && cp src/*.txt site/"
        inputs = ["src/*.txt"]
        outputs = ["site/"]
        [tasks.each]
        foreach = "site/*.txt"
        cmd = "cp {item} {output}"
        outputs = ["out/{stem}.o"]
        """
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    project.flowfile(over_site)
    assert project.bflow().returncode == 0
    project.flowfile("""
        [tasks.each]
        foreach = "src/*.txt"
        cmd = "cp {item} {output}"
        outputs = ["out/{stem}.o"]
        """)
    assert project.bflow().returncode == 0
    project.flowfile(over_site)
    result = project.bflow("--plain")
    assert result.returncode == 0
    assert [line.split("[")[1].split("]")[0] for line in result.stdout.splitlines()
            if line.startswith("ok ")] == ["1/1", "2/3", "3/3"]


def test_a_foreach_whose_instances_cannot_be_found_counts_as_failed(project: Project) -> None:
    # reported FAILED, with exit status 1, but counted as "0 failed"
    project.flowfile("""
        [tasks.gen]
        cmd = "rm -rf gen && mkdir -p gen/x && echo 1 > gen/aa.txt && echo 2 > gen/x/aa.txt"
        outputs = ["gen/"]
        [tasks.each]
        cmd = "cp {input} {output}"
        foreach = "gen/**/*.txt"
        outputs = ["out/{stem}.up"]
        """)
    result = project.bflow("--json")
    assert result.returncode == 1
    finished = json.loads(result.stdout.splitlines()[-1])
    assert (finished["event"], finished["ran"], finished["failed"]) == ("build_finished", 1, 1)


def test_an_instance_not_found_yet_may_be_named_on_the_command_line_or_as_a_default(
        project: Project) -> None:
    # "unknown target" until the file existed: a fresh clone could not even run `bflow gen`
    project.write("list.txt", "aa bb\n")
    project.flowfile("""
        [settings]
        default = ["each:gen/aa.txt"]
        [tasks.gen]
        cmd = "rm -rf gen && mkdir gen && for n in $(cat list.txt); do echo $n > gen/$n.txt; done"
        inputs = ["list.txt"]
        outputs = ["gen/"]
        [tasks.each]
        cmd = "tr a-z A-Z < {input} > {output} && echo {task} >> runs.log"
        foreach = "gen/*.txt"
        outputs = ["out/{stem}.up"]
        """)
    assert project.bflow("validate").returncode == 0
    assert sorted(project.build()) == ["each:gen/aa.txt", "each:gen/bb.txt"]
    assert project.read("out/aa.up") == "AA\n"
    assert project.bflow("clean").returncode == 0
    assert sorted(project.build("each:gen/bb.txt")) == ["each:gen/aa.txt", "each:gen/bb.txt"]


def test_a_duplicate_among_files_a_producer_will_replace_does_not_stop_the_load(
        project: Project) -> None:
    # the listing from before the build had two instances declaring out/aa.up: every command
    # stopped at load (exit 2), even `bflow gen`, whose run would have fixed it
    flowfile = """
        [tasks.gen]
        cmd = "rm -rf gen && mkdir -p gen/x && echo 1 > gen/aa.txt && echo 2 > gen/x/aa.txt"
        outputs = ["gen/"]
        [tasks.each]
        cmd = "cp {input} {output} && echo {task} >> runs.log"
        foreach = "gen/**/*.txt"
        outputs = ["out/{stem}.up"]
        """
    project.flowfile(flowfile)
    result = project.bflow()
    assert result.returncode == 1
    assert "output 'out/aa.up' of task 'each:gen/x/aa.txt' is also declared by task " \
           "'each:gen/aa.txt'" in result.stdout
    project.flowfile(flowfile.replace("mkdir -p gen/x && echo 1 > gen/aa.txt && echo 2 > "
                                      "gen/x/aa.txt", "mkdir gen && echo 1 > gen/aa.txt"))
    assert project.build() == ["each:gen/aa.txt"]
    assert project.read("out/aa.up") == "1\n"
    assert project.build() == []


def test_dry_run_and_status_take_the_outputs_of_instances_found_no_more_as_gone(
        project: Project) -> None:
    # the build removes them once it finds the foreach's instances again, before it decides
    # a foreach over them; -n and status --check named that foreach's instances all the same
    project.write("list.txt", "aa bb\n")
    flowfile = """
        [tasks.gen]
        cmd = "rm -rf gen && mkdir -p gen/x && for n in $(cat list.txt); do echo $n > gen/x/$n.txt; done"
        inputs = ["list.txt"]
        outputs = ["gen/"]
        [tasks.five]
        cmd = "cp {input} {output}"
        foreach = "gen/**/*.txt"
        outputs = ["out5/{relstem}.o"]
        """
    project.flowfile(flowfile)
    assert project.bflow().returncode == 0
    project.flowfile(flowfile.replace("gen/**/*.txt", "gen/*.txt") + """
        [tasks.six]
        cmd = "cp {input} {output} && echo {task} >> runs.log"
        foreach = "out5/**/*.o"
        outputs = ["out6/{relstem}.o"]
        """)
    assert project.bflow("-n").stdout.splitlines() == [
        "bflow: 0 would run, 1 up to date (dry run)"]
    assert project.bflow("status", "--check").returncode == 0
    assert project.build() == []
    assert not (project.root / "out5" / "x" / "aa.o").exists()


def test_a_vanished_task_s_output_that_an_instance_found_from_old_files_declares_goes(
        project: Project) -> None:
    # `old` went, and `each` came declaring its out/b.txt for site/b.html, a page the last
    # build left and the next gen no longer writes: the file was kept for the instance, the
    # record that named it forgotten, and nothing ever removed it
    project.write("list.txt", "a b\n")
    project.flowfile(SITE.split("[tasks.join]")[0]
                     + '[tasks.old]\ncmd = "echo old > out/b.txt"\noutputs = ["out/b.txt"]\n')
    project.build()
    project.flowfile(SITE)
    project.write("list.txt", "a\n")
    assert project.bflow().returncode == 0
    assert sorted(p.name for p in (project.root / "out").iterdir()) == ["a.txt"]
    assert project.read("all.txt") == "a\n"


def test_a_task_that_became_a_foreach_over_a_directory_output_loses_its_old_outputs(
        project: Project) -> None:
    # the old task's record, under the name the foreach now has, was taken for one of the
    # instances the build finds later, and its out/all.txt stayed for good
    project.write("list.txt", "a\n")
    project.flowfile(SITE.split("[tasks.each]")[0]
                     + '[tasks.each]\ncmd = "cat site/*.html > out/all.txt"\n'
                       'inputs = ["site/*.html"]\noutputs = ["out/all.txt"]\n')
    project.build()
    project.flowfile(SITE)
    assert project.bflow().returncode == 0
    assert sorted(p.name for p in (project.root / "out").iterdir()) == ["a.txt"]
    assert project.build() == []


CONVERT = """\
[tasks.site]
cmd = "mkdir -p site && echo x > site/x.txt"
outputs = ["site/"]

[tasks.conv]
foreach = "{FROM}"
cmd = "echo conv >> runs.log && cp {{item}} {{output}}"
outputs = ["build/{{stem}}.conv.txt"]

[tasks.post]
foreach = "build/*.txt"
cmd = "echo post >> runs.log && cp {{item}} {{output}}"
outputs = ["build/{{stem}}.post.txt"]
"""


def test_a_foreach_found_again_never_takes_what_its_instances_wrote_as_items(
        project: Project) -> None:
    # `post` reads build/*.txt and writes build/x.conv.post.txt there: found again during a
    # build, it took that as an item, and each build added a generation (.post.post.txt)
    project.flowfile(CONVERT.format(FROM="site/*.txt"))
    for options in ([], [], ["-B"], ["-B"]):
        assert project.bflow(*options).returncode == 0
    assert sorted(p.name for p in (project.root / "build").iterdir()) == [
        "x.conv.post.txt", "x.conv.txt"]
    assert project.bflow("list", "post:*").stdout.split() == ["post:build/x.conv.txt"]


def test_a_foreach_pointed_at_a_directory_output_beside_a_reader_of_its_files(
        project: Project) -> None:
    # the old instances' files made an instance of `post` whose producer was gone: exit 3
    project.write("src/a.txt", "A\n")
    project.flowfile(CONVERT.format(FROM="src/*.txt"))
    assert project.bflow().returncode == 0
    project.flowfile(CONVERT.format(FROM="site/*.txt"))
    result = project.bflow()
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (project.root / "build").iterdir()) == [
        "x.conv.post.txt", "x.conv.txt"]
    assert project.build() == []


def test_a_cycle_found_once_the_files_are_written_fails_the_build_naming_it(
        project: Project) -> None:
    # the build stopped with its tasks skipped as "build stopped", no error, and exit 0
    project.flowfile("""
        [tasks.site]
        cmd = "mkdir -p site && echo x > site/a.txt"
        outputs = ["site/"]
        [tasks.each]
        foreach = "site/*.txt"
        inputs = ["out/*.txt"]
        outputs = ["gen/{stem}.txt"]
        cmd = "echo each >> runs.log && cat {inputs} > {output}"
        [tasks.join]
        inputs = ["gen/*.txt"]
        outputs = ["out/join.txt"]
        cmd = "echo join >> runs.log && cat {inputs} > {output}"
        """)
    result = project.bflow("--plain")
    assert result.returncode == 1
    assert ("FAILED each:site/a.txt: dependency cycle, found once the files the tasks read "
            "were written: each:site/a.txt -> join -> each:site/a.txt; break it in the "
            "Flowfile") in result.stdout
    assert "skip   join (dependency failed: each:site/a.txt)" in result.stdout
    assert project.runs() == []
    again = project.bflow()
    assert again.returncode == 2 and "dependency cycle: each:site/a.txt -> join" in again.stderr


def test_one_instance_of_a_foreach_over_a_directory_output_builds_alone(
        project: Project) -> None:
    # -n said that instance alone would run; the build found the foreach's instances again
    # and ran every stale one
    flow = """
        [tasks.gen]
        outputs = ["site/"]
        cmd = "mkdir -p site && for w in a c d; do echo $w > site/$w.html; done"
        [tasks.each]
        foreach = "site/*.html"
        outputs = ["proc/{stem}.txt"]
        cmd = "MARK {item} > {output} && echo {stem} >> runs.log"
        """
    project.flowfile(flow.replace("MARK", "cat"))
    assert sorted(project.build()) == ["a", "c", "d"]
    project.flowfile(flow.replace("MARK", "tr a-z A-Z <"))
    dry = project.bflow("-n", "each:site/c.html")
    assert dry.stdout.splitlines()[-1] == "bflow: 1 would run, 1 up to date (dry run)", dry.stdout
    assert project.build("each:site/c.html") == ["c"]
    assert project.read("proc/c.txt") == "C\n" and project.read("proc/a.txt") == "a\n"
    assert sorted(project.build("each")) == ["a", "d"]


@pytest.mark.parametrize("named", ["in the directory output", "an instance's output"])
def test_a_file_named_as_an_input_that_the_producers_did_not_write_fails_its_reader(
        project: Project, named: str) -> None:
    # the reader ran with the file missing, succeeded, and ran again at every build
    reads = "site/a.txt" if named == "in the directory output" else "proc/a.txt"
    project.flowfile(f"""
        [tasks.gen]
        outputs = ["site/"]
        cmd = "mkdir -p site && echo b > site/b.txt"
        [tasks.each]
        foreach = "site/*.txt"
        outputs = ["proc/{{name}}"]
        cmd = "cp {{item}} {{output}}"
        [tasks.join]
        inputs = ["{reads}"]
        outputs = ["out/join.txt"]
        cmd = "cat {{inputs}} > {{output}} 2>/dev/null; echo join >> runs.log"
        """)
    result = project.bflow()
    assert result.returncode == 1, result.stdout
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED join:")]
    # one line: the reason held a line break, which began its end at column 0
    assert len(failed) == 1 and f"input '{reads}' of task 'join' is neither on disk nor an " \
        "output of any task (found once the files it reads were written) (0 attempts" \
        in failed[0], result.stdout
    assert project.runs() == []
    project.flowfile((project.root / "Flowfile").read_text().replace(reads, reads[:-5] + "b.txt"))
    assert project.build() == ["join"]
    assert project.build() == []


def test_deps_may_name_an_instance_of_a_foreach_over_a_directory_output_before_it_exists(
        project: Project) -> None:
    # a load error ("unknown task") until the file existed, which only a build writes
    project.flowfile("""
        [tasks.gen]
        outputs = ["site/"]
        cmd = "mkdir -p site && echo b > site/b.html"
        [tasks.each]
        foreach = "site/*.html"
        outputs = ["proc/{stem}.txt"]
        cmd = "cat {item} > {output} && echo {stem} >> runs.log"
        [tasks.pub]
        deps = ["each:site/b.html"]
        cmd = "cat proc/b.txt > pub.txt && echo pub >> runs.log"
        """)
    assert project.build("pub") == ["b", "pub"]
    assert project.read("pub.txt") == "b\n"
    assert project.build("pub") == ["pub"]  # no inputs, no outputs checked: runs each time


def test_an_instance_reading_a_file_of_another_directory_output_waits_for_it(
        project: Project) -> None:
    # the instances, found once gen1 had run, were checked before gen2 wrote b/conf.txt
    project.flowfile("""
        [tasks.gen1]
        cmd = "mkdir -p a && echo x > a/x.txt"
        outputs = ["a/"]
        [tasks.gen2]
        cmd = "sleep 0.5; mkdir -p b && echo c > b/conf.txt"
        outputs = ["b/"]
        [tasks.each]
        foreach = "a/*.txt"
        inputs = ["b/conf.txt"]
        outputs = ["out/{stem}.o"]
        cmd = "cat {inputs} > {output}"
        """)
    result = project.bflow("-j2")
    assert result.returncode == 0, result.stdout
    assert project.read("out/x.o") == "x\nc\n"


def test_an_instance_named_before_its_file_exists_stands_for_all_that_will_be(
        project: Project) -> None:
    # with other instances known at load, only the producer ran
    project.flowfile("""
        [vars]
        N = "2"
        [tasks.gen]
        cmd = "mkdir -p a && for i in $(seq 1 {N}); do echo $i > a/f$i.txt; done"
        outputs = ["a/"]
        [tasks.each]
        foreach = "a/*.txt"
        outputs = ["out/{stem}.o"]
        cmd = "cp {item} {output}"
        """)
    assert project.bflow("each").returncode == 0
    result = project.bflow("each:a/f3.txt", "N=3")
    assert result.returncode == 0, result.stdout
    assert project.read("out/f3.o") == "3\n"


def test_a_depfile_naming_a_file_of_its_task_s_own_directory_output_leaves_it_up_to_date(
        project: Project) -> None:
    """`site.d` names `site/toc.txt`, which the task writes into its own `site/`: written
    during the run, it was taken as changed then, and the task ran at every build."""
    project.write("s.txt", "s\n")
    project.flowfile("""
        [tasks.site]
        cmd = "echo site >> runs.log; mkdir -p site; cp s.txt site/index.html; cp s.txt site/toc.txt; echo 'site/index.html: s.txt site/toc.txt' > site.d"
        inputs = ["s.txt"]
        outputs = ["site/"]
        depfile = "site.d"
        """)
    assert project.build() == ["site"]
    assert project.build() == []
    project.write("s.txt", "t\n")
    assert project.build() == ["site"]
    assert project.build() == []


def test_a_directory_output_deeper_than_python_recurses_is_no_internal_error(
        project: Project) -> None:
    """`os.walk` recursed, and a tree 1,100 directories deep was an internal error (exit 3)
    at every build, until the tree was deleted by hand; the glob of a reader walking it took
    a realpath of each directory, a million `lstat`s (9 s a build)."""
    deep = "site/" + "d/" * 1100
    project.flowfile(f"""
        [tasks.deep]
        cmd = "echo deep >> runs.log; mkdir -p {deep}; echo x > site/top.txt; echo y > {deep}leaf.txt"
        outputs = ["site/"]
        [tasks.pack]
        cmd = "echo pack >> runs.log; cat {{inputs}} > {{output}}"
        inputs = ["site/"]
        outputs = ["pack.txt"]
        """)
    try:
        assert project.build() == ["deep", "pack"]
        assert project.read("pack.txt") == "y\nx\n"  # site/d/... sorts first
        assert project.build() == []
        project.write("site/top.txt", "edited\n")
        assert project.build() == ["deep"]  # its tree is not what it left: it runs again
    finally:  # as deep for pytest's own removal, which recurses too
        subprocess.run(["rm", "-rf", str(project.root / "site")], check=True)


def test_an_item_found_again_keeps_the_glob_that_took_it_after_an_exclusion(
        project: Project) -> None:
    """`src/a/x.c`, removed by `!src/a/**` and taken again by `src/a/*.c`, has `{rel}` x.c;
    found again once `gen` ran (its inputs glob `gen`'s directory), it was given the first
    glob's `{rel}`, a/x.c: it wrote another output than it declared, and ran at every build."""
    project.write("src/a/x.c", "1\n")
    project.write("src/y.c", "2\n")
    project.flowfile("""
        [tasks.gen]
        cmd = "mkdir -p site && echo h > site/x.h"
        outputs = ["site/"]
        [tasks.each]
        foreach = ["src/**/*.c", "!src/a/**", "src/a/*.c"]
        inputs = ["site/*.h"]
        cmd = "echo '{task} {rel}' >> runs.log; cp {item} {output}"
        outputs = ["out/{rel}.o"]
        """)
    project.build()
    assert sorted(project.read("runs.log").splitlines()) == ["each:src/a/x.c x.c",
                                                              "each:src/y.c y.c"]
    assert project.build() == []
    assert (project.root / "out/x.c.o").exists() and not (project.root / "out/a").exists()
