"""`py = "module:function"` at load: import the module as a worker will, check the function,
and hash the module's file, which is part of the task's action (SPEC §1 "Python tasks").

The import happens in bflow's own process, once per load (the project cache spares it on
later builds), so a reference that cannot work is a load error naming the task, as a misspelt
command cannot be. The function itself runs only in a worker (`pyworkers`).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from buildflow.errors import did_you_mean

# Functions a build script declared with `@project.task`, by reference: its module is the
# running script (`__main__`), which importing by name would run a second time.
DECLARED: dict[str, Callable[..., object]] = {}


class Code(NamedTuple):
    """What a reference resolved to: the module's file and its content hash, or the problem
    (file and hash then empty)."""

    path: str = ""
    digest: str = ""
    problem: str = ""


@contextmanager
def imported_from(root: str) -> Iterator[None]:
    """The project root first on `sys.path`, as a worker has it, for the time of an import;
    the modules of the project that import adds are forgotten afterwards, so the next load
    (of this project after an edit, or of another project with a module of the same name)
    imports them afresh rather than find these."""
    before = set(sys.modules)
    sys.path.insert(0, root)
    try:
        yield
    finally:
        try:
            sys.path.remove(root)
        except ValueError:
            pass
        prefix = os.path.join(os.path.realpath(root), "")
        for name in set(sys.modules) - before:
            path = getattr(sys.modules[name], "__file__", None)
            if isinstance(path, str) and os.path.realpath(path).startswith(prefix):
                del sys.modules[name]


def find(reference: str, root: str) -> tuple[Callable[..., object] | None, str]:
    """The function `reference` names, imported with `root` first on `sys.path`, and the file
    of the module that defines it; or None and the problem that stops it: the module does
    not import, has no such name, or it is no function."""
    module_name, _, name = reference.partition(":")
    function = DECLARED.get(reference)
    try:
        with imported_from(root):
            if function is None:
                function = getattr(importlib.import_module(module_name), name, None)
                if function is None:
                    names = [n for n in vars(sys.modules[module_name]) if not n.startswith("_")]
                    return None, f"module '{module_name}' has no function '{name}'" \
                                 f"{did_you_mean(name, names)}"
            defining = sys.modules.get(getattr(function, "__module__", None) or module_name)
    except BaseException as exc:  # noqa: BLE001 - any failure of the user's module, even exit()
        if isinstance(exc, KeyboardInterrupt):
            raise
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return None, f"cannot import '{module_name}': {last}"
    if not callable(function):
        return None, f"'{reference}' is a {type(function).__name__}, not a function"
    return function, getattr(defining, "__file__", None) or ""


def code_of(reference: str, root: str) -> Code:
    """The file of the module that defines the function `reference` names, with its content
    hash; a change to that file re-runs the task. Other files it imports are not hashed."""
    function, found = find(reference, root)
    if function is None:
        return Code(problem=found)
    if not found or not os.path.isfile(found):
        return Code(problem=f"'{reference}': cannot find the file that defines it")
    from buildflow.contents import hash_regular_file

    try:
        digest, _ = hash_regular_file(found)
    except OSError as exc:
        return Code(problem=f"'{reference}': cannot read {found}: {exc.strerror}")
    return Code(os.path.realpath(found), digest)
