"""The no-op fast path: a proof left by a build is believed only while a full build would run
nothing. Each test makes one kind of change and checks both sides: what `fastproof.check` says
of the proof, and what the real `bflow` then runs (counted from the commands' log file)."""

from __future__ import annotations

import fcntl
import marshal
import os
import time
from pathlib import Path

import pytest
from conftest import Project, children, settle

from buildflow import racy
from buildflow.fastpath import proof as fastproof, statscan


FLOWFILE = """\
[vars]
GREETING = "hi"

[tasks.copy]
foreach = "src/*.txt"
cmd = "cp {item} {output} && echo {stem} >> runs.log"
outputs = ["out/{stem}.out"]

[tasks.join]
cmd = "cat {inputs} > {output} && echo join >> runs.log"
inputs = ["out/a.out", "out/b.out"]
outputs = ["all.out"]

[tasks.greet]
cmd = "echo {GREETING} > {output} && echo greet >> runs.log"
inputs = ["all.out"]
outputs = ["greet.out"]
"""
TASKS = 4  # copy:a, copy:b, join, greet


def _setup(project: Project, flowfile: str = FLOWFILE) -> None:
    project.flowfile(flowfile)
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    settle(project.root / "src", project.root / "src" / "b.txt")
    project.build()
    settle(project.root / "out", project.root / "greet.out")
    _full_noop(project)  # nothing runs but a task that always does


def _full_noop(project: Project) -> list[str]:
    """A build the full way, which writes the proof whole: once every file is settled, one
    that trusts every stat. (Through the proof, a no-op would hash again the outputs the
    first build wrote in its last moments, and write the proof again only when there are
    more than REWRITE_MIN of them: how many there are depends on the machine's speed.)"""
    drop_proofs(project.root)
    return project.build()


def drop_proofs(root: Path) -> None:
    """Remove every proof (each kind of build has its own), so the next build goes the full
    way; the project parts stay, as a failed build leaves them."""
    for path in (root / ".bflow").glob(fastproof.FILE_NAME + "*"):
        if "." not in path.name:
            path.unlink()



def _holds(project: Project, *targets: str, **overrides: str) -> bool:
    count = fastproof.check(file=None, cwd=str(project.root), targets=list(targets),
                           overrides=overrides)
    return count is not None


def test_a_noop_is_answered_from_the_proof(project: Project) -> None:
    _setup(project)
    assert fastproof.check(file=None, cwd=str(project.root), targets=[], overrides={}) == TASKS
    result = project.bflow()
    assert result.stdout.startswith(f"bflow: 0 ran, {TASKS} up to date in ")
    assert sorted(project.runs()) == ["a", "b", "greet", "join"]


def test_the_fast_summary_reads_as_the_full_one(project: Project) -> None:
    _setup(project)
    fast = project.bflow("-j2").stdout
    full = project.bflow("-v").stdout.splitlines()[-1]  # -v always goes the full way
    assert fast.startswith("bflow: 0 ran")
    assert fast.rsplit(" in ", 1)[0] == full.rsplit(" in ", 1)[0]


def test_a_touched_source_keeps_the_proof_and_runs_nothing(project: Project) -> None:
    _setup(project)
    later = time.time_ns()
    os.utime(project.root / "src" / "a.txt", ns=(later, later))
    assert _holds(project)
    assert project.build() == []


def test_an_edited_source_voids_the_proof(project: Project) -> None:
    _setup(project)
    project.write("src/a.txt", "A\n")
    assert not _holds(project)
    assert project.build() == ["a", "join", "greet"]
    assert project.read("greet.out") == "hi\n"
    assert project.build() == []


def test_a_same_size_edit_in_the_racy_window_is_not_trusted(project: Project) -> None:
    _setup(project)
    source = project.root / "src" / "a.txt"
    future = time.time_ns() + 3600 * 10**9  # an mtime the hash can never be safely after
    os.utime(source, ns=(future, future))
    assert project.build() == []
    assert _holds(project)  # hashed again, same content
    source.write_text("z\n")  # same size, same inode, and the mtime put back
    os.utime(source, ns=(future, future))
    assert not _holds(project)
    assert project.build() == ["a", "join", "greet"]


