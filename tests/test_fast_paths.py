"""The shortcuts that make large no-op builds fast give the same answers as the slow paths:
the project cache after a clean build, the per-build stat memo, settled racy entries, the
fresh fast path of staleness, and the compacted state. Runs are counted from the commands'
log file."""

from __future__ import annotations

import marshal
import struct
from pathlib import Path

import xxhash
from conftest import Project, settle
from hypothesis import given, settings
from hypothesis import strategies as st
from memfs import MemoryFileSystem
from test_fastpath_projectcache import FLOWFILE

from buildflow.hashing import MISSING, UNKNOWN, Hasher, StatEntry, StatRow
from buildflow.model import Task
from buildflow.staleness import action_of, decide
from buildflow.frames import GENERATION_HEAD
from buildflow.state import HEADER, State, TaskRecord


def test_the_first_build_after_a_clean_stores_the_project_cache(project: Project) -> None:
    project.flowfile(FLOWFILE)
    project.write("src/a.txt", "a\n")
    settle(project.root / "src")
    assert project.bflow().returncode == 0
    assert sorted(project.runs()) == ["a", "join"]
    assert (project.root / ".bflow" / "flowcache").is_file()
    assert project.bflow("-n").returncode == 0
    assert project.bflow().returncode == 0
    assert sorted(project.runs()) == ["a", "join"]


def test_a_racy_file_is_settled_once_its_mtime_is_old_so_the_next_build_reads_nothing() -> None:
    fs = MemoryFileSystem()
    fs.write("out.txt", "built")  # hashed right after it was written: racy
    cache: dict[str, StatRow] = {}
    hasher = Hasher(fs, cache)  # type: ignore[arg-type]
    digest = hasher.file_hash("out.txt")
    hasher.settle_racy()  # still within the window: nothing to do yet
    assert fs.reads == ["out.txt"]
    fs.tick(2)
    hasher.settle_racy()
    assert fs.reads == ["out.txt", "out.txt"]
    assert [path for path, _ in hasher.take_changes()] == ["out.txt"]
    assert Hasher(fs, cache).file_hash("out.txt") == digest  # type: ignore[arg-type]
    assert fs.reads == ["out.txt", "out.txt"]  # the next build trusts the stat


def test_settling_after_each_task_takes_the_oldest_racy_files_only() -> None:
    fs = MemoryFileSystem()
    hasher = Hasher(fs, {})  # type: ignore[arg-type]
    fs.write("first.out", "1")
    hasher.file_hash("first.out")
    fs.tick(0.06)
    fs.write("second.out", "2")
    hasher.file_hash("second.out")
    fs.tick(0.06)  # first.out's mtime is 0.12 s old, past the window; second.out's 0.06 s
    hasher.settle_racy(oldest_only=True)
    assert fs.reads == ["first.out", "second.out", "first.out"]
    hasher.settle_racy(oldest_only=True)  # second.out is not due: nothing read
    assert len(fs.reads) == 3
    fs.tick(0.1)
    hasher.settle_racy()
    assert fs.reads == ["first.out", "second.out", "first.out", "second.out"]
    assert sorted(path for path, _ in hasher.take_changes()) == ["first.out", "second.out"]


def test_a_file_rewritten_before_settling_gets_its_new_hash() -> None:
    fs = MemoryFileSystem()
    fs.write("out.txt", "one", inode=3)
    cache: dict[str, StatRow] = {}
    hasher = Hasher(fs, cache)  # type: ignore[arg-type]
    hasher.file_hash("out.txt")
    fs.write("out.txt", "two", mtime_ns=fs.clock_ns, inode=3)  # same stat, same tick
    fs.tick(2)
    hasher.settle_racy()
    assert cache["out.txt"][3] == xxhash.xxh3_128_hexdigest(b"two")


def test_within_a_build_a_path_is_stated_once_until_a_command_runs() -> None:
    fs = MemoryFileSystem()
    fs.write("a.txt", "one")
    hasher = Hasher(fs, {})  # type: ignore[arg-type]
    first = hasher.file_hash("a.txt")
    fs.tick(2)
    fs.write("a.txt", "two")
    assert hasher.file_hash("a.txt") == first  # remembered for this build
    hasher.forget_seen()  # a command ran: it may have written anything
    assert hasher.file_hash("a.txt") == xxhash.xxh3_128_hexdigest(b"two")


PATHS = ["a", "b", "c", "d", "x", "y"]
CHANGES = st.sampled_from(["input added", "input dropped", "input changed", "depfile unknown",
                           "depfile changed", "output changed", "output dropped", "action",
                           "always", "file removed", "recorded missing"])


@settings(max_examples=300, deadline=None)
@given(inputs=st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3),
       outputs=st.lists(st.sampled_from(["x", "y"]), unique=True, max_size=2),
       depfile=st.lists(st.sampled_from(["a", "d"]), unique=True, max_size=2),
       changes=st.lists(st.tuples(CHANGES, st.sampled_from(PATHS)), max_size=2))
