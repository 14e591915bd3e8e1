"""Content hashes with the stat fast path, the racy-timestamp rule, and directory trees."""

from __future__ import annotations

from pathlib import Path

import xxhash
from memfs import MemoryFileSystem

from buildflow.contents import CHUNK, hash_regular_file
from buildflow.fs import LocalFileSystem
from buildflow.hashing import MISSING, Hasher, StatEntry


def fresh(fs: MemoryFileSystem, cache: dict[str, StatEntry] | None = None) -> Hasher:
    return Hasher(fs, {} if cache is None else cache)  # type: ignore[arg-type]


def test_hash_is_xxh3_128_of_the_contents() -> None:
    fs = MemoryFileSystem()
    fs.write("a.txt", "hello")
    assert fresh(fs).file_hash("a.txt") == xxhash.xxh3_128_hexdigest(b"hello")
    assert fresh(fs).file_hash("absent") == MISSING


def test_unchanged_stat_of_an_old_file_is_not_read_again() -> None:
    fs = MemoryFileSystem()
    fs.write("a.txt", "one")
    fs.tick(5)
    cache: dict[str, StatEntry] = {}
    first = fresh(fs, cache).file_hash("a.txt")
    fs.tick(5)
    assert fresh(fs, cache).file_hash("a.txt") == first
    assert fs.reads == ["a.txt"]


def test_changed_stat_is_read_again() -> None:
    fs = MemoryFileSystem()
    fs.write("a.txt", "one")
    fs.tick(5)
    cache: dict[str, StatEntry] = {}
    fresh(fs, cache).file_hash("a.txt")
    fs.tick(5)
    fs.write("a.txt", "two")  # same size, new mtime and inode
    assert fresh(fs, cache).file_hash("a.txt") == xxhash.xxh3_128_hexdigest(b"two")
    assert fs.reads == ["a.txt", "a.txt"]


def test_racy_file_is_hashed_again_even_with_an_unchanged_stat() -> None:
    """A write in the same timestamp tick as the hash leaves the stat equal: never trust it."""
    fs = MemoryFileSystem()
    fs.write("a.txt", "one", mtime_ns=fs.clock_ns, inode=7)
    cache: dict[str, StatEntry] = {}
    fresh(fs, cache).file_hash("a.txt")
    fs.write("a.txt", "two", mtime_ns=fs.clock_ns, inode=7)  # same size, mtime and inode
    assert fresh(fs, cache).file_hash("a.txt") == xxhash.xxh3_128_hexdigest(b"two")
    fs.tick(5)  # once the mtime is safely in the past, the re-hashed entry is trusted
    hasher = fresh(fs, cache)
    hasher.file_hash("a.txt")
    reads = len(fs.reads)
    fresh(fs, cache).file_hash("a.txt")
    assert len(fs.reads) == reads


def test_a_racy_file_hashed_again_unchanged_is_still_known_from_the_first_time() -> None:
    # another task's decision read a fresh output again while its reader ran: the depfile of
    # that reader then took it for changed during its run, and the next build ran it again
    fs = MemoryFileSystem()
    fs.write("out/a.txt", "a", mtime_ns=fs.clock_ns)
    hasher = Hasher(fs, {})
    digest = hasher.file_hash("out/a.txt")  # racy: hashed in its write's tick
    started = fs.clock_ns + 1  # a task that reads it starts
    fs.tick(0.001)
    hasher.forget_seen()
    assert hasher.file_hash("out/a.txt") == digest  # read again, the same
    assert hasher.cache["out/a.txt"][4] > started
    assert hasher.hashed_before("out/a.txt", started, fs.stat("out/a.txt")) == digest
    fs.write("out/a.txt", "b", mtime_ns=fs.clock_ns)  # once it does change
    hasher.forget_seen()
    hasher.file_hash("out/a.txt")
    assert hasher.hashed_before("out/a.txt", started, fs.stat("out/a.txt")) is None