def test_an_edited_or_deleted_output_voids_the_proof(project: Project) -> None:
    _setup(project)
    project.write("all.out", "tampered\n")
    assert not _holds(project)
    assert project.build() == ["join"]
    (project.root / "greet.out").unlink()
    assert not _holds(project)
    assert project.build() == ["greet"]


def test_a_new_file_under_a_glob_voids_the_proof(project: Project) -> None:
    _setup(project)
    project.write("src/c.txt", "c\n")
    assert not _holds(project)
    assert project.build() == ["c"]


def test_a_changed_flowfile_voids_the_proof(project: Project) -> None:
    _setup(project)
    project.flowfile(FLOWFILE.replace('GREETING = "hi"', 'GREETING = "hello"'))
    assert not _holds(project)
    assert project.build() == ["greet"]
    assert project.read("greet.out") == "hello\n"


def test_overrides_and_targets_are_part_of_the_proof(project: Project) -> None:
    _setup(project)
    assert not _holds(project, GREETING="hey")
    assert not _holds(project, "join")
    assert project.build("GREETING=hey") == ["greet"]
    assert project.build("GREETING=hey") == []
    assert _holds(project, GREETING="hey")
    assert not _holds(project)  # the default build's greet.out is gone
    assert project.build() == ["greet"]


def test_a_record_written_by_another_build_voids_the_proof(project: Project) -> None:
    project.flowfile(FLOWFILE + """
[tasks.other]
cmd = "echo other >> runs.log"
inputs = ["src/b.txt"]
""")
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    settle(project.root / "src", project.root / "src" / "b.txt")
    project.build("greet")
    settle(project.root / "greet.out")
    project.build("greet")
    assert _holds(project, "greet")
    assert project.build("other") == ["other"]
    assert not _holds(project, "greet")  # the state file changed under it
    assert project.build("greet") == []


