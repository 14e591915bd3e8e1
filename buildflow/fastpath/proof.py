"""The fast path: find by stat alone what changed since the last build, before the project or
the state is loaded.

A build that ends with every selected task up to date leaves a proof in the cache dir, one for
each kind of build (targets and overrides; `proof_name`), in two files: `NAME.project`, what
depends only on the project and the targets (rewritten only when they change), and `NAME`, what
depends on the files and the state. `NAME` is written whole by a full build; an incremental
build or a refresh, which change a few of its rows, only rewrite a delta at its end (the chunks
of rows and the hashes changed since it was written whole, and the new state identity), until
the delta grows past DELTA_MAX_CHUNKS or DELTA_MAX_ROWS. A torn delta is ignored, and the
state identity then shows the rest as out of date: the build goes the full way. The project
part leads with what every check reads; the listings and the task table, which a no-op needs
rarely or never, are decoded (or read) only when asked for.

- what the project was loaded from: the key of the project cache (bflow's code, the Flowfile's
  path and bytes, the overrides), the listing of every directory its globs scanned, the
  inputs it found outside them, and the directories on the way to its outputs (checked as the
  load checks them: no symlink among them leads out of the root);
- the targets asked for, and the identity (size, mtime, inode, generation) of the state file, so a run
  recorded or a record dropped since (by any build, with any targets) voids it; refreshed
  hashes appended since do not;
- every path the selected tasks read or write (inputs, depfile inputs, outputs), with the
  (size, mtime_ns, inode) and content hash the build saw, checked against every record;
- the tasks themselves, with the paths each touches and what comes after it, for `incremental`.

The next plain build with the same targets opens the proof first. When the project would load
the same and no record changed, every task that touches no changed file is up to date: if no
file changed, nothing runs and nothing is loaded; if some did, `incremental` builds just what
they reach. A stat is trusted as the hasher trusts it (the file was hashed safely after its last
write); a path whose stat changed or is too recent is hashed again, so a touched file with the
same content is not a change. Anything else, or any doubt, falls back to the full build, which
writes a new proof. The proof is used under the project lock, taken without waiting: a build in
progress sends this one down the normal path, which waits for it.
"""

from __future__ import annotations

import marshal
import os
import time
import zlib

from buildflow.fastpath.formats import PROOF_FILE as FILE_NAME
from buildflow.fastpath.formats import PROOF_FORMAT as FORMAT
from buildflow.fastpath.formats import PROOF_PROJECT_PART as PROJECT_PART
from buildflow.fastpath.identity import cache_dir_of, listing, project_key
from buildflow.fastpath.statrows import ABSENT, DamagedRows, Row, RowTable
from buildflow.fastpath.statscan import doubtful_rows, reap
from buildflow.gcpause import paused
from buildflow.locate import canonical_flowfile, flowfile_path
from buildflow.racy import trusted
from buildflow.rootcheck import first_escape, first_link, is_input_file
from buildflow.scripts import code_holds, flowfile_bytes

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import array
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any, BinaryIO

MAX_PROOFS = 8  # kinds of build (targets, overrides) whose proofs are kept, the newest
# Rewrite a refreshed proof only when this many files had to be hashed again: re-hashing a few
# files on every run costs less than rewriting the proof (several ms for 20,000 paths) once.
REWRITE_MIN = 64
HEAD_SIZE = 8  # bytes giving the length of the project part's head, of its task table (at its
# end), and of the proof's base, with the CRC-32 of the table and of the base in their high
# half (`sized`, `checked`); the head holds that of its paths, the table that of each spec. A
# part damaged on disk with its size and mtime kept (bit rot) could otherwise name other
# paths, and vouch for tasks whose files it never checks.
# Hashes changed since the proof was written whole, past which it is written whole again:
# every no-op reads and applies the delta, every update rewrites it.
DELTA_MAX_ROWS = 1024
# The same for the chunks of rows (`statrows`), which the delta holds whole, packed, so that a
# no-op takes them as they are, decoding none.
DELTA_MAX_CHUNKS = 16
INT_CODE = "I"  # the task table's ints: indices of paths and tasks, and offsets
StateId = tuple[int, int, int, str]  # the state log's (size, mtime_ns, inode, generation)


