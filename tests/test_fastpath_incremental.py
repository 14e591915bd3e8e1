"""The incremental fast path builds just what changed files reach, from the proof, and must do
exactly what the full build would: the same commands (counted from the log file they append
to), the same outputs, the same summary, and a state the full build reads as its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import Project, bflow_env, settle
from test_fastpath_proof import base_and_delta

from buildflow.fastpath import proof as fastproof


FLOWFILE = """\
[tasks.copy]
foreach = "src/*.txt"
cmd = "tr a-z A-Z < {item} > {output} && echo {stem} >> runs.log"
outputs = ["out/{stem}.out"]

[tasks.join]
cmd = "cat {inputs} > {output} && echo join >> runs.log"
inputs = ["out/a.out", "out/b.out"]
outputs = ["all.out"]

[tasks.count]
cmd = "wc -l < {input} > {output} && echo count >> runs.log"
inputs = ["all.out"]
outputs = ["count.out"]

[tasks.lint]
cmd = "grep -q . {inputs} && echo lint >> runs.log"
inputs = ["src/c.txt"]
"""


def _setup(project: Project, flowfile: str = FLOWFILE) -> None:
    project.flowfile(flowfile)
    for name in "abc":
        project.write(f"src/{name}.txt", f"{name}\n")
    settle(project.root / "src", project.root / "src" / "c.txt")
    project.build()
    project.build()  # the first build made the cache dir: this one can leave a proof
    assert fastproof.check(file=None, cwd=str(project.root), targets=[], overrides={})



def _full_build_runs_nothing(project: Project) -> None:
    """Read what the incremental build left as the full build reads it."""
    (project.root / ".bflow" / fastproof.FILE_NAME).unlink()
    assert project.build("-v") == []
    status = project.bflow("status", "--check")
    assert status.returncode == 0, status.stdout


def test_an_edit_runs_what_it_reaches_and_no_more(project: Project) -> None:
    _setup(project)
    project.write("src/a.txt", "aa\n")
    result = project.bflow()
    assert sorted(project.runs()[6:]) == ["a", "count", "join"]
    assert result.stdout.splitlines()[-1].startswith("bflow: 3 ran, 3 up to date in ")
    assert project.read("all.out") == "AA\nB\n"
    assert project.read("count.out").strip() == "2"
    assert project.build() == []
    _full_build_runs_nothing(project)


SAVED_DURING_THE_BUILD = """\
[tasks.first]
cmd = "cat t.txt > {output} && echo first >> runs.log && if [ -e save-now ]; then echo s2 > shared.txt; fi"
inputs = ["t.txt"]
outputs = ["out/first"]

[tasks.second]
cmd = "cat {inputs} > {output} && echo second >> runs.log"
inputs = ["out/first", "shared.txt"]
outputs = ["out/second"]

