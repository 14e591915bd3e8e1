"""Writing a report file so that a reader (a browser reloading it, Perfetto) never sees half
of it: a temp file beside it, then a rename."""

from __future__ import annotations

import os


def write_atomically(path: str, text: str) -> None:
    name = f".{os.path.basename(path)}.{os.getpid()}.tmp"
    temp = os.path.join(os.path.dirname(path) or ".", name)
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
