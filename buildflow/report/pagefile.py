"""Writing a report file so that a reader (a browser reloading it, Perfetto) never sees half
of it: a temp file beside it, then a rename (`fs.replace_file`)."""

from __future__ import annotations

from collections.abc import Callable

from buildflow.fs import replace_file


class ReportFile:
    """The file an option (`--trace`, `--report`) names, written whole each time. A write
    that fails (a name too long, a directory gone or read-only) is a warning, given once:
    the build goes on, and its exit status is its own."""

    def __init__(self, path: str, option: str, warn: Callable[[str], None]) -> None:
        self.path = path
        self.option = option
        self.warn = warn
        self.failed = False

    def write(self, text: str) -> None:
        try:
            # not synced: a report is only read, and written again by the next build
            replace_file(self.path, text.encode("utf-8"), sync=False)
        except OSError as exc:
            if not self.failed:
                self.warn(f"{self.option} {self.path}: cannot write it: "
                          f"{exc.strerror or exc}")
            self.failed = True