[tasks.other]
cmd = "cat shared.txt > {output} && echo other >> runs.log"
inputs = ["shared.txt"]
outputs = ["out/other"]
"""


def test_a_file_saved_during_the_part_that_a_task_outside_it_reads_voids_the_proof(
        project: Project) -> None:
    # `first` stands for the user saving shared.txt while the part runs: the proof took its
    # new hash and vouched for `other` by it, saying "nothing to do" for good
    project.flowfile(SAVED_DURING_THE_BUILD)
    project.write("t.txt", "t\n")
    project.write("shared.txt", "s1\n")
    settle(project.root / "t.txt", project.root / "shared.txt")
    assert sorted(project.build()) == ["first", "other", "second"]
    assert project.build() == []
    assert fastproof.check(file=None, cwd=str(project.root), targets=[], overrides={})
    project.write("save-now", "")
    project.write("t.txt", "t2\n")
    assert project.build() == ["first", "second"]  # the part, from the proof
    assert project.build() == ["other"]
    assert project.read("out/other") == "s2\n"
    assert project.build() == []


def test_an_edit_keeps_the_proof_and_writes_a_delta_after_it(project: Project) -> None:
    _setup(project)
    proof = project.root / ".bflow" / fastproof.FILE_NAME
    base, delta = base_and_delta(proof)
    assert delta == b""
    project.write("src/a.txt", "aa\n")
    assert sorted(project.build()) == ["a", "count", "join"]
    kept, delta = base_and_delta(proof)
    assert kept == base and delta != b""
    project.write("src/b.txt", "bb\n")  # the next part starts from the proof and its delta
    assert sorted(project.build()) == ["b", "count", "join"]
    assert project.read("all.out") == "AA\nBB\n"
    assert project.build() == []
    _full_build_runs_nothing(project)


def test_a_torn_delta_sends_the_build_the_full_way(project: Project) -> None:
    _setup(project)
    project.write("src/a.txt", "aa\n")
    assert sorted(project.build()) == ["a", "count", "join"]
    proof = project.root / ".bflow" / fastproof.FILE_NAME
    proof.write_bytes(proof.read_bytes()[:-3])  # a kill in the middle of writing it
    assert fastproof.check(file=None, cwd=str(project.root), targets=[], overrides={}) is None
    assert project.build() == []  # the full way: nothing to run
    assert base_and_delta(proof)[1] == b""  # and the proof written whole again
    assert fastproof.check(file=None, cwd=str(project.root), targets=[], overrides={}) == 6


def test_the_summary_matches_the_full_build(project: Project) -> None:
    _setup(project)
    project.write("src/b.txt", "bb\n")
    incremental = project.bflow("-j2").stdout.splitlines()[-1]
    project.write("src/b.txt", "b\n")
    (project.root / ".bflow" / fastproof.FILE_NAME).unlink()
    full = project.bflow("-j2").stdout.splitlines()[-1]
    project.write("src/b.txt", "bb\n")
    again = project.bflow("-j2").stdout.splitlines()[-1]
    assert full.rsplit(" in ", 1)[0] == incremental.rsplit(" in ", 1)[0]
    assert again.rsplit(" in ", 1)[0] == incremental.rsplit(" in ", 1)[0]


def test_an_identical_output_cuts_off_what_comes_after(project: Project) -> None:
    _setup(project)
    project.write("src/a.txt", "A\n")  # upper-cased, out/a.out comes out the same
    assert project.build() == ["a"]
    assert project.build() == []
    _full_build_runs_nothing(project)


def test_a_tampered_or_deleted_output_reruns_its_task(project: Project) -> None:
    _setup(project)
    project.write("all.out", "tampered\n")
    assert project.build() == ["join"]  # count.out comes out the same: cut off
    assert project.read("all.out") == "A\nB\n"
    (project.root / "count.out").unlink()
    assert project.build() == ["count"]
    _full_build_runs_nothing(project)


def test_a_file_still_too_recent_to_trust_stays_untrusted_across_a_part(
        project: Project) -> None:
    # src/a.txt gets an mtime in the future: its stat can never vouch for its content. The
    # check re-hashes it on every build; an incremental build of a part that reads it must
    # not leave the proof trusting that stat, or a same-size edit that keeps the mtime would
    # go unseen.
    _setup(project)
    source = project.root / "src" / "a.txt"
    future = time.time_ns() + 3600 * 10**9
    os.utime(source, ns=(future, future))
    assert project.build() == []  # the same content
    (project.root / "out" / "a.out").unlink()
    assert project.build() == ["a"]  # the part: copy:a (rewrites out/a.out alike) and after
    source.write_text("x\n")
    os.utime(source, ns=(future, future))
    assert project.build() == ["a", "join", "count"]
    assert project.read("all.out") == "X\nB\n"


def test_a_task_without_outputs_reruns_on_its_input(project: Project) -> None:
    _setup(project)
    project.write("src/c.txt", "cc\n")
    assert sorted(project.build()) == ["c", "lint"]
    _full_build_runs_nothing(project)


def test_a_failure_removes_the_proof_and_the_next_build_resumes(project: Project) -> None:
    _setup(project)
    project.write("src/c.txt", "\n")  # grep -q . fails on an empty line
    assert sorted(project.build(status=1)) == ["c"]
    assert not (project.root / ".bflow" / fastproof.FILE_NAME).exists()
    assert project.build(status=1) == []  # the full build: lint is still stale, fails again
    project.write("src/c.txt", "c\n")
    assert sorted(project.build()) == ["c", "lint"]
    assert project.build() == []


def test_keep_going_builds_the_rest_of_the_part(project: Project) -> None:
    _setup(project)
    project.write("src/c.txt", "\n")
    project.write("src/a.txt", "aa\n")
    assert sorted(project.build("-k", status=1)) == ["a", "c", "count", "join"]
    assert project.read("all.out") == "AA\nB\n"


def test_the_log_of_a_task_run_incrementally_is_saved(project: Project) -> None:
    _setup(project, FLOWFILE.replace("echo count >> runs.log",
                                     "echo count >> runs.log && echo counted"))
    project.write("src/b.txt", "bb\n")
    assert "count" in project.build()
    log = project.bflow("log", "count")
    assert log.returncode == 0 and "counted" in log.stdout


def test_a_changed_depfile_input_reruns_and_new_depfile_inputs_drop_the_proof(
        project: Project) -> None:
    project.flowfile("""\
