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

from buildflow.errors import did_you_mean
from buildflow.typing_lite import NamedTuple

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
def root_first(root: str) -> Iterator[None]:
    """The project root first on `sys.path`, as a worker has it, for the time of an import."""
    sys.path.insert(0, root)
    try:
        yield
    finally:
        try:
            sys.path.remove(root)
        except ValueError:
            pass


def find(reference: str, root: str) -> tuple[Callable[..., object] | None, str]:
    """The function `reference` names, imported with `root` first on `sys.path`, or the
    problem that stops it: the module does not import, has no such name, or it is no function."""
    if reference in DECLARED:
        return DECLARED[reference], ""
    module_name, _, name = reference.partition(":")
    try:
        with root_first(root):
            module = importlib.import_module(module_name)
    except BaseException as exc:  # noqa: BLE001 - any failure of the user's module, even exit()
        if isinstance(exc, KeyboardInterrupt):
            raise
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return None, f"cannot import '{module_name}': {last}"
    function = getattr(module, name, None)
    if function is None:
        names = [n for n in vars(module) if not n.startswith("_")]
        return None, f"module '{module_name}' has no function '{name}'" \
                     f"{did_you_mean(name, names)}"
    if not callable(function):
        return None, f"'{reference}' is a {type(function).__name__}, not a function"
    return function, ""


def code_of(reference: str, root: str) -> Code:
    """The file of the module that defines the function `reference` names, with its content
    hash; a change to that file re-runs the task. Other files it imports are not hashed."""
    function, problem = find(reference, root)
    if function is None:
        return Code(problem=problem)
    module = sys.modules.get(getattr(function, "__module__", "") or "")
    path = getattr(module, "__file__", None) or getattr(
        getattr(function, "__code__", None), "co_filename", "")
    if not path or not os.path.isfile(path):
        return Code(problem=f"'{reference}': cannot find the file that defines it")
    from buildflow.contents import hash_regular_file

    try:
        digest, _ = hash_regular_file(path)
    except OSError as exc:
        return Code(problem=f"'{reference}': cannot read {path}: {exc.strerror}")
    return Code(os.path.realpath(path), digest)
