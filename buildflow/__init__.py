"""buildflow: a file-based incremental build tool.

    import buildflow
    project = buildflow.load("Flowfile", overrides={"CC": "clang"})
    result = buildflow.build(project, ["all"], jobs=4)
    result.exit_status, result.tasks["link"].outcome
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["load", "build", "__version__"]

if TYPE_CHECKING:
    from buildflow.engine import build, load


def __getattr__(name: str) -> Any:
    # Lazy, so `bflow --version` does not pay for the engine's imports.
    if name in ("load", "build"):
        from buildflow import engine

        return getattr(engine, name)
    raise AttributeError(name)