[tasks.gen]
cmd = "cat {input} $(cat list) > {output} && printf 'gen.out: %s\\\\n' \\"$(cat list)\\" > gen.d && echo gen >> runs.log"
inputs = ["src/a.txt", "list"]
outputs = ["gen.out"]
depfile = "gen.d"
""")
    project.write("src/a.txt", "a\n")
    project.write("one.h", "one\n")
    project.write("two.h", "two\n")
    project.write("list", "one.h")
    settle(project.root / "src", project.root / "list")
    assert project.build() == ["gen"]
    assert project.build() == []
    project.write_before_the_run("one.h", "ONE\n")
    assert project.build() == ["gen"]  # through the proof: one.h is a depfile input of gen
    assert (project.root / ".bflow" / fastproof.FILE_NAME).exists()
    assert project.read("gen.out") == "a\nONE\n"
    project.write("list", "two.h")
    assert project.build() == ["gen"]
    assert not (project.root / ".bflow" / fastproof.FILE_NAME).exists()  # gen.d names two.h now
    project.write_before_the_run("two.h", "TWO\n")
    assert project.build() == ["gen"]
    assert project.read("gen.out") == "a\nTWO\n"


def test_a_task_waiting_on_a_group_goes_the_full_way(project: Project) -> None:
    _setup(project, FLOWFILE + """
[tasks.all]
deps = ["count", "lint"]

[tasks.after]
cmd = "tr 0-9 a-j < count.out > after.out && echo after >> runs.log"
deps = ["all"]
outputs = ["after.out"]
""")
    proof = fastproof.open_proof(file=None, cwd=str(project.root), targets=[], overrides={})
    assert proof is not None
    proof.close()
    assert proof.graph is None  # a part without `all` would not make `after` wait for it
    project.write("src/a.txt", "aaa\n")
    assert sorted(project.build()) == ["a", "count", "join"]


def test_an_interrupted_incremental_build_resumes(project: Project) -> None:
    # The same action, slow or not; `started` says that the sleep is running.
    slow = "if [ -e slow ]; then touch started; sleep 30; fi; wc -l"
    _setup(project, FLOWFILE.replace('cmd = "wc -l', f'cmd = "{slow}'))
    project.write("src/a.txt", "aa\n")
    project.write("slow", "")
    proc = subprocess.Popen([sys.executable, "-m", "buildflow"], cwd=project.root,
                            env=bflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (project.root / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert sorted(project.runs()[6:]) == ["a", "join"]
    assert not (project.root / ".bflow" / fastproof.FILE_NAME).exists()
    (project.root / "slow").unlink()
    assert project.build() == ["count"]  # a and join are recorded: only count runs again
    assert project.read("count.out").strip() == "2"
    assert project.read("all.out") == "AA\nB\n"