class Proof:
    """A proof read from the cache dir whose project and records still hold, with the project
    lock held until `close`, so that what it shows stays true while a build acts on it."""

    def __init__(self, file: str, lock: int, parts: tuple[Any, ...], head: tuple[Any, ...],
                 project_file: BinaryIO, base_size: int, delta: tuple[Any, ...] | None) -> None:
        self.file = file
        self._lock: int | None = lock
        (_, self.project_id, self.state_id, self.dir_stats, self.extra_paths, blobs,
         self.digests, self.unsettled, self.count, self.depfiles) = parts
        self._base_size = base_size  # where the delta starts, after the size field
        _, _, (self.lone_inputs, self.output_prefixes, self.cwd_prefixes, self.code), static, \
            self.listings, _ = head
        self._project_file: BinaryIO | None = project_file  # at the task table
        self._graph: tuple[Any, ...] | None = None
        self._graph_read = False
        self._specs_at = 0  # where the task specs start in the project part
        # `unscanned`: the lone inputs that are not among the paths statted (those of tasks
        # outside this build's targets), checked on their own.
        self.root, self.flowfile, self.skip, paths, self.unscanned = marshal.loads(static)
        self.paths: list[str] = paths + self.extra_paths
        self.rows = RowTable(blobs, len(self.paths))
        # The chunks of rows and the hashes changed since the proof was written whole,
        # applied here (rows) or when the hashes are split (digest_of).
        self._delta_digests: dict[int, str] = {}
        if delta is not None:
            self.state_id, chunks, self._delta_digests, self.unsettled = delta
            if type(chunks) is not dict:
                raise DamagedRows("a delta without chunks of rows")
            for chunk, blob in chunks.items():
                self.rows.replace(chunk, blob)
        self.state_now: StateId | None = None  # the state file's id, once found unchanged
        self.refreshed: dict[int, Row] = {}  # rows whose stat changed but not their content
        self.still_unsettled: list[int] = []
        self._digest_of: list[str] | None = None

    @property
    def graph(self) -> tuple[Any, ...] | None:
        """The task table for `incremental` (settings, vars, and the packed lists of ints),
        read from the project part the proof was opened with when first asked for; None when
        the tasks cannot go that way. The tasks' specs stay on disk until `spec` reads one."""
        if not self._graph_read and self._project_file is not None:
            self._graph_read = True
            try:
                fd = self._project_file.fileno()
                self._specs_at = self._project_file.tell()
                end = os.fstat(fd).st_size - HEAD_SIZE
                field = os.pread(fd, HEAD_SIZE, end)
                size = int.from_bytes(field, "little") & 0xFFFFFFFF
                if not self._specs_at <= end - size < end:
                    raise ValueError("a damaged task table")
                table = os.pread(fd, size, end - size)
                checked(field, table, 0)
                self._graph = marshal.loads(table)
            except (OSError, EOFError, ValueError, TypeError):
                self._graph = None
                remove_quietly(self.file + PROJECT_PART)  # damaged: the full way writes it again
        return self._graph

    def spec(self, start: int, end: int, crc: int) -> Any:
        """The spec of a task, at these offsets among the specs, with this CRC-32 (the task
        table's); None when the project part is damaged (it is removed: the full way writes
        it again)."""
        assert self._project_file is not None
        try:
            data = os.pread(self._project_file.fileno(), end - start, self._specs_at + start)
            if zlib.crc32(data) != crc:
                raise ValueError("a damaged spec")
            return marshal.loads(data)
        except (OSError, EOFError, ValueError, TypeError):
            remove_quietly(self.file + PROJECT_PART)
            return None

    @property
    def digest_of(self) -> list[str]:
        """Each path's recorded hash ("" for a path that must not exist), split when needed."""
        if self._digest_of is None:
            self._digest_of = self.digests.split("\n")
            for index, digest in self._delta_digests.items():
                self._digest_of[index] = digest
        return self._digest_of

    def holds_for_project(self) -> bool:
        """The state has no new record and a fresh load would give the same project, and find
        what it checks still true (inputs named on their own are files; no output's directory
        leads out of the root; no `cwd` is a symlink). The lone inputs among the paths statted
        are checked by `changes` instead, only where their stat moved: one stat each, not two."""
        self.state_now = _state_unchanged(os.path.join(os.path.dirname(self.file), "state"),
                                          self.state_id)
        return (self.state_now is not None
                and all(_same_listing(self.root, d, self.skip, seen, self.dir_stats.get(d))
                        for d, seen in self.listings.items())
                and all(is_input_file(os.path.join(self.root, p)) for p in self.unscanned)
                and first_escape(self.root, self.output_prefixes) is None
                and first_link(self.root, self.cwd_prefixes) is None
                and code_holds(self.code))

    def changes(self, on_change: Callable[[], object] | None = None) -> set[int] | None:
        """The indices of the paths whose content changed (or that appeared or vanished);
        None when that cannot be told (a path that cannot be read, or keeps changing, or a
        damaged proof).
        `on_change` is called at the first stat that differs, while a second process may
        still be statting (`statscan`): a change is then likely, and getting ready to build
        costs nothing but a CPU that would wait.
        A lone input whose stat moved is checked as the load checks it: None when it is not a
        file now (the full way then says why); an unmoved one is the file it was."""
        try:
            current = doubtful_rows(self.root, self.paths, self.rows, self.unsettled,
                                    on_change)
            changed = self._changed(current)
        except (DamagedRows, ValueError):  # a path no file can have (NUL): damaged; the full
            return None  # way writes the proof again
        if changed:
            lone = set(self.lone_inputs)
            if not all(is_input_file(os.path.join(self.root, self.paths[i]))
                       for i in changed if self.paths[i] in lone):
                return None
        return changed

    def _changed(self, current: dict[int, Row]) -> set[int] | None:
        """Which of the `current` rows, statted just now, show a change of content."""
        if not current:
            return set()
        from buildflow.contents import hash_regular_file

        rows, digest_of = self.rows, self.digest_of
        changed = set()
        for i in sorted(current):
            if ABSENT in (current[i], rows[i]) or current[i][0] != rows[i][0]:
                changed.add(i)  # appeared, vanished, or changed size: its content changed
                continue
            hashed_at_ns = time.time_ns()
            try:
                digest, st = hash_regular_file(os.path.join(self.root, self.paths[i]))
            except OSError:
                return None
            if (st.st_size, st.st_mtime_ns, st.st_ino) != current[i]:
                return None  # changed again since the stat above
            if digest != digest_of[i]:
                changed.add(i)
                continue
            self.refreshed[i] = current[i]
            if not trusted(st.st_mtime_ns, hashed_at_ns):
                self.still_unsettled.append(i)
        return changed

    def refresh(self) -> None:
        """After `changes` found none: keep the new stats of files touched without a change,
        once enough of them are hashed again on every run to make that worth a rewrite. Files
        still too recent to trust do not count: the next run hashes them again anyway."""
        if len(self.refreshed) - len(self.still_unsettled) > REWRITE_MIN:
            self.update({}, {}, self.state_now)

    def update(self, rows: Mapping[int, Row], digests: Mapping[int, str],
               state_id: StateId | None, unsettled_rows: Iterable[int] = ()) -> None:
        """Write the proof again with these rows and hashes changed (of which `unsettled_rows`
        are too recent to trust), and the stats `changes` refreshed: after a build that left
        every task up to date again. Only the delta is written while it stays small."""
        try:
            for index, row in {**self.refreshed, **rows}.items():
                self.rows[index] = row
        except DamagedRows:
            remove_quietly(self.file)  # the full way writes it again
            return
        changed_digests = {**self._delta_digests, **digests}
        unsettled = set(self.still_unsettled)
        unsettled.update(i for i in self.unsettled if i not in self.refreshed)
        unsettled.difference_update(rows)
        unsettled.update(unsettled_rows)
        if len(self.rows.touched) <= DELTA_MAX_CHUNKS and \
                len(changed_digests) <= DELTA_MAX_ROWS:
            from buildflow.frames import encode

            chunks = {chunk: self.rows.blob(chunk) for chunk in sorted(self.rows.touched)}
            delta = (state_id, chunks, changed_digests, sorted(unsettled))
            try:
                with open(self.file, "r+b") as handle:
                    handle.seek(HEAD_SIZE + self._base_size)
                    handle.write(encode(delta))
                    handle.truncate()
            except OSError:
                remove_quietly(self.file)  # the old delta may be gone: no proof, the full way
            return
        digest_of = list(self.digest_of)
        for index, digest in digests.items():
            digest_of[index] = digest
        write_whole(self.file, self.project_id, state_id, self.dir_stats, self.extra_paths,
                     self.rows, "\n".join(digest_of), sorted(unsettled), self.count,
                     self.depfiles)

    def forget(self) -> None:
        remove_quietly(self.file)

    def close(self) -> None:
        reap()  # the statting child, if it answered
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        if self._project_file is not None:
            self._project_file.close()
            self._project_file = None