def test_a_file_hashed_a_fine_tick_after_its_write_is_trusted() -> None:
    """Sub-second mtimes come from a filesystem ticking in ms: 0.1 s later the stat is safe."""
    fs = MemoryFileSystem()
    fs.write("a.txt", "one")
    fs.tick(0.05)
    cache: dict[str, StatEntry] = {}
    fresh(fs, cache).file_hash("a.txt")  # within the window: hashed again next time
    fresh(fs, cache).file_hash("a.txt")
    assert fs.reads == ["a.txt", "a.txt"]
    fs.tick(0.1)
    fresh(fs, cache).file_hash("a.txt")  # now safely after the write: this hash is trusted
    fresh(fs, cache).file_hash("a.txt")
    assert fs.reads == ["a.txt", "a.txt", "a.txt"]


def test_a_whole_second_mtime_is_racy_for_a_fat_tick() -> None:
    """A filesystem keeping whole seconds (FAT ticks in 2 s) stamps a write 1.7 s after
    another with the same mtime: a stat on a whole second is trusted only 3 s after it."""
    fs = MemoryFileSystem()
    whole = fs.clock_ns - fs.clock_ns % 10**9
    fs.write("a.txt", "one", mtime_ns=whole, inode=7)
    cache: dict[str, StatEntry] = {}
    fs.tick(1.1)
    fresh(fs, cache).file_hash("a.txt")  # 1.2 s after the mtime, still in its tick
    fs.tick(0.5)
    fs.write("a.txt", "two", mtime_ns=whole, inode=7)  # the same tick: the same stat
    assert fresh(fs, cache).file_hash("a.txt") == xxhash.xxh3_128_hexdigest(b"two")
    fs.tick(1.4)  # 3.1 s after the mtime
    fresh(fs, cache).file_hash("a.txt")
    fresh(fs, cache).file_hash("a.txt")
    assert len(fs.reads) == 3


def test_changes_are_handed_out_once() -> None:
    fs = MemoryFileSystem()
    fs.write("a.txt", "one")
    hasher = fresh(fs)
    hasher.file_hash("a.txt")
    assert [path for path, _ in hasher.take_changes()] == ["a.txt"]
    assert hasher.take_changes() == []


def test_directory_hash_covers_paths_and_contents() -> None:
    fs = MemoryFileSystem()
    fs.write("out/a", "1")
    fs.write("out/sub/b", "2")
    base = fresh(fs).file_hash("out")
    assert base not in (MISSING, fresh(fs).file_hash("out/a"))
    fs.write("out/sub/b", "3")
    changed = fresh(fs).file_hash("out")
    assert changed != base
    fs.write("out/sub/b", "2")
    assert fresh(fs).file_hash("out") == base
    fs.remove("out/sub/b")
    fs.write("out/sub/c", "2")  # same bytes under another name
    assert fresh(fs).file_hash("out") not in (base, changed)


def test_real_directory_tree(tmp_path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f.txt").write_text("x")
    fs = LocalFileSystem(str(tmp_path))
    first = Hasher(fs, {}).file_hash("d")
    (tmp_path / "d" / "g.txt").write_text("")
    assert Hasher(fs, {}).file_hash("d") != first


def test_files_on_disk_hash_whole_whatever_their_size(tmp_path: Path) -> None:
    chunk = CHUNK
    sizes = [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 7]
    for size in sizes:
        (tmp_path / f"f{size}").write_bytes(bytes(i % 251 for i in range(size)))
    hasher = Hasher(LocalFileSystem(str(tmp_path)), {})
    for size in sizes:
        expected = xxhash.xxh3_128_hexdigest(bytes(i % 251 for i in range(size)))
        assert hasher.file_hash(f"f{size}") == expected, size
        # as the fast path hashes a touched file: with a buffer made to the file's size
        assert hash_regular_file(str(tmp_path / f"f{size}"))[0] == expected, size
