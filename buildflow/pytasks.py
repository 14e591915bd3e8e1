"""`py = "module:function"` at load: import the module as a worker will, check the function,
and hash the module's file and the project's modules that importing it imported, which are
part of the task's action (SPEC §1 "Python tasks").

The import happens in bflow's own process, once per load (the project cache spares it on
later builds), so a reference that cannot work is a load error naming the task, as a misspelt
command cannot be. The function itself runs only in a worker (`pyworkers`).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from typing import NamedTuple

from buildflow import sourceimport
from buildflow.errors import Interrupted, did_you_mean
from buildflow.scripts import ABSENT, is_project_path, local_modules, project_prefixes

# Functions a build script declared with `@project.task`, by reference: its module is the
# running script (`__main__`), which importing by name would run a second time.
DECLARED: dict[str, Callable[..., object]] = {}

# `sys.path` and `sys.modules` are the process's: one load's import at a time (two projects
# loaded in two threads took each other's modules of the same name), and the thread inside
# one is known (`importing`), so that a script it imports never starts a build there.
_IMPORT_LOCK = threading.RLock()
_inside = threading.local()


def importing() -> bool:
    """Whether this thread is importing a project's module for a load: a build script that
    calls `project.main()` as it is imported (no `__main__` guard) must then do nothing, as in
    a worker, or each load would start another."""
    return bool(getattr(_inside, "depth", 0))


class Code(NamedTuple):
    """What a reference resolved to: its module's file and the project's modules it imports,
    each with its content hash, and one digest of them all for the action; or the problem
    (files and digest then empty)."""

    files: tuple[tuple[str, str], ...] = ()
    digest: str = ""
    problem: str = ""


@contextmanager
def imported_from(root: str) -> Iterator[tuple[dict[str, object], set[str]]]:
    """The project root first on `sys.path`, as a worker has it, for the time of an import,
    which finds the project's modules afresh, as a worker does: those imported before (by a
    build script) are put aside for that time, and those the import adds are forgotten
    afterwards, so the next load (of this project after an edit, or of another project with
    a module of the same name) imports them afresh too. Yields the modules imported, by
    name, filled in as the import ends, and the project's files it looked for in vain
    (`ProjectSources.absent`). Only the project's own modules are put aside or
    forgotten: an installed package, even in the project's `.venv` (numpy, whose C parts load
    once per process), stays, as do bflow's own and the running script."""
    with _IMPORT_LOCK:
        _inside.depth = getattr(_inside, "depth", 0) + 1
        try:
            with _imported_from(root) as found:
                yield found
        finally:
            _inside.depth -= 1


@contextmanager
def _imported_from(root: str) -> Iterator[tuple[dict[str, object], set[str]]]:
    prefixes = project_prefixes(root)
    # a copy taken at once: a worker thread may import meanwhile (a build starting Python
    # workers while it expands a task that waited for a directory output)
    aside = {name: module for name, module in list(sys.modules.items())
             if name != "__main__" and name.partition(".")[0] != "buildflow"
             and _is_project_module(module, prefixes)}
    for name in aside:
        del sys.modules[name]
    before = set(sys.modules)
    imported: dict[str, object] = {}
    sys.path.insert(0, root)
    finder = sourceimport.install(root)  # as a worker imports them: never a stale .pyc
    try:
        with contained():
            yield imported, finder.absent
    finally:
        sourceimport.uninstall(finder)
        imported.update((name, sys.modules[name]) for name in set(sys.modules) - before)
        # told while the root is still on sys.path: a namespace package's path is found there
        ours = [name for name, module in imported.items() if _is_project_module(module, prefixes)]
        try:
            sys.path.remove(root)
        except ValueError:
            pass
        for name in ours:
            del sys.modules[name]
        sys.modules.update(aside)


@contextmanager
def contained() -> Iterator[None]:
    """What code run in bflow's own process at load (a module imported, a kind's callable)
    does to the process stays with it: bflow's environment, which its commands and
    conditions get, and stdout, which `--json` keeps for events (a print goes to stderr)."""
    environ = dict(os.environ)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        if os.environ != environ:
            os.environ.clear()
            os.environ.update(environ)


