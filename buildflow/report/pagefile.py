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
            replace_file(self.path, _utf8(text), sync=False)
        except OSError as exc:
            if not self.failed:
                self.warn(f"{self.option} {self.path}: cannot write it: "
                          f"{exc.strerror or exc}")
            self.failed = True


def _utf8(text: str) -> bytes:
    """`text` in UTF-8, a file name that is none shown with its bytes escaped (`caf\\xe9.txt`)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace").encode("utf-8")
