"""Where a task's saved output lives, one file per task under `<cache_dir>/logs/`, and how it is
made safe to print.

Task names may hold `/` and `:`, so file names are made safe (and kept unique by a short hash),
and no task name can reach outside the logs directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from buildflow.hashing import text_digest

MAX_PRINTED_OUTPUT = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def log_path(cache_dir: Path, task_name: str) -> Path:
    safe = _UNSAFE.sub("_", task_name).strip("._")[:80] or "task"
    return cache_dir / "logs" / f"{safe}-{text_digest(task_name)[:8]}.log"


def seal(path: Path, mask: Callable[[str], str] | None = None) -> str:
    """Mask secrets in a finished log (rewriting it whole, atomically) and return the text to
    print: its last MAX_PRINTED_OUTPUT bytes, since the end of a log is where errors are."""
    if mask is not None:
        text = mask(path.read_bytes().decode("utf-8", "surrogateescape"))
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(text.encode("utf-8", "surrogateescape"))
        os.replace(temporary, path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if size > MAX_PRINTED_OUTPUT:
            handle.seek(size - MAX_PRINTED_OUTPUT)
        tail = handle.read(MAX_PRINTED_OUTPUT).decode("utf-8", "replace")
    if size > MAX_PRINTED_OUTPUT:
        cut = size - MAX_PRINTED_OUTPUT
        return f"... (first {cut} bytes left out; `bflow log` shows all)\n{tail}"
    return tail