def _is_project_module(module: object, prefixes: tuple[str, ...]) -> bool:
    """A module from a `.py` file of the project, or a package of the project without an
    `__init__.py` (a namespace package): kept, it would hold its submodules as attributes, and
    the next `from tools import helper` would take the old one without importing it."""
    path = getattr(module, "__file__", None)
    if path is None:
        places = list(getattr(module, "__path__", None) or ())
        return bool(places) and all(is_project_path(prefixes, place)
                                    for place in places)
    return isinstance(path, str) and path.endswith(".py") and is_project_path(prefixes, path)


def find(reference: str, root: str
         ) -> tuple[Callable[..., object] | None, str, list[str], set[str]]:
    """The function `reference` names, imported with `root` first on `sys.path`, the file of
    the module that defines it, the files of the project's modules imported with it, and
    those the import looked for in vain; or None and the problem that stops it: the module
    does not import, has no such name, or it is no function. A function a build script
    defines itself is taken as it is, with every module of the project the script imported,
    since a worker imports the script."""
    module_name, _, name = reference.partition(":")
    declared = DECLARED.get(reference)
    if declared is not None and getattr(declared, "__module__", None) == "__main__":
        script = getattr(sys.modules["__main__"], "__file__", None) or ""
        return declared, script, local_modules(root, sys.modules), set()
    try:
        with imported_from(root) as (imported, absent):
            function = getattr(importlib.import_module(module_name), name, None)
            if function is None:
                names = [n for n in vars(sys.modules[module_name]) if not n.startswith("_")]
                return None, f"module '{module_name}' has no function '{name}'" \
                             f"{did_you_mean(name, names)}", [], set()
            defining = sys.modules.get(getattr(function, "__module__", None) or module_name)
    except BaseException as exc:  # noqa: BLE001 - any failure of the user's module, even exit()
        if isinstance(exc, (KeyboardInterrupt, Interrupted)):
            raise
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return None, f"cannot import '{module_name}': {last}", [], set()
    if not callable(function):
        return None, f"'{reference}' is no function but {_an(type(function).__name__)}", [], set()
    return function, getattr(defining, "__file__", None) or "", local_modules(root, imported), \
        absent


def code_of(reference: str, root: str) -> Code:
    """The files of the function `reference` names: its module's and those of the project's
    modules imported with it, with their content hashes; a change to any re-runs the task.
    The digest is the module's own hash when it imports none, else one hash of them all by
    their paths from the root (the same in another checkout)."""
    function, found, helpers, absent = find(reference, root)
    if function is None:
        return Code(problem=found)
    if not found or not os.path.isfile(found):
        return Code(problem=f"'{reference}': cannot find the file that defines it")
    from buildflow.contents import hash_regular_file

    found = os.path.realpath(found)
    files = []
    for path in [found, *sorted(set(helpers) - {found})]:
        try:
            files.append((path, hash_regular_file(path)[0]))
        except OSError as exc:
            return Code(problem=f"'{reference}': cannot read {path}: {exc.strerror}")
    # Watched as the files are, as not there: one made later may change what is imported.
    missing = tuple((path, ABSENT) for path in sorted(absent) if not os.path.lexists(path))
    return Code((*files, *missing), digest_of(files, root))


def digest_of(files: Sequence[tuple[str, str]], root: str) -> str:
    """The digest of a function's module files for its action: the module's own hash when
    it imports none of the project's, else one hash of them all by their paths from the root
    (the same in another checkout)."""
    from buildflow.contents import new_hash

    if len(files) == 1:
        return files[0][1]
    real_root = os.path.realpath(root)
    return new_hash("\0".join(f"{os.path.relpath(path, real_root)}\0{digest}"
                               for path, digest in files).encode()).hexdigest()


def _an(noun: str) -> str:
    """`noun` after its article: "an int", "a str"."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"