def open_proof(*, file: str | None, cwd: str, targets: Sequence[str],
               overrides: Mapping[str, str]) -> Proof | None:
    """The proof left for a build of `targets`, holding the project lock, if it exists and
    its project and records still hold; None otherwise (then build normally)."""
    with paused():  # tens of thousands of rows, all live: collections would find nothing
        found = flowfile_path(file, cwd)
        if found is None:
            return None
        flowfile = canonical_flowfile(found)  # as the project cache names it
        try:
            data = flowfile_bytes(flowfile)
            cache_dir = cache_dir_of(flowfile, data)
            name = proof_name(targets, cwd, overrides)
            with open(os.path.join(cache_dir, name), "rb") as handle:
                written = handle.read()
            base_size = checked(written[:HEAD_SIZE], written, HEAD_SIZE)
            parts = marshal.loads(memoryview(written)[HEAD_SIZE:HEAD_SIZE + base_size])
            delta = _delta(written, HEAD_SIZE + base_size)
            head, project_id, project_file = read_project_file(cache_dir, name)
        except (OSError, EOFError, ValueError, TypeError):
            return None
        try:
            if type(parts) is not tuple or len(parts) != 10 or parts[0] != FORMAT or \
                    parts[1] != project_id or \
                    head[1] != _key(flowfile, data, overrides, targets, cwd):
                project_file.close()
                return None
            lock = _try_lock(os.path.join(cache_dir, "lock"))
            if lock is None:
                project_file.close()
                return None
        except (EOFError, ValueError, TypeError):
            project_file.close()
            return None
        try:
            proof = Proof(os.path.join(cache_dir, name), lock, parts, head, project_file,
                          base_size, delta)
        except Exception:  # damaged: whatever its bytes decode to, the full way writes it again
            project_file.close()
            os.close(lock)  # held on a descriptor of its own: the full way would wait for it
            return None
        try:
            if proof.holds_for_project():
                return proof
        except Exception:  # the same
            pass
        proof.close()
        return None


