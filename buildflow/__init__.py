"""buildflow: a file-based incremental build tool.

    import buildflow
    project = buildflow.load("Flowfile", overrides={"CC": "clang"})
    result = buildflow.build(project, ["all"], jobs=4)
    result.exit_status, result.tasks["link"].outcome

    project = buildflow.from_dict({"tasks": {"hi": {"cmd": "echo hi > {output}",
                                                    "outputs": ["hi.txt"]}}}, root=".")

A project written in Python, run as `python build.py [bflow's arguments]`:

    project = buildflow.Project()

    @project.task(inputs="data.csv", outputs="summary.txt")
    def summarize(ctx: buildflow.Context) -> None: ...

    if __name__ == "__main__":
        project.main()
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

__version__ = "0.1.0"
__all__ = ["load", "from_dict", "build", "Project", "Context", "__version__"]

if TYPE_CHECKING:
    from buildflow.declare import Project
    from buildflow.engine import build, load
    from buildflow.project import from_dict
    from buildflow.pyworker import Context


def __getattr__(name: str) -> object:
    # Lazy, so `bflow --version` does not pay for the engine's imports.
    if name in ("load", "build"):
        from buildflow import engine

        return getattr(engine, name)
    if name == "from_dict":
        from buildflow.project import from_dict

        return from_dict
    if name == "Project":
        from buildflow.declare import Project

        return Project
    if name == "Context":
        from buildflow.pyworker import Context

        return Context
    raise AttributeError(f"module 'buildflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API, which `__getattr__` imports when first used (for `dir()` and completion)."""
    return sorted(__all__)