def test_a_proof_is_not_used_while_another_build_holds_the_lock(project: Project) -> None:
    _setup(project)
    fd = os.open(project.root / ".bflow" / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert not _holds(project)
        result = project.bflow("--lock-timeout", "0.2")
        assert result.returncode == 1  # the full path waited for the lock, and said so
        assert "holds" in result.stderr
    finally:
        os.close(fd)
    assert _holds(project)


def test_tasks_that_always_run_leave_no_proof(project: Project) -> None:
    _setup(project, FLOWFILE + """
[tasks.stamp]
cmd = "echo stamp >> runs.log"
always = true
""")
    assert not (project.root / ".bflow" / fastproof.FILE_NAME).exists()
    assert project.build() == ["stamp"]


def test_a_changed_depfile_input_voids_the_proof(project: Project) -> None:
    project.flowfile("""\
[tasks.gen]
cmd = "cat {input} extra.h > {output} && echo 'gen.out: extra.h' > gen.d && echo gen >> runs.log"
inputs = ["src/a.txt"]
outputs = ["gen.out"]
depfile = "gen.d"
""")
    project.write("src/a.txt", "a\n")
    project.write("extra.h", "one\n")
    settle(project.root / "src", project.root / "extra.h")
    assert project.build() == ["gen"]
    settle(project.root / "gen.out")
    assert project.build() == []
    assert _holds(project)
    project.write("extra.h", "two\n")
    assert not _holds(project)
    assert project.build() == ["gen"]


def test_a_damaged_proof_falls_back_to_a_full_build(project: Project) -> None:
    _setup(project)
    proof = project.root / ".bflow" / fastproof.FILE_NAME
    for damage in (proof.read_bytes()[:100], b"", b"\x00garbage"):
        proof.write_bytes(damage)
        assert not _holds(project)
        assert project.build() == []
        assert _holds(project)  # the full build wrote a good proof again


def test_rows_that_do_not_decode_fall_back_to_a_full_build(project: Project) -> None:
    # A proof whose container reads well but whose chunk of rows does not: found only when
    # the stats are compared, and then the build goes the full way.
    _setup(project)
    proof = project.root / ".bflow" / fastproof.FILE_NAME
    parts = list(marshal.loads(proof.read_bytes()[8:]))
    parts[5] = [b"\x00garbage"]  # the rows' one chunk
    base = marshal.dumps(tuple(parts))
    proof.write_bytes(b"".join(fastproof.sized(base)))
    assert not _holds(project)
    assert project.build() == []
    assert _holds(project)  # the full build wrote a good proof again
    project.write("src/b.txt", "B\n")
    assert project.build() == ["b", "join", "greet"]


def test_the_project_part_is_written_again_only_when_the_project_changes(
        project: Project) -> None:
    _setup(project)
    part = project.root / ".bflow" / (fastproof.FILE_NAME + fastproof.PROJECT_PART)
    written = part.stat().st_ino, part.stat().st_mtime_ns
    project.write("src/a.txt", "A\n")
    assert project.build() == ["a", "join", "greet"]
    (project.root / ".bflow" / fastproof.FILE_NAME).unlink()
    assert project.build() == []  # the full way, same project: the part is kept
    assert (part.stat().st_ino, part.stat().st_mtime_ns) == written
    assert _holds(project)
    project.flowfile(FLOWFILE.replace('GREETING = "hi"', 'GREETING = "hello"'))
    assert project.build() == ["greet"]
    assert (part.stat().st_ino, part.stat().st_mtime_ns) != written


def test_a_damaged_project_part_falls_back_to_a_full_build(project: Project) -> None:
    _setup(project)
    part = project.root / ".bflow" / (fastproof.FILE_NAME + fastproof.PROJECT_PART)
    good = part.read_bytes()
    for damage in (good[:100], b"", b"\xff" * 16 + good[16:]):
        part.write_bytes(damage)
        assert not _holds(project)
        assert project.build() == []
        assert _holds(project)


@pytest.mark.parametrize("sources", [2, 200])
def test_a_proof_damaged_in_place_sends_builds_the_full_way(project: Project,
                                                            sources: int) -> None:
    # A stored path overwritten with another, the size and mtime kept (bit rot): a proof
    # that named `src/a.txt` twice never checked `src/b.txt`, and said "nothing to do" after
    # it changed; NUL bytes there were an internal error, or a build waiting for ever for the
    # lock its own process held.
    for n in range(2, sources):
        project.write(f"src/x{n:03d}.txt", f"{n}\n")
    _setup(project)
    for part in (fastproof.FILE_NAME + fastproof.PROJECT_PART, fastproof.FILE_NAME):
        path = project.root / ".bflow" / part
        spots = [i for i in range(len(path.read_bytes()))
                 if path.read_bytes().startswith(b"src/b.txt", i)]
        for n, spot in enumerate(spots):
            for damage in (b"src/a.txt", bytes(9)):
                _full_noop(project)  # a good proof again
                st = path.stat()
                with open(path, "r+b") as handle:
                    handle.seek(spot)
                    handle.write(damage)
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
                content = f"B{n}{damage[:1]!r}\n"
                project.write("src/b.txt", content)
                result = project.bflow("--plain", timeout=60)
                assert result.returncode == 0, (part, spot, result.stdout + result.stderr)
                assert project.read("all.out") == "a\n" + content, (part, spot)
                assert project.build() == []


def test_a_damaged_task_table_sends_an_edit_the_full_way(project: Project) -> None:
    # The table is read only by a build with changes: a no-op does not notice the damage,
    # done in place with the file's size and mtime kept, so the proof still names the part.
    _setup(project)
    part = project.root / ".bflow" / (fastproof.FILE_NAME + fastproof.PROJECT_PART)
    before = part.stat()
    with open(part, "r+b") as handle:
        handle.seek(-20, os.SEEK_END)
        handle.write(bytes(20))
    os.utime(part, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert _holds(project)
    project.write("src/b.txt", "B\n")
    assert project.build() == ["b", "join", "greet"]
    assert project.read("all.out") == "a\nB\n"
    assert part.read_bytes()[-20:] != bytes(20)  # the full way wrote the part again, whole
    settle(project.root / "greet.out")
    assert project.build() == []
    assert _holds(project)
    project.write("src/a.txt", "A\n")
    assert project.build() == ["a", "join", "greet"]
    assert project.read("all.out") == "A\nB\n"


def test_no_proof_is_left_over_a_torn_state_tail(project: Project,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from buildflow import engine
    from buildflow import fastpath
    from buildflow.fastpath import record

    _setup(project)
    monkeypatch.chdir(project.root)
    through_cache = fastpath.load(file=None, overrides={})  # as the CLI loads it
    loaded = through_cache.project
    state = engine.open_state(loaded)
    with open(project.root / ".bflow" / "state", "ab") as log:
        log.write(b"\x07\x00\x00\x00torn")  # a record cut short by a kill
    names = engine.selected(loaded)
    record.record(loaded, through_cache.basis, state, names, [], str(project.root))
    assert not _holds(project)  # an incremental build would append after the torn bytes
    state = engine.open_state(loaded)  # good records end before the torn ones
    record.record(loaded, through_cache.basis, state, names, [], str(project.root))
    assert not _holds(project)
    assert project.build("-v") == []  # the full way truncates the tail as it appends


def test_each_kind_of_build_keeps_its_own_proof(project: Project) -> None:
    _setup(project)
    assert project.build("join") == []  # the full way, recording nothing
    assert _holds(project, "join") and _holds(project)  # both stand: the state is unchanged
    assert project.build("GREETING=hey") == ["greet"]
    assert _holds(project, GREETING="hey")
    assert not _holds(project, "join") and not _holds(project)  # a record was written since
    assert project.build() == ["greet"]


def test_only_the_newest_proofs_are_kept(project: Project) -> None:
    _setup(project)
    for n in range(fastproof.MAX_PROOFS + 2):
        assert project.build(f"GREETING=v{n}") == ["greet"]
    proofs = [p for p in (project.root / ".bflow").glob("uptodate*") if "." not in p.name]
    assert len(proofs) == fastproof.MAX_PROOFS
    assert _holds(project, GREETING=f"v{fastproof.MAX_PROOFS + 1}")
    assert not _holds(project, GREETING="v0")


def test_refreshed_hashes_appended_to_the_state_keep_the_proof(project: Project) -> None:
    from buildflow.frames import encode

    _setup(project)
    state = project.root / ".bflow" / "state"
    with open(state, "ab") as log:
        log.write(encode(("H", [("src/zzz.txt", (1, 2, 3, "ab", 4))])))
    assert _holds(project)  # a stat-cache refresh changes no task's record
    with open(state, "ab") as log:
        log.write(encode(("X", ["greet"])))
    assert not _holds(project)  # a record was dropped: greet must run
    assert project.build() == ["greet"]
    with open(state, "ab") as log:
        log.write(b"\x07\x00\x00\x00torn")
    assert not _holds(project)


def test_a_state_written_over_in_place_voids_the_proof(project: Project) -> None:
    # the same size, inode and generation: the proof said "up to date" for good, while the
    # full decision dropped the damaged records and found their tasks stale
    _setup(project)
    state = project.root / ".bflow" / "state"
    with open(state, "r+b") as log:
        log.seek(state.stat().st_size - 40)
        log.write(bytes(40))  # a zeroed block, as a torn write may leave
    assert not _holds(project)
    would_run = project.bflow("status").stdout
    ran = project.build()
    assert all(f"{task}:" in would_run for task in ran), (ran, would_run)
    assert project.bflow("status", "--check").returncode == 0
    assert project.build() == [] and project.build() == []
    assert _holds(project)


def base_and_delta(proof: Path) -> tuple[bytes, bytes]:
    """The proof as written whole (its size field and base) and the delta after it."""
    data = proof.read_bytes()
    end = 8 + (int.from_bytes(data[:8], "little") & 0xFFFFFFFF)
    return data[:end], data[end:]


def test_an_update_rewrites_only_the_delta_until_it_grows_past_its_limit(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    _copies_built_and_settled(project, fastproof.REWRITE_MIN + 6)
    proof = project.root / ".bflow" / fastproof.FILE_NAME
    base, delta = base_and_delta(proof)
    assert delta == b""  # a full build writes the proof whole

    def touch_all(ns: int) -> None:
        for source in (project.root / "src").iterdir():
            os.utime(source, ns=(ns, ns))

    touch_all(time.time_ns() - 10 * racy.COARSE_WINDOW_NS)
    assert _holds(project)  # refreshed: only the delta is written
    kept, delta = base_and_delta(proof)
    assert kept == base and delta != b""
    assert _holds(project)  # the stats in the delta are trusted: nothing to write
    assert proof.read_bytes() == base + delta

    monkeypatch.setattr(fastproof, "DELTA_MAX_CHUNKS", 0)  # the one chunk of rows is one too many
    touch_all(time.time_ns() - 20 * racy.COARSE_WINDOW_NS)
    assert _holds(project)
    rewritten, delta = base_and_delta(proof)
    assert rewritten != base and delta == b""  # past the limit: written whole
    assert _holds(project)
    assert project.build() == []


COPY = """import shutil


def run(ctx):
    shutil.copyfile(ctx.item, ctx.outputs[0])
    with open("runs.log", "a") as log:
        log.write(ctx.item[len("src/"):-len(".txt")] + "\\n")
"""


def _copies_built_and_settled(project: Project, n: int) -> None:
    """A foreach copying `n` sources, built, then built again the full way once every file is
    safely old: the second build's proof trusts every stat. The copies are a Python task's:
    thousands of them as commands would spend seconds starting processes, which is not what
    these tests are about."""
    project.flowfile("""
        [tasks.copy]
        foreach = "src/*.txt"
        py = "tools.copy:run"
        outputs = ["out/{stem}.out"]
    """)
    project.write("tools/copy.py", COPY)
    for i in range(n):
        project.write(f"src/f{i:05d}.txt", f"{i}\n")
    last = f"f{n - 1:05d}"
    settle(project.root / "src", project.root / "src" / f"{last}.txt")
    assert len(project.build()) == n
    settle(project.root / "out", project.root / "out" / f"{last}.out")
    assert _full_noop(project) == []


def test_a_large_project_is_checked_in_two_processes(project: Project) -> None:
    # Enough paths for the stats to be split with a forked child: a change in the child's half
    # counts as one in the parent's does.
    n = statscan.PARALLEL_MIN_PATHS // 2 + 1
    _copies_built_and_settled(project, n)
    last = f"f{n - 1:05d}"
    assert _holds(project)

    os.utime(project.root / "src" / "f00000.txt")  # touched, same content: not a change
    (project.root / "out" / "f00001.out").unlink()  # the parent's half
    project.write(f"src/{last}.txt", "edited\n")  # the child's half
    before = children()
    proof = fastproof.open_proof(file=None, cwd=str(project.root), targets=[], overrides={})
    assert proof is not None
    try:
        changes = proof.changes()
        assert changes is not None
        assert {proof.paths[i] for i in changes} == {"out/f00001.out", f"src/{last}.txt"}
    finally:
        proof.close()
    assert children() <= before  # the child was reaped when the proof closed
    assert sorted(project.build()) == ["f00001", last]
    assert project.read(f"out/{last}.out") == "edited\n"
    assert project.build() == []


def test_the_proof_is_rewritten_for_many_touched_files_once_they_can_be_trusted(
        project: Project) -> None:
    _copies_built_and_settled(project, fastproof.REWRITE_MIN + 6)  # a proof trusting all
    proof = project.root / ".bflow" / fastproof.FILE_NAME
    written = proof.read_bytes()

    def touch_all(ns: int) -> None:
        for source in (project.root / "src").iterdir():
            os.utime(source, ns=(ns, ns))

    touch_all(time.time_ns())  # too recent to trust: hashed again next time anyway
    assert _holds(project)
    assert proof.read_bytes() == written
    touch_all(time.time_ns() - 10 * racy.COARSE_WINDOW_NS)  # safely old
    assert _holds(project)
    rewritten = proof.read_bytes()
    assert rewritten != written  # the new stats, so the next check hashes nothing
    assert _holds(project)
    assert proof.read_bytes() == rewritten
