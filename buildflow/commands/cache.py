"""`bflow cache stats|clear`: the local output cache every project of the user shares."""

from __future__ import annotations

import errno
import os
import shutil

from buildflow.cache import config, enabled
from buildflow.cache.local import COUNTS_FILE, KINDS, SIZE_FILE, LocalStore
from buildflow.errors import EXIT_OK, BuildError, UsageError
from buildflow.words import counted


def run(*, action: str, environ: dict[str, str] | None = None) -> int:
    env = dict(os.environ) if environ is None else environ
    store = LocalStore(config.directory(env), config.max_bytes(env))
    if os.path.exists(store.directory) and not os.path.isdir(store.directory):
        raise UsageError(f"{store.directory}: the output cache's directory is a file; set "
                         "BFLOW_CACHE_DIR to a directory")
    for kind in KINDS if action != "clear" else ():  # clear removes such a file as it is
        path = os.path.join(store.directory, kind)
        if os.path.exists(path) and not os.path.isdir(path):
            raise UsageError(f"{path}: a file where the output cache keeps a directory; "
                             f"`bflow cache clear` removes it")
    if action == "clear":
        left_aside = _set_aside(store.directory)
        for name in (*KINDS, COUNTS_FILE, SIZE_FILE, *left_aside):
            path = os.path.join(store.directory, name)
            try:
                if name in left_aside:
                    _remove_aside(path)
                elif name in KINDS and os.path.isdir(path) and not os.path.islink(path):
                    # moved aside first, whole: a build storing meanwhile makes a new one,
                    # where removing in place raced its writes ("Directory not empty")
                    aside = f"{path}.cleared-{os.getpid()}"
                    os.rename(path, aside)
                    _remove_aside(aside)
                else:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise BuildError(f"{exc.filename}: {exc.strerror}; the output cache in "
                                 f"{store.directory} is cleared only in part") from None
        print(f"bflow: cleared the output cache in {store.directory}")
        return EXIT_OK
    entries = blobs = size = 0
    for path, st in store.files():
        size += st.st_size
        if f"{os.sep}cas{os.sep}" in path[len(store.directory):]:
            blobs += 1
        else:
            entries += 1
    try:
        hits, misses = store.counts()
    except OSError as exc:  # a named pipe there: never waited on
        raise UsageError(f"{exc.filename}: {exc.strerror}; `bflow cache clear` removes "
                         "it") from None
    looked_up = hits + misses
    rate = f" ({100 * hits / looked_up:.0f}% of lookups)" if looked_up else ""
    print(f"directory: {store.directory}{'' if enabled(env) else ' (off: BFLOW_CACHE=0)'}\n"
          f"entries:   {entries}\n"
          f"blobs:     {blobs}\n"
          f"size:      {_size(size)} of {_size(store.max_bytes)} (BFLOW_CACHE_MAX)\n"
          f"lookups:   {counted(hits, 'hit')}, {counted(misses, 'miss', 'misses')}{rate}")
    return EXIT_OK


def _remove_aside(path: str) -> None:
    """Remove a store directory moved aside. No path leads into it any more, but a write that
    had looked up its shard before the move still lands there, after the listing that
    removal goes by ("Directory not empty"): such writes are few and end at once, so the
    removal is tried again."""
    for attempt in range(5):
        try:
            shutil.rmtree(path)
            return
        except OSError as exc:
            if exc.errno != errno.ENOTEMPTY or attempt == 4:
                raise


def _set_aside(directory: str) -> list[str]:
    """The store directories an interrupted `clear` moved aside and did not remove."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [name for name in names
            if ".cleared-" in name and name.partition(".cleared-")[0] in KINDS]


def _size(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError(count)
