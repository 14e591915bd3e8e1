"""One module per subcommand; each `run` takes explicit arguments and returns an exit code.
The CLI imports only the one it runs."""

from __future__ import annotations

import os
from collections.abc import Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from buildflow.model import Project


def load_project(*, file: str | None, overrides: Mapping[str, str]) -> Project:
    """Find (or take) the Flowfile and load it, with command-line var overrides; from the
    loaded-project cache when nothing it depends on has changed."""
    from buildflow import flowcache
    from buildflow.flowfile import resolve_path
    from buildflow.project import load

    return flowcache.load(resolve_path(file, None), overrides, load)


def invocation_dir() -> str:
    return os.getcwd()

