"""Cache entries and manifests: what is written reads back, and nothing damaged or naming
other files than the task declares is ever taken for an entry."""

from __future__ import annotations

import json

import pytest

from buildflow.cache.entry import (Blob, Damaged, Entry, decode_entry, decode_manifest,
                                   encode_manifest, is_sha256)
from buildflow.model import Task

SHA = "ab" * 32
TASK = Task(name="cc", base="cc", commands=("cc",), outputs=("out/a.o", "out/b.o"),
            depfile="out/a.d")
ENTRY = Entry((Blob("out/a.o", SHA, 10, mode=0o444), Blob("out/b.o", SHA, 0, executable=True)),
              Blob("out/a.d", SHA, 3), None)


def test_an_entry_reads_back_as_written() -> None:
    assert decode_entry(ENTRY.encode(), TASK) == ENTRY
    # A blob without a mode of its own is written as entries were before modes were kept.
    assert json.loads(ENTRY.encode())["entry"] == [["out/a.o", SHA, 10, False, 0o444],
                                                   ["out/b.o", SHA, 0, True]]
    assert ENTRY.blobs() == (*ENTRY.outputs, ENTRY.depfile)


def test_a_manifest_reads_back_as_written() -> None:
    assert decode_manifest(encode_manifest(["inc/a.h", "/usr/include/x.h"])) == [
        "inc/a.h", "/usr/include/x.h"]


def raw(**changes: object) -> bytes:
    document = json.loads(ENTRY.encode())
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize("data", [
    b"", b"\xff\xfe", b"[1, 2]", b'{"log": null}',
    raw(entry=[["out/a.o", SHA, 10, False]]),  # one output short
    raw(entry=[["out/b.o", SHA, 1, False], ["out/a.o", SHA, 1, False]]),  # in another order
    raw(entry=[["../../etc/passwd", SHA, 1, False], ["out/b.o", SHA, 1, False]]),
    raw(depfile=["../x.d", SHA, 1, False]),
    raw(entry=[["out/a.o", "AB" * 32, 1, False], ["out/b.o", SHA, 1, False]]),
    raw(entry=[["out/a.o", SHA, -1, False], ["out/b.o", SHA, 1, False]]),
    raw(entry=[["out/a.o", SHA, True, False], ["out/b.o", SHA, 1, False]]),
    raw(entry=[["out/a.o", SHA, 1, 0], ["out/b.o", SHA, 1, False]]),
    raw(log=["log", SHA, 1]),
    raw(depfile=["out/a.d", SHA, 1, False, 0o4755]),  # a set-user-ID bit is never restored
    raw(depfile=["out/a.d", SHA, 1, False, True]),
    raw(depfile=["out/a.d", SHA, 1, False, 0o644, 1]),
    b"[" * 100_000,  # nested past the JSON decoder's depth: it was an internal error
], ids=range(17))
def test_anything_but_an_entry_for_the_tasks_own_outputs_is_damaged(data: bytes) -> None:
    with pytest.raises(Damaged):
        decode_entry(data, TASK)


@pytest.mark.parametrize("data", [b'{"depfile_inputs": "a.h"}', b'{"depfile_inputs": [""]}',
                                  b'{"depfile_inputs": [1]}', b'{}', b"null",
                                  b'{"depfile_inputs": ' + b"[" * 100_000])
def test_a_manifest_must_name_its_depfile_inputs(data: bytes) -> None:
    with pytest.raises(Damaged):
        decode_manifest(data)


def test_a_sha256_is_64_lowercase_hex_digits() -> None:
    assert is_sha256(SHA) and not is_sha256(SHA.upper()) and not is_sha256(SHA[:-1])
    assert not is_sha256(None)
