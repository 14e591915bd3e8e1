"""One module per subcommand; each `run` takes explicit arguments and returns an exit code."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from types import ModuleType

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


_COMMANDS = ("build", "clean", "init", "listing", "log", "status", "validate")
__all__ = [*_COMMANDS, "load_project"]


def __getattr__(name: str) -> ModuleType:
    # Each subcommand is imported when used, so a build does not pay for the others.
    if name in _COMMANDS:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)
