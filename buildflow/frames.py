"""The framing of the state log: `<length:u32><crc32:u32><marshal payload>` after a header line
naming the format. Imports nothing heavy, so the fast path can read a log's tail too."""

from __future__ import annotations

import marshal
import struct
import zlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

HEADER = b"BFLOWSTATE 2\n"
FRAME = struct.Struct("<II")


def encode(payload: Any) -> bytes:
    data = marshal.dumps(payload)
    return FRAME.pack(len(data), zlib.crc32(data)) + data


def decode_at(data: memoryview | bytes, offset: int) -> Any:
    """The payload of the frame at `offset`; None when it is torn or corrupt."""
    if offset + FRAME.size > len(data):
        return None
    length, crc = FRAME.unpack_from(data, offset)
    body = data[offset + FRAME.size: offset + FRAME.size + length]
    if len(body) != length or zlib.crc32(body) != crc:
        return None
    try:
        return marshal.loads(body)
    except (EOFError, ValueError, TypeError):
        return None


def size_at(data: memoryview | bytes, offset: int) -> int:
    """The size of the frame at `offset` (which `decode_at` found whole)."""
    length: int = FRAME.unpack_from(data, offset)[0]
    return FRAME.size + length


# A log's generation: a random token in a frame right after the header, made anew whenever the
# file is written from scratch (created, or compacted into one snapshot). A rewritten log can
# come back with the size and the inode of the one it replaced, never with its generation.
_GENERATION_BYTES = 8


def generation_frame() -> tuple[str, bytes]:
    """A new generation, and the frame that names it."""
    import os

    token = os.urandom(_GENERATION_BYTES).hex()
    return token, encode(("G", token))


GENERATION_HEAD = len(HEADER) + len(encode(("G", "0" * 2 * _GENERATION_BYTES)))


def generation_of(head: bytes) -> str | None:
    """The generation named by a log's first GENERATION_HEAD bytes; None for a log that has
    none (written by an older bflow, or torn)."""
    if not head.startswith(HEADER):
        return None
    payload = decode_at(head, len(HEADER))
    if type(payload) is not tuple or len(payload) != 2 or payload[0] != "G":
        return None
    return str(payload[1])
