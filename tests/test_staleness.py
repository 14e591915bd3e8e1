"""decide(): one typed reason per broken rule of SPEC §2, and nothing when all hold."""

from __future__ import annotations


from memfs import MemoryFileSystem

from buildflow.hashing import UNKNOWN, Hasher
from buildflow.model import Task
from buildflow.staleness import Decision, ReasonKind, decide
from buildflow.state import TaskRecord

TASK = Task(name="cc", base="cc", commands=("cc -c a.c -o a.o",), inputs=("a.c",),
            outputs=("a.o",), depfile="a.d")


def setup() -> tuple[MemoryFileSystem, Hasher, TaskRecord]:
    """A task that ran once: a.c -> a.o, with a.h named by its depfile."""
    fs = MemoryFileSystem()
    fs.write("a.c", "int main;")
    fs.write("a.h", "#define X")
    fs.write("a.o", "obj")
    hasher = Hasher(fs, {})
    first = decide(TASK, None, hasher.file_hash)
    record = TaskRecord(first.action, first.input_hashes, {"a.h": hasher.file_hash("a.h")},
                        {"a.o": hasher.file_hash("a.o")}, 0.1)
    return fs, hasher, record


def kinds(decision: Decision) -> list[ReasonKind]:
    return [reason.kind for reason in decision.reasons]


def again(fs: MemoryFileSystem, task: Task, record: TaskRecord, **kwargs: object) -> Decision:
    fs.tick(0.001)
    return decide(task, record, Hasher(fs, {}).file_hash, **kwargs)  # type: ignore[arg-type]


def test_never_run_and_up_to_date() -> None:
    fs, hasher, record = setup()
    assert kinds(decide(TASK, None, hasher.file_hash)) == [ReasonKind.NEVER_RUN]
    assert not again(fs, TASK, record).stale


def test_rewriting_identical_bytes_is_up_to_date() -> None:
    fs, _, record = setup()
    for path in ("a.c", "a.h", "a.o"):
        fs.write(path, fs.files[path][0])
    assert not again(fs, TASK, record).stale


def test_each_action_part_is_named() -> None:
    fs, _, record = setup()
    changes = {"commands": {"commands": ("cc -O2 -c a.c -o a.o",)},
               "env": {"env": (("CFLAGS", "-g"),)}, "cwd": {"cwd": "sub"},
               "shell": {"shell": "/bin/bash"}, "depfile": {"depfile": "b.d"}}
    for part, change in changes.items():
        reasons = again(fs, TASK._replace(**change), record).reasons
        assert [(r.kind, r.subject) for r in reasons] == [(ReasonKind.ACTION_CHANGED, part)]


def test_input_set_and_contents() -> None:
    fs, _, record = setup()
    fs.write("b.c", "x")
    added = again(fs, TASK._replace(inputs=("a.c", "b.c")), record)
    assert [(r.kind, r.subject) for r in added.reasons] == [(ReasonKind.INPUT_ADDED, "b.c")]
    removed = again(fs, TASK._replace(inputs=()), record)
    assert kinds(removed) == [ReasonKind.INPUT_REMOVED]
    fs.write("a.c", "int main2;")
    changed = again(fs, TASK, record).reasons
    assert [r.kind for r in changed] == [ReasonKind.INPUT_CHANGED]
    assert changed[0].old == record.inputs["a.c"] and changed[0].new != changed[0].old
    assert "a.c" in str(changed[0])
    fs.remove("a.c")
    assert kinds(again(fs, TASK, record)) == [ReasonKind.INPUT_MISSING]


def test_depfile_inputs() -> None:
    fs, _, record = setup()
    fs.write("a.h", "#define Y")
    assert kinds(again(fs, TASK, record)) == [ReasonKind.DEPFILE_INPUT_CHANGED]
    fs.remove("a.h")
    assert kinds(again(fs, TASK, record)) == [ReasonKind.DEPFILE_INPUT_CHANGED]
    unknown = record._replace(depfile_inputs={"a.h": UNKNOWN})
    fs.write("a.h", "#define X")
    assert kinds(again(fs, TASK, unknown)) == [ReasonKind.DEPFILE_INPUT_CHANGED]


def test_outputs() -> None:
    fs, _, record = setup()
    fs.write("a.o", "tampered")
    assert kinds(again(fs, TASK, record)) == [ReasonKind.OUTPUT_CHANGED]
    fs.remove("a.o")
    assert kinds(again(fs, TASK, record)) == [ReasonKind.OUTPUT_MISSING]
    fs.write("a.o", "obj")
    assert not again(fs, TASK, record).stale
    assert kinds(again(fs, TASK, record._replace(outputs={}))) == [ReasonKind.OUTPUT_NEW]


def test_an_output_no_longer_declared_is_a_reason_to_run() -> None:
    # the build removes it first: only the command's run can tell whether it still writes it
    fs, _, record = setup()
    fs.write("a.map", "symbols")
    both = record._replace(outputs={**record.outputs, "a.map": Hasher(fs, {}).file_hash("a.map")})
    reasons = again(fs, TASK, both).reasons
    assert [(r.kind, r.subject) for r in reasons] == [(ReasonKind.OUTPUT_DROPPED, "a.map")]
    assert str(reasons[0]) == "a.map is no longer an output"
    assert kinds(again(fs, TASK, both, explain=False)) == [ReasonKind.OUTPUT_DROPPED]
    assert not again(fs, TASK._replace(outputs=("a.o", "a.map")), both).stale


def test_always_force_and_taskless_files() -> None:
    fs, _, record = setup()
    assert kinds(again(fs, TASK._replace(always=True), record)) == [ReasonKind.ALWAYS]
    assert kinds(again(fs, TASK, record, force=True)) == [ReasonKind.FORCED]
    bare = TASK._replace(inputs=(), outputs=(), depfile=None)
    assert ReasonKind.NO_FILES in kinds(decide(bare, record, Hasher(fs, {}).file_hash))


def test_every_reason_is_listed_together() -> None:
    fs, _, record = setup()
    fs.write("a.c", "changed")
    fs.remove("a.o")
    reasons = again(fs, TASK._replace(commands=("other",)), record)
    assert kinds(reasons) == [ReasonKind.ACTION_CHANGED, ReasonKind.INPUT_CHANGED,
                              ReasonKind.OUTPUT_MISSING]


def test_inputs_are_hashed_before_the_run() -> None:
    """The decision carries the hashes the record must keep, taken at decision time."""
    fs, hasher, _ = setup()
    decision = decide(TASK, None, hasher.file_hash)
    fs.write("a.c", "edited while running")
    assert decision.input_hashes["a.c"] != Hasher(fs, {}).file_hash("a.c")