def _delta(data: bytes, offset: int) -> tuple[Any, ...] | None:
    """The delta written after the proof's base, if whole: (state identity, {chunk: its rows'
    blob}, {row index: hash}, unsettled row indices)."""
    if len(data) <= offset:
        return None
    from buildflow.frames import decode_at

    delta = decode_at(data, offset)
    return delta if type(delta) is tuple and len(delta) == 4 else None


def write_whole(proof_file: str, project_id: Row | None, state_id: StateId | None,
                 dir_stats: dict[str, Row | None], extra_paths: list[str], rows: RowTable,
                 digests: str, unsettled: list[int], count: int,
                 depfiles: dict[int, tuple[int, ...]]) -> None:
    """Write a proof whole, with no delta: its base (the format, the project and state
    identities, the directory stats, the extra paths, the rows' chunks, the hashes, the
    unsettled rows, the task count and the depfile inputs), led by its size."""
    write_atomic(proof_file, sized(marshal.dumps((
        FORMAT, project_id, state_id, dir_stats, extra_paths, rows.blobs(), digests, unsettled,
        count, depfiles))))


def sized(encoded: bytes, checksum: bool = True) -> tuple[bytes, bytes]:
    """`encoded` led by its length and checksum (`size_field`), as every part of the proof
    that something may follow is stored: the proof's base (then a delta), the project part's
    head (then the task specs; its checksum is of the paths inside it, `checksum=False`).
    Two chunks to write, so that a large part is not copied to be led by its length."""
    return size_field(len(encoded), zlib.crc32(encoded) if checksum else 0), encoded


