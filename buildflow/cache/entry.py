"""What the cache stores under an action key, as JSON: an entry (the outputs' blobs, with
their size, executable bit and any mode the command set itself, the depfile's and the saved
log's), or, for a task with a
depfile, a manifest that names the depfile inputs whose hashes complete the key.

Each is sealed: the document names the key it is stored under, and a line holding the
SHA-256 of the document comes first. An entry read back is checked before anything is
written from it: whole (its SHA-256), stored under this key (a server answering with another
key's entry, or a file moved), well formed, and naming exactly the outputs the task
declares, so that neither a damaged file nor a server's answer can make bflow write anything
else, or anywhere else. Blobs carry no seal: their key is the SHA-256 of their bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any

    from buildflow.model import Task


class Damaged(Exception):
    """An entry or a blob that is not what its key says: a cache miss, never a wrong output."""


class Blob(NamedTuple):
    """One file of an entry: where it goes (root-relative), its content's SHA-256 and size.
    `mode` holds permission bits the command chose (a `chmod 444`); None when the file has
    what the umask gives a new file, plain or executable, so that it comes back with what
    the restoring user's umask gives."""

    path: str
    sha256: str
    size: int
    executable: bool = False
    mode: int | None = None

    def encode(self) -> list[object]:
        """As a JSON list; four items when `mode` is None, as entries without modes were."""
        return list(self) if self.mode is not None else list(self[:4])


class Entry(NamedTuple):
    outputs: tuple[Blob, ...]
    depfile: Blob | None
    log: Blob | None

    def blobs(self) -> tuple[Blob, ...]:
        return (*self.outputs, *(b for b in (self.depfile, self.log) if b is not None))

    def encode(self, key: str) -> bytes:
        """The entry sealed for `key`."""
        return _sealed(key, {"entry": [blob.encode() for blob in self.outputs],
                             "depfile": None if self.depfile is None else self.depfile.encode(),
                             "log": None if self.log is None else self.log.encode()})


def encode_manifest(key: str, depfile_input_sets: list[list[str]]) -> bytes:
    return _sealed(key, {"depfile_inputs": depfile_input_sets})


def decode_manifest(data: bytes, key: str) -> list[list[str]]:
    """The sets of depfile inputs the manifest stored under `key` names, newest first: one
    per set of files the stored runs read (a branch whose header includes one more)."""
    sets = _opened(data, key).get("depfile_inputs")
    if not isinstance(sets, list) or not sets or not all(
            isinstance(paths, list) and all(isinstance(p, str) and p for p in paths)
            for paths in sets):
        raise Damaged("a manifest without its lists of depfile inputs")
    return sets


def decode_entry(data: bytes, task: Task, key: str) -> Entry:
    """The entry in `data`, stored under `key`, checked against the task it is to restore."""
    raw = _opened(data, key)
    outputs = raw.get("entry")
    if not isinstance(outputs, list):
        raise Damaged("an entry without its list of outputs")
    entry = Entry(tuple(map(_blob, outputs)), _optional(raw.get("depfile")),
                  _optional(raw.get("log")))
    if [blob.path for blob in entry.outputs] != list(task.outputs):
        raise Damaged(f"an entry for other outputs than task '{task.name}' declares")
    if entry.depfile is not None and entry.depfile.path != task.depfile:
        raise Damaged(f"an entry for another depfile than task '{task.name}' declares")
    return entry


def _sealed(key: str, document: dict[str, object]) -> bytes:
    body = json.dumps({"key": key, **document}, separators=(",", ":")).encode()
    return hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def _opened(data: bytes, key: str) -> dict[str, Any]:
    """The document sealed in `data`, when it is whole and stored under `key`."""
    seal, newline, body = data.partition(b"\n")
    if not newline or seal != hashlib.sha256(body).hexdigest().encode():
        raise Damaged("its content does not match its SHA-256")
    raw = _json(body)
    if raw.get("key") != key:
        raise Damaged("an entry stored under another key")
    return raw


def _json(data: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError included; nested too deep
        raise Damaged("not a JSON document") from None
    if not isinstance(raw, dict):
        raise Damaged("not a JSON object")
    return raw


def _optional(raw: object) -> Blob | None:
    return None if raw is None else _blob(raw)


def _blob(raw: object) -> Blob:
    if not (isinstance(raw, list) and len(raw) in (4, 5) and isinstance(raw[0], str)
            and is_sha256(raw[1]) and type(raw[2]) is int and raw[2] >= 0
            and isinstance(raw[3], bool)
            and (len(raw) == 4 or type(raw[4]) is int and 0 <= raw[4] <= 0o777)):
        raise Damaged(f"not a blob: {raw!r:.80}")
    return Blob(*raw)


def is_sha256(text: object) -> bool:
    return (isinstance(text, str) and len(text) == 64
            and all(c in "0123456789abcdef" for c in text))