def test_stopping_at_the_first_reason_gives_the_first_reason_of_the_full_explanation(
        inputs: list[str], outputs: list[str], depfile: list[str],
        changes: list[tuple[str, str]]) -> None:
    """decide() stopping at the first reason against every reason it finds: a record of a run
    that matches the disk, then up to two things changed (or none, the fresh case)."""
    fs = MemoryFileSystem()
    for path in PATHS:
        fs.write(path, f"content of {path}")
    task = Task(name="t", base="t", commands=("make it",), inputs=tuple(inputs),
                outputs=tuple(outputs))
    hasher = Hasher(fs, {})  # type: ignore[arg-type]
    digest = {p: hasher.file_hash(p) for p in PATHS}
    action = action_of(task)
    recorded_inputs = {p: digest[p] for p in inputs}
    recorded_depfile = {p: digest[p] for p in depfile}
    recorded_outputs = {p: digest[p] for p in outputs}
    for change, path in changes:
        if change == "input added":
            recorded_inputs.pop(path, None)
        elif change == "input dropped":
            recorded_inputs[path] = digest[path]
        elif change == "input changed" and path in recorded_inputs:
            recorded_inputs[path] = "0" * 32
        elif change == "depfile unknown":
            recorded_depfile[path] = UNKNOWN
        elif change == "depfile changed":
            recorded_depfile[path] = "1" * 32
        elif change == "output changed" and path in recorded_outputs:
            recorded_outputs[path] = "2" * 32
        elif change == "output dropped":
            recorded_outputs.pop(path, None)
        elif change == "action":
            action = (("other",),) + action[1:]
        elif change == "always":
            task = task._replace(always=True)
        elif change == "file removed":
            fs.remove(path)
        elif change == "recorded missing":  # it was missing at the run, and still is
            fs.remove(path)
            for recorded in (recorded_inputs, recorded_depfile, recorded_outputs):
                if path in recorded:
                    recorded[path] = MISSING
    record = TaskRecord(action, recorded_inputs, recorded_depfile, recorded_outputs, 0.0)
    hasher = Hasher(fs, {})  # type: ignore[arg-type]
    decision = decide(task, record, hasher.file_hash, explain=False)
    full = decide(task, record, hasher.file_hash, explain=True)
    assert bool(decision.reasons) == bool(full.reasons)
    assert decision.reasons == full.reasons[:len(decision.reasons)]
    if not changes and (inputs or outputs):
        assert decision.reasons == []
        assert decision.as_record() == record._replace(duration=0.0)


def _record(n: int) -> TaskRecord:
    return TaskRecord(("cmd",), {f"src/{n}": f"h{n}"}, {}, {f"out/{n}": f"h{n}"}, 0.1)


def snapshot_parts(data: bytes) -> list[str]:
    """The kind of each record of a state file after its generation: a snapshot is its first
    part ("S") and the parts after it ("P")."""
    kinds, offset = [], GENERATION_HEAD
    while offset < len(data):
        (length,) = struct.unpack_from("<I", data, offset)
        kinds.append(marshal.loads(data[offset + 8:offset + 8 + length])[0])
        offset += 8 + length
    return kinds


def test_a_long_tail_of_records_is_compacted_into_one_snapshot(
        tmp_path: Path) -> None:
    path = tmp_path / "state"
    state = State(path).load()
    for n in range(100):  # a first full build: one record per task
        state.record_success(f"t{n}", _record(n), [(f"out/{n}", StatEntry(1, 2, 3, f"h{n}", 4))])
    appended = path.stat().st_size
    state.close()
    loaded = State(path).load()
    assert loaded.tasks == {f"t{n}": _record(n) for n in range(100)}
    assert loaded.stats["out/7"] == (1, 2, 3, "h7", 4)
    data = path.read_bytes()
    assert snapshot_parts(data) == ["S", "P"] and len(data) < appended  # not 100 records


def test_a_short_tail_on_a_large_state_is_left_to_grow(tmp_path: Path) -> None:
    path = tmp_path / "state"
    state = State(path).load()
    for n in range(1000):
        state.record_success(f"t{n}", _record(n), [])
    state.close()
    snapshot = path.read_bytes()
    again = State(path).load()
    for n in range(70):  # more than the minimum, but few for 1,000 tasks
        again.record_success(f"t{n}", _record(n + 1), [])
    again.close()
    data = path.read_bytes()
    assert data.startswith(HEADER) and data[:len(snapshot)] == snapshot  # appended only
    assert State(path).load().tasks["t3"] == _record(4)


def test_one_record_refreshing_many_stat_entries_is_compacted_too(tmp_path: Path) -> None:
    path = tmp_path / "state"
    state = State(path).load()
    for n in range(1000):
        state.record_success(f"t{n}", _record(n), [])
    state.close()
    again = State(path).load()
    again.record_stats([(f"src/{n}", StatEntry(1, 2, 3, f"h{n}", 4)) for n in range(500)])
    again.close()  # every source touched: one record, but 500 entries for each load to replay
    assert snapshot_parts(path.read_bytes()) == ["S", "P"]  # the records, the stat entries
    assert State(path).load().stats["src/9"] == (1, 2, 3, "h9", 4)
