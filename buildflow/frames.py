"""The framing of the state log: `<length:u32><crc32:u32><marshal payload>` after a header line
naming the format. Imports nothing heavy, so the fast path can read a log's tail too."""

from __future__ import annotations

import marshal
import struct
import zlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

HEADER = b"BFLOWSTATE 1\n"
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
