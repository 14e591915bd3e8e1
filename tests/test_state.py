"""The run-record log: last record wins, torn tails, version changes, compaction, kills."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import bflow_env
from memfs import MemoryFileSystem

from buildflow.errors import BuildError
from buildflow.hashing import StatEntry
from buildflow.state import HEADER, Left, State, TaskRecord


def record(tag: str) -> TaskRecord:
    return TaskRecord(("cmd " + tag, "", "", "/bin/sh", ""), {"in": tag}, {"dep.h": tag},
                      {"out": tag}, 0.5)


def stat(n: int) -> list[tuple[str, StatEntry]]:
    return [(f"f{n}", StatEntry(n, n, n, f"h{n}", n))]


def load(path: Path) -> tuple[State, list[str]]:
    warnings: list[str] = []
    return State(path, warnings.append).load(), warnings


def test_records_round_trip_and_last_wins(tmp_path: Path) -> None:
    path = tmp_path / "state"
    state = State(path).load()
    state.record_success("a", record("1"), stat(1))
    state.record_success("b", record("2"), stat(2))
    state.record_success("a", record("3"), stat(3))
    state.forget(["b"])
    state.record_stats(stat(4))
    state.close()
    loaded, warnings = load(path)
    assert warnings == []
    assert loaded.tasks == {"a": record("3")}
    assert set(loaded.stats) == {"f1", "f2", "f3", "f4"}
    assert loaded.stats["f4"] == StatEntry(4, 4, 4, "h4", 4)


def test_what_a_failed_run_left_is_kept_until_a_success_or_forget(tmp_path: Path) -> None:
    path = tmp_path / "state"
    state = State(path).load()
    state.record_success("a", record("1"), stat(1))
    state.record_failure("a", Left({"out": "partial"}, "a.d"), stat(2))
    state.record_failure("b", Left({"out.b": "x"}, ""), [])
    state.record_failure("c", Left({}, ""), [])  # nothing known and nothing left: no record
    state.close()
    loaded, warnings = load(path)
    assert warnings == []
    left = {"a": Left({"out": "partial"}, "a.d"), "b": Left({"out.b": "x"}, "")}
    assert loaded.tasks == {} and loaded.left == left
    loaded.compact()
    again, _ = load(path)
    assert again.left == left
    again.record_success("a", record("3"), [])
    again.forget(["b"])
    again.close()
    last, _ = load(path)
    assert last.left == {} and list(last.tasks) == ["a"]


def test_a_failed_task_keeps_what_its_last_depfile_named(tmp_path: Path) -> None:
    path = tmp_path / "state"
    state = State(path).load()
    state.record_success("a", record("1"), [])
    assert state.depfile_named("a") == {"dep.h": "1"}
    state.record_failure("a", Left({}, "a.d", tuple(state.depfile_named("a"))), [])
    state.record_failure("b", Left({"out.b": "x"}, "b.d"), [])
    state._append(("F", "c", ({"out.c": "y"}, "c.d"), []))  # a pair, as before `named`
    state.close()
    loaded, warnings = load(path)
    assert warnings == []
    assert loaded.depfile_named("a") == ("dep.h",) and loaded.depfile_named("b") == ()
    assert loaded.left["c"] == Left({"out.c": "y"}, "c.d")
    loaded.compact()
    assert load(path)[0].depfile_named("a") == ("dep.h",)


def two_records(path: Path) -> int:
    """Log tasks a then b; return the offset where b's record starts."""
    state = State(path).load()
    state.record_success("a", record("1"), [])
    start_of_b = path.stat().st_size
    state.record_success("b", record("2"), [])
    state.close()
    return start_of_b


def assert_next_append_survives(loaded: State, path: Path) -> None:
    """Writing after a dropped record replaces it, so the new record survives the next load."""
    loaded.record_success("c", record("3"), [])
    loaded.close()
    assert load(path)[0].tasks == {"a": record("1"), "c": record("3")}


def test_every_torn_tail_is_dropped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "state"
    start_of_b = two_records(path)
    full = path.read_bytes()
    for cut in range(start_of_b, len(full)):
        path.write_bytes(full[:cut])
        loaded, warnings = load(path)
        assert loaded.tasks == {"a": record("1")}
        assert (len(warnings) == 1) == (cut > start_of_b), cut
        assert_next_append_survives(loaded, path)


