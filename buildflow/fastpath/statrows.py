"""The rows of a proof, a path's (size, mtime_ns, inode) each, kept as the proof stores them:
one marshal blob per chunk of paths, decoded only where a row is asked for.

A no-op stats every path and finds every row the same. Comparing a chunk's current rows with
its blob as bytes (`marshal.dumps` of the same values gives the same bytes) spares decoding
the stored rows at all, which at 10,000 tasks was more than a tenth of the no-op, before the
stats could even start (docs/speed.md). The chunks are the scan's unit of work too
(`statscan`), so each is compared whole.
"""

from __future__ import annotations

import marshal

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence

ABSENT = (-1, -1, -1)  # the row of a path that must not exist (a depfile input recorded missing)
CHUNK_ROWS = 1000  # rows per chunk: enough to compare in one go, few enough to share out
MAX_CHUNKS = 256  # a chunk is named by one byte in the scan's pipe of tokens
# Version 2 of the marshal format has no back-references, so its bytes depend on the values
# alone, never on which objects hold them.
_MARSHAL_VERSION = 2

Row = tuple[int, int, int]  # size, mtime_ns, inode


def chunk_size(count: int) -> int:
    """The rows per chunk for a table of `count` rows."""
    return max(CHUNK_ROWS, -(-count // MAX_CHUNKS))


def packed(rows: Sequence[Row]) -> bytes:
    """A chunk's rows as its blob."""
    return marshal.dumps(list(rows), _MARSHAL_VERSION)


class DamagedRows(ValueError):
    """A chunk that does not decode to its rows: the proof is damaged."""


class RowTable:
    """Rows by index, like a list, held as the blobs of their chunks. A row set is packed
    into its chunk's blob when the blob is next asked for. Raises DamagedRows when a chunk it
    needs does not decode to its rows."""

    def __init__(self, blobs: list[bytes], count: int) -> None:
        self.size = chunk_size(count)
        if type(blobs) is not list or len(blobs) != -(-count // self.size) or \
                not all(type(blob) is bytes for blob in blobs):
            raise DamagedRows("not the chunks of this many rows")
        self._blobs = blobs
        self.count = count
        self.chunks = len(blobs)
        self._decoded: dict[int, list[Row]] = {}
        self._changed: set[int] = set()  # chunks with a row set since their blob was made
        self.touched: set[int] = set()  # chunks with a row set or a blob replaced, ever

    @classmethod
    def of(cls, rows: Sequence[Row]) -> RowTable:
        size = chunk_size(len(rows))
        return cls([packed(rows[start:start + size]) for start in range(0, len(rows), size)],
                   len(rows))

    def bounds(self, chunk: int) -> tuple[int, int]:
        """The indices of a chunk's first row and of the row after its last."""
        return chunk * self.size, min((chunk + 1) * self.size, self.count)

    def blob(self, chunk: int) -> bytes:
        """A chunk's rows, packed."""
        if chunk in self._changed:
            self._changed.discard(chunk)
            self._blobs[chunk] = packed(self._decoded[chunk])
        return self._blobs[chunk]

    def replace(self, chunk: int, blob: bytes) -> None:
        """Take a chunk's blob from a proof's delta."""
        if not 0 <= chunk < self.chunks or type(blob) is not bytes:
            raise DamagedRows(f"no chunk {chunk} of the proof's rows to replace")
        self._blobs[chunk] = blob
        self._decoded.pop(chunk, None)
        self._changed.discard(chunk)
        self.touched.add(chunk)

    def blobs(self) -> list[bytes]:
        """Every chunk's blob, as a proof stores them."""
        return [self.blob(chunk) for chunk in range(self.chunks)]

    def chunk(self, chunk: int) -> list[Row]:
        """A chunk's rows, decoded once."""
        rows = self._decoded.get(chunk)
        if rows is None:
            start, stop = self.bounds(chunk)
            try:
                rows = marshal.loads(self._blobs[chunk])
            except (EOFError, ValueError, TypeError):
                rows = None
            if type(rows) is not list or len(rows) != stop - start:
                raise DamagedRows(f"rows {start} to {stop} of the proof do not decode")
            self._decoded[chunk] = rows
        return rows

    def __getitem__(self, index: int) -> Row:
        return self.chunk(index // self.size)[index % self.size]

    def __setitem__(self, index: int, row: Row) -> None:
        chunk = index // self.size
        self.chunk(chunk)[index % self.size] = row
        self._changed.add(chunk)
        self.touched.add(chunk)
