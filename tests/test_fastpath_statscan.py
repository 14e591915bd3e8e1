"""The parallel stat scan: its answer is what one process would find, and a change is told at
once, in this process, whichever process statted it."""

from __future__ import annotations

import marshal
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import children

from buildflow.fastpath import statscan
from buildflow.fastpath.statrows import ABSENT, CHUNK_ROWS, DamagedRows, Row, RowTable, packed

N = 10 * CHUNK_ROWS  # split between two processes, ten chunks


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Path, list[str], list[Row]]]:
    """N files, and each one's row as a proof would hold it; tests that change a file put
    its row right again. Removed after the module's tests, on their worker."""
    root = tmp_path_factory.mktemp("tree")
    paths = [f"d{i // 1000}/f{i:05d}" for i in range(N)]
    for directory in {p.split("/")[0] for p in paths}:
        (root / directory).mkdir()
    for path in paths:
        (root / path).write_text(path)
    yield root, paths, [_row(root / path) for path in paths]
    shutil.rmtree(root)


def _row(path: Path) -> Row:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino


def _scan(root: Path, paths: list[str], rows: list[Row],
          unsettled: list[int] = ()) -> tuple[dict[int, Row], list[int]]:
    """The doubtful rows, and the process ids `on_change` was called in; every child reaped."""
    called: list[int] = []
    before = children()
    try:
        found = statscan.doubtful_rows(str(root), paths, RowTable.of(rows), list(unsettled),
                                       on_change=lambda: called.append(os.getpid()))
    finally:
        statscan.reap()
    assert children() <= before  # no child is left
    return found, called


def test_nothing_changed_is_nothing_doubtful_and_no_call(tree) -> None:
    root, paths, rows = tree
    assert _scan(root, paths, rows) == ({}, [])


def test_a_change_in_any_chunk_is_found_and_told_once_in_this_process(tree) -> None:
    # One change in each chunk in turn: the child takes some of them, and a change it finds
    # is told here all the same.
    root, paths, rows = tree
    for index in range(CHUNK_ROWS // 2, N, CHUNK_ROWS):
        (root / paths[index]).write_text("longer than before")
        now = _row(root / paths[index])
        found, called = _scan(root, paths, rows)
        rows[index] = now
        assert found == {index: now}
        assert called == [os.getpid()]


def test_a_missing_path_is_absent(tree) -> None:
    root, paths, rows = tree
    os.rename(root / paths[3], root / "moved")
    try:
        assert _scan(root, paths, rows) == ({3: ABSENT}, [os.getpid()])
    finally:
        os.rename(root / "moved", root / paths[3])


def test_unsettled_rows_are_answered_but_are_not_a_change(tree) -> None:
    root, paths, rows = tree
    unsettled = [1, N - 2]
    found, called = _scan(root, paths, rows, unsettled)
    assert found == {i: rows[i] for i in unsettled}
    assert called == []


def test_a_change_the_other_process_saw_is_told_once(tree) -> None:
    root, paths, rows = tree
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    scan = statscan._Scan(fd, paths, RowTable.of(rows), [])
    tokens = statscan._Tokens(scan.rows.chunks)
    told: list[int] = []
    try:
        found, taken = tokens.take(scan, statscan._Once(lambda: told.append(1)), lambda: True)
    finally:
        tokens.close()
        os.close(fd)
    assert found == {} and sorted(taken) == list(range(scan.rows.chunks))
    assert told == [1]  # though every chunk asked again


def test_a_row_set_in_the_table_is_what_the_scan_compares_with(tree) -> None:
    # As a proof's delta sets the rows of files touched since it was written whole.
    root, paths, rows = tree
    table = RowTable.of(rows)
    index = 3 * CHUNK_ROWS + 7
    os.utime(root / paths[index], ns=(10**18, 10**18))
    now = _row(root / paths[index])
    table[index] = now
    try:
        assert statscan.doubtful_rows(str(root), paths, table, []) == {}
        assert table[index] == now and table.blobs()[3] == packed(
            [*rows[3 * CHUNK_ROWS:index], now, *rows[index + 1:4 * CHUNK_ROWS]])
    finally:
        statscan.reap()
        rows[index] = now


def test_a_chunk_that_does_not_decode_is_a_damaged_table(tree) -> None:
    root, paths, rows = tree
    blobs = RowTable.of(rows).blobs()
    blobs[2] = blobs[2][:-3]
    table = RowTable(blobs, len(rows))
    assert table[CHUNK_ROWS - 1] == rows[CHUNK_ROWS - 1]  # the other chunks still do
    with pytest.raises(DamagedRows):
        table[2 * CHUNK_ROWS]
    with pytest.raises(DamagedRows):  # a chunk short of blobs
        RowTable(blobs[:-1], len(rows))


@pytest.mark.parametrize("said", [b"!.", b"."])
def test_the_child_answer_says_first_whether_a_stat_differed(said: bytes) -> None:
    answer, answer_in = os.pipe()
    with open(answer, "rb") as pipe:
        child = statscan._ChildAnswer(pipe)
        assert not child.found_change()  # nothing said yet: no wait
        os.write(answer_in, said[:1])
        assert child.found_change() == (said[:1] == b"!")
        os.write(answer_in, said[1:] + marshal.dumps({7: (1, 2, 3)}))
        os.close(answer_in)
        assert child.read() == {7: (1, 2, 3)}
        assert child.changed == (said[:1] == b"!")


def test_a_child_that_answered_nothing_whole_gets_none() -> None:
    answer, answer_in = os.pipe()
    os.write(answer_in, b"!." + marshal.dumps({7: (1, 2, 3)})[:-1])
    os.close(answer_in)
    with open(answer, "rb") as pipe:
        assert statscan._ChildAnswer(pipe).read() is None


def test_a_small_list_is_statted_here_alone(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    st = os.stat(tmp_path / "a")
    row = (st.st_size, st.st_mtime_ns, st.st_ino)
    found, called = _scan(tmp_path, ["a", "b"], [(0, 0, 0), ABSENT])
    assert found == {0: row}
    assert called == []  # nothing runs alongside to overlap it with