def size_field(size: int, crc: int) -> bytes:
    """A part's length in the low half of HEAD_SIZE bytes, the CRC-32 of what it covers in
    the high half."""
    return (size | crc << 32).to_bytes(HEAD_SIZE, "little")


def checked(field: bytes, data: Any, start: int) -> int:
    """The length a `size_field` gives, once that many bytes of `data` from `start` are found
    to match its checksum; ValueError when they do not."""
    value = int.from_bytes(field, "little")
    size = value & 0xFFFFFFFF
    end = start + size
    if end > len(data) or zlib.crc32(memoryview(data)[start:end]) != value >> 32:
        raise ValueError("a damaged proof")
    return size


def proof_name(targets: Sequence[str], cwd: str, overrides: Mapping[str, str]) -> str:
    """The file name of the proof for a build of `targets` with `overrides`: one proof per kind
    of build, so alternating `bflow` and `bflow test` keeps both. (A tag that two kinds share
    only makes them replace each other's proof: the key inside is what is checked.)"""
    if not targets and not overrides:
        return FILE_NAME
    kind = repr((*targets_key(targets, cwd), sorted(overrides.items())))
    return f"{FILE_NAME}-{zlib.crc32(kind.encode('utf-8', 'surrogateescape')):08x}"


def read_project_file(cache_dir: str, name: str) -> tuple[tuple[Any, ...], Row, BinaryIO]:
    """The head of the project part of the proof, the part's identity (which the other part
    names), and the file, open where the task specs start. The head is (FORMAT, key, (lone
    inputs, output prefixes), marshalled (root, Flowfile, skipped dirs, paths), {dir:
    marshalled listing}, the CRC-32 of the marshalled paths); the task specs follow it, and
    the task table ends the file."""
    handle = open(os.path.join(cache_dir, name + PROJECT_PART), "rb")
    try:
        st = os.fstat(handle.fileno())
        size = int.from_bytes(handle.read(HEAD_SIZE), "little") & 0xFFFFFFFF
        if size > st.st_size:
            raise ValueError("not a proof")
        head = marshal.loads(handle.read(size))
        # The paths are checksummed (the head's last item); the rest, the key (with the
        # Flowfile's bytes) and the listings, is compared in full with what it stands for,
        # where damage is a mismatch already. Its checksum too cost a no-op 0.3 ms at 10,000.
        if type(head) is not tuple or len(head) != 6 or head[0] != FORMAT or \
                zlib.crc32(head[3]) != head[5]:
            raise ValueError("not a proof")
    except BaseException:
        handle.close()
        raise
    return head, (st.st_size, st.st_mtime_ns, st.st_ino), handle


def check(*, file: str | None, cwd: str, targets: Sequence[str],
          overrides: Mapping[str, str]) -> int | None:
    """The number of tasks a build of `targets` would find up to date, if it would run none;
    None when that cannot be shown cheaply."""
    proof = open_proof(file=file, cwd=cwd, targets=targets, overrides=overrides)
    if proof is None:
        return None
    try:
        with paused():
            changed = proof.changes()
        if changed is None or changed:
            return None
        proof.refresh()
        return int(proof.count)
    finally:
        proof.close()


