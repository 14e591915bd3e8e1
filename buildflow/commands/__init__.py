"""One module per subcommand; each `run` takes explicit arguments and returns an exit code.
The CLI imports only the one it runs."""

from __future__ import annotations

import os


def invocation_dir() -> str:
    return os.getcwd()

