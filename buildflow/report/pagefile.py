"""Writing a report file so that a reader (a browser reloading it, Perfetto) never sees half
of it: a temp file beside it, then a rename (`fs.replace_file`)."""

from __future__ import annotations

from buildflow.fs import replace_file


def write_atomically(path: str, text: str) -> None:
    # not synced: a report is only read, and written again by the next build
    replace_file(path, text.encode("utf-8"), sync=False)
