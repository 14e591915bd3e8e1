"""The output cache of a build: action keys looked up in the local store, then on the
remote; a hit's outputs written atomically after their SHA-256 is checked; a run's outputs
stored (locally, then uploaded) by a background thread that `close` waits for.

A task with a depfile is keyed in two steps, as ccache's manifests do: its action key names a
manifest listing the depfile inputs its last stored run read, and the entry lives under the
key that adds those files' current hashes. So a clean build, which has no record of the
depfile inputs yet, still finds the entry, and the key does include the depfile inputs.

Any fault is a miss: a damaged local file (removed, one warning), a server that is down, slow,
refusing or unauthorized (one warning, and the server is left alone for the rest of the
build), or a blob whose bytes do not match its SHA-256 (one warning). The build's result never
depends on the cache.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from buildflow.cache import RemoteError, Restored, cacheable, config
from buildflow.cache.entry import (Blob, Damaged, Entry, decode_entry, decode_manifest,
                                   encode_manifest)
from buildflow.cache.key import action_key, depfile_key, portable
from buildflow.cache.local import LocalStore
from buildflow.contents import hash_regular_file
from buildflow.fs import replace_file
from buildflow.hashing import MISSING, UNKNOWN
from buildflow.signals import without_signals
from buildflow.logs import log_path
from buildflow.model import Project, Task
from buildflow.staleness import Decision
from buildflow.state import TaskRecord

# The most an entry (or a manifest of depfile inputs) read from a server may hold: thousands
# of paths and hashes take a few hundred KiB; a server sending more is no cache of bflow's.
ENTRY_LIMIT = 16 << 20
# Sets of depfile inputs a manifest keeps (each a lookup more on a miss): a branch whose
# header includes one more header, and the branch it came from, each restore their own.
MANIFEST_SETS = 4

if TYPE_CHECKING:
    from buildflow.cache.remote import Remote


class Cache:
    def __init__(self, project: Project, local: LocalStore, remote: Remote | None,
                 upload: bool, warn: Callable[[str], None]) -> None:
        self.root = project.root
        self.cache_dir = project.cache_dir
        self.local = local
        self.remote = remote
        self.upload = upload and remote is not None
        self.warn = warn
        self.hits = self.misses = 0
        self._warned: set[str] = set()  # "local", "remote": one warning each per build
        self._lock = threading.Lock()  # for the counts and the warnings
        # Tasks to store, for the storing thread; None tells it to end.
        self._queue: queue.SimpleQueue[tuple[Task, TaskRecord] | None] = queue.SimpleQueue()
        self._storer: threading.Thread | None = None
        self._grown = False  # the local store took something in: bound it again at close
        umask = os.umask(0)
        os.umask(umask)
        self._modes = (0o666 & ~umask, 0o777 & ~umask)  # as a command's new file gets them

    @classmethod
    def configured(cls, project: Project, warn: Callable[[str], None],
                   environ: Mapping[str, str]) -> Cache:
        """The cache as BFLOW_CACHE_DIR, BFLOW_CACHE_MAX, BFLOW_REMOTE_CACHE(_HEADER,
        _UPLOAD) and the Flowfile's settings set it up."""
        local = LocalStore(config.directory(environ), config.max_bytes(environ))
        url = config.remote_url(project.settings.remote_cache, environ)
        remote = None
        if url:
            from buildflow.cache.remote import Remote

            try:
                remote = Remote(url, environ.get("BFLOW_REMOTE_CACHE_HEADER", ""))
            except ValueError as exc:
                source = "BFLOW_REMOTE_CACHE" if url != project.settings.remote_cache \
                    else "settings.remote_cache"
                warn(f"remote cache not used: {source}: {exc}")
        return cls(project, local, remote,
                   config.upload(project.settings.remote_cache_upload, environ), warn)

    # -- restoring ---------------------------------------------------------------------------

    def may_hold(self, task: Task) -> bool:
        return cacheable(task)

    def restore(self, task: Task, decision: Decision) -> Restored | None:
        try:
            found = self._lookup(task, decision)
            if found is not None:
                entry, depfile_inputs, keys = found
                log = self._write(task, entry)
                self.local.touch("ac", keys)
                self.local.touch("cas", (blob.sha256 for blob in entry.blobs()))
                with self._lock:
                    self.hits += 1
                return Restored(depfile_inputs, log)
        except _Miss:
            pass
        except Damaged as exc:
            self._warn_once("local", f"output cache: {exc}; task '{task.name}' runs instead "
                                     "(the damaged file was removed)")
        except OSError as exc:
            # a rename's target (the output) rather than the temp file beside it
            failed = exc.filename2 or exc.filename or self.local.directory
            self._warn_once("local", f"output cache: {failed}: {exc.strerror}; task "
                                     f"'{task.name}' runs instead; {self._what_to_check(exc)}")
        with self._lock:
            self.misses += 1
        return None

    def _lookup(self, task: Task, decision: Decision
                ) -> tuple[Entry, dict[str, str], list[str]] | None:
        """The entry for `task` as decided, the depfile inputs it was checked against, and
        the keys it was found under; None when there is none."""
        key = action_key(self.root, decision.action, decision.input_hashes, task.outputs)
        data, sender = self._fetch_entry(key)
        if data is None:
            return None
        keys = [key]
        depfile_inputs: dict[str, str] = {}
        if task.depfile:
            try:
                sets = decode_manifest(data, key)
            except Damaged as exc:
                raise self._discarded(key, exc, sender) from None
            found = self._depfile_entry(key, sets)
            if found is None:
                return None
            depfile_inputs, full_key, data, sender = found
            keys.append(full_key)
        try:
            entry = decode_entry(data, task, keys[-1])
        except Damaged as exc:
            raise self._discarded(keys[-1], exc, sender) from None
        return entry, depfile_inputs, keys

    def _depfile_entry(self, key: str, sets: list[list[str]]
                       ) -> tuple[dict[str, str], str, bytes, Remote | None] | None:
        """The first of the manifest's sets of depfile inputs whose files, as they are now,
        key an entry: those inputs, the key, the entry and who sent it; None for none."""
        hashes: dict[str, str] = {}
        for paths in sets:
            for path in paths:
                if path not in hashes:
                    hashes[path] = self._hash(path)
            depfile_inputs = {path: hashes[path] for path in paths}
            if UNKNOWN in depfile_inputs.values():
                continue
            full_key = depfile_key(self.root, key, depfile_inputs)
            data, sender = self._fetch_entry(full_key)
            if data is not None:
                return depfile_inputs, full_key, data, sender
        return None

    def _discarded(self, key: str, exc: Damaged, sender: Remote | None) -> Exception:
        """The damaged file under `key` removed from the local store; what to raise: the
        damage said of the local file, or, when a server (`sender`) has just sent it, a miss
        once that server is given up with one warning naming it."""
        self.local.discard("ac", key)
        if sender is not None:
            self._remote_failed(RemoteError(
                f"{sender.shown}/ac/{key} holds no entry bflow wrote ({exc}); a damaged or "
                "poisoned server, or another service at that URL"))
            return _Miss()
        return Damaged(f"entry {self.local.path('ac', key)}: {exc}")

    def _fetch_entry(self, key: str) -> tuple[bytes | None, Remote | None]:
        """The entry under `key`, and the server that sent it (None: the local store had it,
        or neither)."""
        data = self.local.get("ac", key)
        remote = self.remote
        if data is not None or remote is None:
            return data, None
        data = self._remote_get("ac", key, ENTRY_LIMIT)
        if data is None:
            return None, None
        self.local.put("ac", key, data)
        self._grown = True
        return data, remote

    def _blob(self, blob: Blob) -> bytes | None:
        """A blob's bytes, from the local store or else the remote, checked against its
        SHA-256 and size; None when neither has it (or the remote's is wrong)."""
        data = self.local.get_blob(blob.sha256, blob.size)
        if data is None and (remote := self.remote) is not None:
            data = self._remote_get("cas", blob.sha256, blob.size)
            if data is None:
                return None
            if len(data) != blob.size or hashlib.sha256(data).hexdigest() != blob.sha256:
                self._warn_once("remote", f"remote cache: {remote.shown}/cas/"
                                          f"{blob.sha256} holds other bytes than its SHA-256 "
                                          "names (a damaged or poisoned server); not used")
                return None
            self.local.put("cas", blob.sha256, data)
            self._grown = True
        return data

    def _remote_get(self, kind: str, key: str, limit: int) -> bytes | None:
        remote = self.remote
        if remote is None:
            return None
        try:
            return remote.get(kind, key, limit)
        except RemoteError as exc:
            if not remote.stopped.is_set():  # else the build was interrupted: no warning
                self._remote_failed(exc)
            return None

    def stop(self) -> None:
        if (remote := self.remote) is not None:
            remote.stop()

    def _remote_failed(self, exc: RemoteError) -> None:
        """Leave the server alone for the rest of the build, after one warning."""
        self.remote = None
        self.upload = False
        self._warn_once("remote", f"remote cache not used for the rest of this build: {exc}")

    def _write(self, task: Task, entry: Entry) -> bytes | None:
        """Write the entry's outputs (and depfile) in place, each atomically with its mode,
        once every blob is at hand and checked; the saved log, to replay."""
        contents = []
        for blob in entry.blobs():
            data = self._blob(blob)
            if data is None:
                raise _Miss()
            contents.append(data)
        files = entry.outputs + ((entry.depfile,) if entry.depfile is not None else ())
        for blob, data in zip(files, contents):
            mode = self._modes[blob.executable] if blob.mode is None else blob.mode
            replace_file(os.path.join(self.root, blob.path), data, mode=mode,
                         sync=False)  # as the command wrote it
        return contents[-1] if entry.log is not None else None

    def _manifest_sets(self, key: str, paths: list[str]) -> list[list[str]]:
        """The sets of depfile inputs the manifest under `key` is to list: `paths` first, then
        those it listed (a damaged one lists none), up to MANIFEST_SETS."""
        sets = [paths]
        try:
            data = self.local.get("ac", key)
            if data is not None:
                sets += [known for known in decode_manifest(data, key) if known != paths]
        except Damaged:
            pass
        return sets[:MANIFEST_SETS]

    def _hash(self, path: str) -> str:
        try:
            return hash_regular_file(os.path.join(self.root, path))[0]
        except (FileNotFoundError, NotADirectoryError):
            return MISSING
        except OSError:
            return UNKNOWN  # cannot tell: not a hit

    def _warn_once(self, kind: str, message: str) -> None:
        with self._lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        self.warn(message)

    # -- storing -----------------------------------------------------------------------------

    def store(self, task: Task, record: TaskRecord, file_hash: Callable[[str], str]) -> None:
        if not cacheable(task) or UNKNOWN in record.depfile_inputs.values() or \
                UNKNOWN in record.inputs.values():
            return
        if any(file_hash(path) != digest for path, digest in record.inputs.items()):
            return  # an input changed while the task ran: its outputs may be of either
        if self._storer is None:
            self._storer = threading.Thread(target=self._store_all, name="bflow-cache",
                                            daemon=True)
            without_signals(self._storer.start)
        self._queue.put((task, record))

    def _store_all(self) -> None:
        while (item := self._queue.get()) is not None:
            task, record = item
            try:
                self._store(task, record)
            except OSError as exc:
                self._warn_once("local", f"output cache: {exc.filename or ''}: {exc.strerror}; "
                                         f"outputs not stored; {self._what_to_check(exc)}")
            except RemoteError as exc:
                self._remote_failed(exc)
        if (remote := self.remote) is not None:
            remote.close()

    def _store(self, task: Task, record: TaskRecord) -> None:
        if any(os.path.islink(os.path.join(self.root, path)) for path in task.outputs):
            return  # a link would come back as a copy of its file: such a task runs again
        blobs: dict[str, bytes] = {}
        outputs = []
        for path in task.outputs:
            data, mode = self._read(path, record.outputs.get(path))
            if data is None:
                return  # changed since the run: not what the record says it made
            outputs.append(self._blob_of(path, data, blobs, mode))
        depfile = None
        if task.depfile:
            data, _ = self._read(task.depfile)
            if data is not None:
                depfile = self._blob_of(task.depfile, data, blobs)
        log, _ = self._read(log_path(self.cache_dir, task.name))
        entry = Entry(tuple(outputs), depfile,
                      None if log is None else self._blob_of("", log, blobs))
        key = action_key(self.root, record.action, record.inputs, task.outputs)
        entries = {key: entry.encode(key)}
        if task.depfile:
            inputs = {portable(self.root, p): h for p, h in record.depfile_inputs.items()}
            full_key = depfile_key(self.root, key, inputs)
            entries = {full_key: entry.encode(full_key),
                       key: encode_manifest(key, self._manifest_sets(key, sorted(inputs)))}
        for sha256, data in blobs.items():  # written again: one there may be damaged
            self.local.put("cas", sha256, data)
        for entry_key, data in entries.items():
            self.local.put("ac", entry_key, data)
        self._grown = True
        remote = self.remote  # taken once: a lookup that fails may drop it meanwhile
        if self.upload and remote is not None:  # blobs first: an entry's are there
            for sha256, data in blobs.items():
                remote.put("cas", sha256, data)
            for entry_key, data in entries.items():
                remote.put("ac", entry_key, data)

    def _read(self, path: str, xxh3: str | None = None) -> tuple[bytes | None, int]:
        """A file's bytes and permission bits; None when it is missing or (with `xxh3`) its
        content is no longer the one recorded."""
        try:
            with open(os.path.join(self.root, path), "rb") as handle:
                data = handle.read()
                mode = os.fstat(handle.fileno()).st_mode & 0o777
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None, 0
        if xxh3 is not None:
            from buildflow.contents import new_hash

            if new_hash(data).hexdigest() != xxh3:
                return None, 0
        return data, mode

    def _blob_of(self, path: str, data: bytes, blobs: dict[str, bytes],
                 mode: int | None = None) -> Blob:
        sha256 = hashlib.sha256(data).hexdigest()
        blobs[sha256] = data
        if mode is None or mode in self._modes:  # what the umask gives: the restorer's will do
            return Blob(path, sha256, len(data), mode == self._modes[1])
        return Blob(path, sha256, len(data), bool(mode & 0o100), mode)

    def _what_to_check(self, exc: OSError) -> str:
        """What a warning about `exc` asks the user to check: the cache's directory, unless
        the path that failed is the project's own (an output bflow could not restore)."""
        failed = str(exc.filename2 or exc.filename or "")
        store = self.local.directory
        if not failed.startswith(os.path.join(store, "")) and \
                failed.startswith(os.path.join(self.root, "")):  # a store inside the project
            return "the output's path in the project could not be written"
        if os.path.isfile(store):
            return f"{store}, the output cache's directory, is a file; set BFLOW_CACHE_DIR " \
                   "to a directory"
        if isinstance(exc, FileNotFoundError):  # its directory went as the file was written
            return "the cache was cleared meanwhile (`bflow cache clear`)"
        return "check that BFLOW_CACHE_DIR is a writable directory with free space"

    def close(self) -> None:
        if self._storer is not None:
            self._queue.put(None)
            self._storer.join()
        try:
            if self.hits or self.misses:
                self.local.count(self.hits, self.misses)
            if self._grown:
                self.local.settle()
        except OSError as exc:
            self._warn_once("local", f"output cache: {exc.filename}: {exc.strerror}")


class _Miss(Exception):
    """A blob neither store has, or an entry the server sent that is none."""
