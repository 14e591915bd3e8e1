"""Projects written in Python (SPEC §5): `buildflow.Project(root)`, tasks declared with the
`@project.task` decorator or `project.add`, and `project.main()`, the whole bflow command line
on that project.

A declared project is a Flowfile's table built in Python: `main()` hands it to the loader under
the script's path (`scripts.SCRIPTS`) and runs the CLI with `-f SCRIPT`, so it is checked,
built, cached and watched by the same code as a Flowfile, on the same state. A decorated
function becomes a `py` task whose reference is the script's module (`build:compile` for
`build.py` in the root): a worker imports the script by that name, which declares the tasks
again but, under `if __name__ == "__main__":` or not, never starts a build there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from buildflow import pytasks, scripts
from buildflow.errors import EXIT_USAGE

Function = TypeVar("Function", bound=Callable[..., object])


class Declared(NamedTuple):
    """A project a build script declared, as the loader and the caches take it."""

    data: Mapping[str, Any]  # shaped like a Flowfile's TOML
    root: str
    text: bytes  # the declarations printed: what stands for a Flowfile's bytes
    code: tuple[tuple[str, str], ...]  # the script and its local imports, with their hashes
    problems: tuple[str, ...] = ()  # mistakes in the declarations: load errors


class Project:
    """A project declared in Python. `root` is taken relative to the directory of the script
    that makes the Project (as a Flowfile's paths are to the Flowfile), and defaults to it.
    A mistake in a declaration is kept, not raised, and `main()` reports it as a load error
    naming the script (exit 2), with the Flowfile's other mistakes, as a Flowfile's are."""

    def __init__(self, root: str | os.PathLike[str] = ".", *,
                 vars: Mapping[str, str] | None = None,
                 settings: Mapping[str, Any] | None = None) -> None:
        self.script = _calling_script()
        base = os.path.dirname(self.script) if self.script else os.getcwd()
        self.root = os.path.realpath(os.path.join(base, os.fspath(root)))
        self.vars = dict(vars or {})
        self.settings = dict(settings or {})
        self.tasks: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        self._functions: dict[str, Callable[..., object]] = {}  # by reference

    def add(self, name: str, **keys: Any) -> None:
        """Declare task `name` with a Flowfile's task keys (`cmd=`, `inputs=`, ...); keys
        given as None are left out."""
        if name in self.tasks:
            self.problems.append(f"tasks.{name}: declared twice; give each task its own name")
            return
        self.tasks[name] = {key: list(value) if isinstance(value, tuple) else value
                            for key, value in keys.items() if value is not None}

    def task(self, function: Function | None = None, *, name: str | None = None,
             inputs: str | Sequence[str] | None = None,
             outputs: str | Sequence[str] | None = None,
             foreach: str | Sequence[str] | None = None,
             deps: str | Sequence[str] | None = None,
             when: Mapping[str, Any] | None = None, **keys: Any) -> Any:
        """Declare the decorated function as a `py` task, named after it unless `name` is
        given, described by the first line of its docstring unless `description` is; other
        Flowfile keys (`env`, `timeout`, ...) as keywords. Used bare (`@project.task`) too."""
        def declare(function: Function) -> Function:
            reference = self._reference(function)
            if reference is None:
                return function
            if self._functions.setdefault(reference, function) is not function:
                self.problems.append(
                    f"tasks.{name or function.__name__}: two functions are declared as tasks "
                    f"by the name '{reference}' (defined twice, or in a loop): a worker "
                    "imports the script and finds the last one only; give each its own name "
                    "at the top level")
                return function
            pytasks.DECLARED[reference] = function
            doc = (function.__doc__ or "").strip().split("\n")[0]
            keys.setdefault("description", doc or None)
            self.add(name or function.__name__, py=reference, inputs=inputs, outputs=outputs,
                     foreach=foreach, deps=deps, when=when, **keys)
            return function

        if function is not None and not callable(function):
            self.problems.append(f"@project.task({function!r}): the decorator takes keywords "
                                 f"only (@project.task(name={function!r}))")
            return lambda decorated: decorated
        return declare if function is None else declare(function)

    def main(self, argv: Sequence[str] | None = None) -> None:
        """Run the bflow command line (`sys.argv[1:]` by default: `python build.py watch`)
        on this project and exit with its status. In a worker or a load importing the script
        for its functions, nothing."""
        if _in_worker():
            return
        from buildflow import cli

        if not self.script and not os.path.isfile(sys.argv[0]):
            print("bflow: error: project.main() runs the project of the script it is in "
                  "(python build.py); with python -c or a script on stdin there is none: write "
                  "it to a file", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        path = os.path.realpath(self.script or sys.argv[0])
        data = {"settings": self.settings, "vars": self.vars, "tasks": self.tasks}
        code = scripts.hashed([path, *scripts.local_modules(self.root, sys.modules)])
        scripts.SCRIPTS[path] = Declared(data, self.root, repr((self.root, data)).encode(),
                                         code, tuple(self.problems))
        sys.exit(cli.main(["-f", path, *(sys.argv[1:] if argv is None else argv)]))

    def _reference(self, function: Callable[..., object]) -> str | None:
        """The "module:function" a worker imports `function` by; None, with the problem
        kept, when a worker could not."""
        module = function.__module__
        qualname = function.__qualname__
        problem = ""
        if "." in qualname or "<" in qualname:
            problem = (f"{qualname}: a task's function must be defined at the top level of "
                       "its module, where a worker can import it")
        elif module == "__main__":
            script = os.path.realpath(self.script or sys.argv[0])
            relative = os.path.relpath(script, self.root)
            module = relative[:-3].replace(os.sep, ".")
            stem = os.path.basename(relative)[:-3]
            if relative.startswith("..") or not relative.endswith(".py"):
                problem = (f"{script}: a build script with task functions must be inside the "
                           f"project root {self.root}, where a worker imports it")
            elif not all(part.isidentifier() for part in module.split(".")) or "." in stem:
                problem = (f"{relative}: a worker imports a build script's task functions as "
                           f"the module '{module}', which is no name Python can import; name "
                           f"the script like a module (e.g. "
                           f"{stem.replace('-', '_').replace('.', '_')}.py)")
            elif module in sys.modules:  # `site.py`: the worker would get Python's own
                problem = (f"{relative}: a worker imports a build script's task functions as "
                           f"the module '{module}', and Python has one of that name already "
                           f"({getattr(sys.modules[module], '__file__', None) or 'built in'});"
                           f" name the script otherwise (e.g. build_{stem}.py)")
        elif not _importable_from_root(function, self.root):
            problem = (f"{module}.{qualname}: its module is not in the project root "
                       f"{self.root}, nor installed, so a worker cannot import it; move "
                       f"{getattr(sys.modules.get(module), '__file__', module)} into the root")
        if problem:
            self.problems.append(problem)
            return None
        return f"{module}:{qualname}"


def _importable_from_root(function: Callable[..., object], root: str) -> bool:
    """Whether a worker, which imports with the root first on `sys.path`, finds the module of
    `function`: one under the root, or reached from a `sys.path` entry other than the running
    script's own directory (an installed package). A module beside a script outside the root
    is found only by the script."""
    path = getattr(sys.modules.get(function.__module__), "__file__", None)
    if not isinstance(path, str):
        return True  # built in, or made on the fly: nothing to tell from
    path = os.path.realpath(path)
    script_dir = os.path.realpath(sys.path[0]) if sys.path and sys.path[0] else None
    places = [os.path.realpath(root)] + [os.path.realpath(entry) for entry in sys.path[1:]
                                         if entry and os.path.realpath(entry) != script_dir]
    return any(path.startswith(os.path.join(place, "")) for place in places)


def _calling_script() -> str:
    """The file of the code that made the Project (two frames up), "" when there is none."""
    frame = sys._getframe(2)
    path = frame.f_globals.get("__file__")
    return os.path.realpath(path) if isinstance(path, str) else ""


def _in_worker() -> bool:
    """Whether the script is being imported for its functions, by a worker or by a load."""
    worker = sys.modules.get("buildflow.pyworker")
    return bool(getattr(worker, "IN_WORKER", False)) or pytasks.importing()
