"""Cache entries and manifests: what is written reads back, and nothing damaged, stored under
another key, or naming other files than the task declares is ever taken for an entry."""

from __future__ import annotations

import hashlib
import json

import pytest

from buildflow.cache.entry import (Blob, Damaged, Entry, decode_entry, decode_manifest,
                                   encode_manifest, is_sha256)
from buildflow.model import Task

SHA = "ab" * 32
KEY = "cd" * 32
TASK = Task(name="cc", base="cc", commands=("cc",), outputs=("out/a.o", "out/b.o"),
            depfile="out/a.d")
ENTRY = Entry((Blob("out/a.o", SHA, 10, mode=0o444), Blob("out/b.o", SHA, 0, executable=True)),
              Blob("out/a.d", SHA, 3), None)


def document(data: bytes) -> dict[str, object]:
    return json.loads(data.partition(b"\n")[2])  # after the seal's line


def sealed(document: dict[str, object]) -> bytes:
    body = json.dumps(document).encode()
    return hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def test_an_entry_reads_back_as_written() -> None:
    assert decode_entry(ENTRY.encode(KEY), TASK, KEY) == ENTRY
    # A blob without a mode of its own is written as entries were before modes were kept.
    assert document(ENTRY.encode(KEY))["entry"] == [["out/a.o", SHA, 10, False, 0o444],
                                                    ["out/b.o", SHA, 0, True]]
    assert ENTRY.blobs() == (*ENTRY.outputs, ENTRY.depfile)


def test_a_manifest_reads_back_as_written() -> None:
    sets = [["inc/a.h", "/usr/include/x.h"], ["inc/a.h"], []]
    assert decode_manifest(encode_manifest(KEY, sets), KEY) == sets


def test_an_entry_or_manifest_stored_under_another_key_is_damaged() -> None:
    """A server answering one key with another's entry (whole and well formed) gave the
    other task's outputs back; so did a file moved in the store."""
    with pytest.raises(Damaged, match="another key"):
        decode_entry(ENTRY.encode("ef" * 32), TASK, KEY)
    with pytest.raises(Damaged, match="another key"):
        decode_manifest(encode_manifest("ef" * 32, [["inc/a.h"]]), KEY)


@pytest.mark.parametrize("at", range(0, 400, 7))
def test_an_entry_with_any_bit_flipped_is_damaged(at: int) -> None:
    """One bit of a mode (0o600 read back as 0o604) changed what a restore wrote."""
    data = bytearray(ENTRY.encode(KEY))
    data[at % len(data)] ^= 0x04
    with pytest.raises(Damaged):
        decode_entry(bytes(data), TASK, KEY)


def raw(**changes: object) -> bytes:
    """The entry with `changes`, sealed again: only its content is wrong."""
    entry = document(ENTRY.encode(KEY))
    entry.update(changes)
    return sealed(entry)


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
        decode_entry(data, TASK, KEY)
    with pytest.raises(Damaged):  # sealed as it is: its content is wrong all the same
        decode_entry(sealed(json.loads(data)) if _is_json(data) else data, TASK, KEY)


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return False
    return True


@pytest.mark.parametrize("body", [b'"depfile_inputs": "a.h"', b'"depfile_inputs": [[""]]',
                                  b'"depfile_inputs": [[1]]', b'"depfile_inputs": ["a.h"]',
                                  b'"depfile_inputs": []', b'"other": 1'])
def test_a_manifest_must_name_its_depfile_inputs(body: bytes) -> None:
    data = b'{"key": "' + KEY.encode() + b'", ' + body + b"}"
    with pytest.raises(Damaged):
        decode_manifest(hashlib.sha256(data).hexdigest().encode() + b"\n" + data, KEY)


def test_a_sha256_is_64_lowercase_hex_digits() -> None:
    assert is_sha256(SHA) and not is_sha256(SHA.upper()) and not is_sha256(SHA[:-1])
    assert not is_sha256(None)
