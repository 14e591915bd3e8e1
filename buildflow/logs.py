"""Where a task's saved output lives: one file per task under `<cache_dir>/logs/`.

Task names may hold `/` and `:`, so file names are made safe (and kept unique by a short hash),
and no task name can reach outside the logs directory.
"""

from __future__ import annotations

import re
from pathlib import Path

from buildflow.hashing import text_digest

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def log_path(cache_dir: Path, task_name: str) -> Path:
    safe = _UNSAFE.sub("_", task_name).strip("._")[:80] or "task"
    return cache_dir / "logs" / f"{safe}-{text_digest(task_name)[:8]}.log"