def test_corrupt_record_in_the_middle_keeps_later_appends(tmp_path: Path) -> None:
    path = tmp_path / "state"
    start_of_b = two_records(path)
    data = bytearray(path.read_bytes())
    data[start_of_b + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    loaded, warnings = load(path)
    assert loaded.tasks == {"a": record("1")} and len(warnings) == 1
    assert_next_append_survives(loaded, path)


def test_another_version_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_bytes(b"BFLOWSTATE 0\nwhatever")
    loaded, warnings = load(path)
    assert loaded.tasks == {} and "another version's, or damaged at its start" in warnings[0]
    loaded.record_success("a", record("1"), [])
    loaded.close()
    assert path.read_bytes().startswith(HEADER)
    reloaded, warnings = load(path)
    assert reloaded.tasks == {"a": record("1")} and warnings == []


def test_header_torn_by_a_kill_is_an_empty_log(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_bytes(HEADER[:5])
    loaded, warnings = load(path)
    assert loaded.tasks == {} and warnings == []


def test_compaction_keeps_the_live_records_and_shrinks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state"
    state = State(path).load()
    for n in range(200):
        state.record_success(f"t{n % 3}", record(str(n)), stat(n))
    state.record_stats([("in", StatEntry(1, 1, 1, "h", 1))])
    appended = path.stat().st_size
    state.close()
    assert path.stat().st_size < appended / 2  # compacted on close
    loaded, warnings = load(path)
    assert warnings == []
    assert loaded.tasks == {"t0": record("198"), "t1": record("199"), "t2": record("197")}
    assert set(loaded.stats) == {"in"}  # entries of files no record names are dropped
    loaded.record_success("t9", record("x"), [])
    loaded.close()
    assert load(path)[0].tasks["t9"] == record("x")


def test_a_snapshot_in_parts_loads_whole(tmp_path: Path) -> None:
    from buildflow.state import SNAPSHOT_PART

    path = tmp_path / "state"
    state = State(path).load()
    count = 2 * SNAPSHOT_PART + 1  # three parts of records, then three of stat entries
    for n in range(count):  # each task reads its predecessor's output, as a chain does
        state.record_success(f"t{n}", TaskRecord(("c",), {f"o{n - 1}": "h"}, {},
                                                 {f"o{n}": "h"}, 1.0), stat(n))
        state.record_stats([(f"o{n}", StatEntry(n, n, n, "h", n))])
    state.compact()
    loaded, warnings = load(path)
    assert warnings == [] and loaded.tasks == state.tasks and loaded.stats == state.stats


WRITER = """
import sys
from pathlib import Path
from buildflow.state import State, TaskRecord
state = State(Path(sys.argv[1])).load()
n = len(state.tasks)
print("ready", flush=True)
while True:
    state.record_success(f"t{n}", TaskRecord(("c",), {"i": str(n)}, {}, {"o": "x" * 500}, 1.0),
                         [])
    n += 1
    if n % 150 == 0:
        state.close()  # reopen (and maybe compact) while being killed
"""


def test_sigkill_at_any_moment_leaves_a_loadable_log(tmp_path: Path) -> None:
    path = tmp_path / "state"
    seen = 0
    for delay in (0.05, 0.11, 0.17, 0.23, 0.31):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=bflow_env(),
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        time.sleep(delay)  # a kill point, not a wait for a condition
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        loaded, _ = load(path)
        # Records are consecutive from t0: nothing lost before the tail, nothing half-made.
        assert set(loaded.tasks) == {f"t{n}" for n in range(len(loaded.tasks))}
        assert all(r.inputs == {"i": name[1:]} for name, r in loaded.tasks.items())
        assert len(loaded.tasks) >= seen
        seen = len(loaded.tasks)
    assert seen > 0


def test_appending_after_close_keeps_every_record(tmp_path: Path) -> None:
    path = tmp_path / "state"
    state = State(path).load()
    state.record_success("a", record("1"), [])
    state.close()
    state.record_success("b", record("2"), [])
    state.close()
    loaded, warnings = load(path)
    assert loaded.tasks == {"a": record("1"), "b": record("2")} and warnings == []


def test_a_log_written_afresh_has_a_new_generation_and_an_older_one_gets_one(
        tmp_path: Path) -> None:
    from buildflow.frames import GENERATION_HEAD, generation_of

    path = tmp_path / "state"
    state = State(path).load()
    state.record_success("a", record("1"), stat(1))
    state.close()
    first = generation_of(path.read_bytes()[:GENERATION_HEAD])
    assert first is not None and State(path).load().generation == first
    again = State(path).load()
    again.compact()
    second = generation_of(path.read_bytes()[:GENERATION_HEAD])
    assert second not in (None, first)
    older = path.read_bytes()
    path.write_bytes(HEADER + older[GENERATION_HEAD:])  # as an older bflow wrote it
    loaded = State(path).load()
    assert loaded.generation is None and loaded.tasks == {"a": record("1")}
    loaded.close()  # gives it one
    assert generation_of(path.read_bytes()[:GENERATION_HEAD]) not in (None, first, second)
    assert State(path).load().tasks == {"a": record("1")}


def test_a_full_disk_fails_the_record_and_keeps_every_one_before_it() -> None:
    disk = MemoryFileSystem()
    state = State("state", fs=disk).load()
    state.record_success("a", record("1"), stat(1))
    disk.full = True
    with pytest.raises(BuildError, match="state: cannot write the build state: No space left"):
        state.record_success("b", record("2"), stat(2))
    assert "b" not in state.tasks  # a record not on disk is not believed either
    disk.full = False
    state.record_success("c", record("3"), stat(3))
    state.close()
    warnings: list[str] = []
    assert set(State("state", warnings.append, fs=disk).load().tasks) == {"a", "c"}
    assert warnings == []


def test_a_log_that_cannot_be_compacted_is_kept_with_a_warning() -> None:
    disk = MemoryFileSystem()
    warnings: list[str] = []
    state = State("state", warnings.append, fs=disk).load()
    state.record_success("a", record("1"), stat(1))
    state.close()
    before = disk.read("state")
    disk.full = True
    State("state", warnings.append, fs=disk).load().compact()
    assert disk.read("state") == before
    assert warnings == ["state: could not compact the build state: No space left on device"]