def _key(flowfile: str, data: bytes, overrides: Mapping[str, str], targets: Sequence[str],
         cwd: str) -> tuple[object, ...]:
    return (project_key(flowfile, data, overrides), *targets_key(targets, cwd))


def targets_key(targets: Sequence[str], cwd: str) -> tuple[tuple[str, ...], str]:
    # Targets may be paths relative to where bflow runs; without targets that does not matter.
    return tuple(targets), cwd if targets else ""


def _same_listing(root: str, rel: str, skip: frozenset[str], seen: bytes,
                  trusted: Row | None) -> bool:
    """Whether the directory lists as it did (`seen`, marshalled): by its stat (`dir_id`) when
    that was taken safely after its last change (any entry added, removed or renamed moves its
    ctime), else by listing it."""
    if trusted is not None and dir_id(os.path.join(root, rel)) == trusted:
        return True
    return bool(listing(root, rel, skip) == marshal.loads(seen))


def _try_lock(path: str) -> int | None:
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)  # the holder's pid, for a build that waits on it to name
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:
        os.close(fd)
        return None
    return fd


def state_id(path: str) -> StateId | None:
    """The state log's identity: its (size, mtime_ns, inode) and the generation its head names
    (`frames.generation_of`), which a rewrite renews: an inode, and a size, can come back
    after a compaction; a generation cannot. None when it has none."""
    from buildflow.frames import GENERATION_HEAD, generation_of

    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            generation = generation_of(handle.read(GENERATION_HEAD))
    except OSError:
        return None
    if generation is None:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino, generation


def _state_unchanged(path: str, recorded: StateId) -> StateId | None:
    """The state file's identity if it is the file `recorded` names with no record added
    since: only refreshed hashes ("H"), which change no task's record, may follow. Any build
    that refreshes the stat cache appends those, and they must not void every proof. At the
    same size, the same mtime too: a file written over in place (a torn write, a damaged
    block) is no longer the one the proof read."""
    now = state_id(path)
    if now is None or now[2:] != recorded[2:] or now[0] < recorded[0] or \
            (now[0] == recorded[0] and now[1] != recorded[1]):
        return None
    if now[0] > recorded[0]:
        from buildflow.frames import decode_at, size_at

        with open(path, "rb") as handle:
            handle.seek(recorded[0])
            tail = handle.read()
        offset = 0
        while offset < len(tail):
            payload = decode_at(tail, offset)
            if type(payload) is not tuple or not payload or payload[0] != "H":
                return None
            offset += size_at(tail, offset)
    return now


def dir_id(path: str) -> Row | None:
    """(size, ctime_ns, inode) of a directory, or None. The ctime, not the mtime: adding an
    entry and then setting the mtime back (`tar x`, `rsync -a`, `touch -d`) leaves the mtime as
    it was, but every change, the setting of the mtime included, moves the ctime, which no
    user program can set."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_ctime_ns, st.st_ino


def file_id(path: str) -> Row | None:
    """(size, mtime_ns, inode) of a file, or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def write_atomic(proof_file: str, chunks: Iterable[bytes]) -> None:
    """Replace a part of the proof with these chunks, taken as they come, atomically: a kill
    leaves the old one or the new one, never a mix. Not synced: a part a power cut empties
    fails to load, and the build goes the full way. One that cannot be written is left out,
    for the same end."""
    from buildflow.fs import replace_file_from  # here: a no-op writes nothing

    try:
        replace_file_from(proof_file, chunks, sync=False)
    except (OSError, ValueError):
        pass


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def ints_of(packed: bytes) -> array.array[int]:
    """A list of ints as the task table stores it; each int is made only when read. (`array`
    is imported here, not by a no-op, which never reads the table.)"""
    from array import array

    ints = array(INT_CODE)
    ints.frombytes(packed)
    return ints
