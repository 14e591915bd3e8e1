"""The Python files a loaded project depends on besides its Flowfile (`Project.code`), and the
projects declared by the running build script (`buildflow.Project.main`).

A project written in Python has no Flowfile: the script's path stands for one. The loader
takes its declarations from `SCRIPTS`, and the caches of the loaded project (the project cache
and the proof) take their printed form for the Flowfile's bytes, so the same declarations are
the same project whatever the script computed them from (a glob, the environment). The script
and the modules it imported from the project are `code`, checked by content as the modules of
`py` tasks are. This module is light: the no-op fast path imports it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (docs/speed.md)
if TYPE_CHECKING:
    from collections.abc import Mapping

    from buildflow.declare import Declared


SCRIPTS: dict[str, Declared] = {}  # by the script's real path


def flowfile_bytes(path: str) -> bytes:
    """The bytes the caches key a project on: a Flowfile's, or a declared script's text."""
    declared = SCRIPTS.get(path)
    if declared is not None:
        return declared.text
    with open(path, "rb") as handle:
        return handle.read()


ABSENT = ""  # the "hash" in `code` of a file that must not be there (`sourceimport`)


def code_holds(code: tuple[tuple[str, str], ...]) -> bool:
    """Whether each file of `code` (path, content hash) still has that content, and each
    `ABSENT` one is still not there. Hashed, not statted: they are few and small, and a stat
    could miss an edit within its mtime's tick."""
    if not code:
        return True
    from buildflow.contents import hash_regular_file

    try:
        return all(not os.path.lexists(path) if digest == ABSENT
                   else hash_regular_file(path)[0] == digest for path, digest in code)
    except OSError:
        return False


def hashed(paths: list[str]) -> tuple[tuple[str, str], ...]:
    """`paths` with their content hashes, as `code` holds them."""
    from buildflow.contents import hash_regular_file

    return tuple(sorted((path, hash_regular_file(path)[0]) for path in set(paths)))


def local_modules(root: str, modules: Mapping[str, object]) -> list[str]:
    """The files of the imported `modules` that are the project's own (`is_project_path`),
    where they really are."""
    found = []
    prefixes = project_prefixes(root)
    for module in list(modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py") and is_project_path(prefixes, path):
            found.append(os.path.realpath(path))
    return found


def project_prefixes(root: str) -> tuple[str, ...]:
    """The root as it is spelled and where it really is, each with a separator."""
    return tuple(dict.fromkeys(os.path.join(place, "") for place in
                               (os.path.abspath(root), os.path.realpath(root))))


def is_project_path(prefixes: tuple[str, ...], path: str) -> bool:
    """Whether `path` is the project's own file (`is_project_file`) as it is found, a symlink
    under the root included (`helper.py -> ../shared/helper.py`), or where it really is."""
    return any(is_project_file(prefix, place) for prefix in prefixes
               for place in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))))


def is_project_file(prefix: str, path: str) -> bool:
    """Whether `path` (a real path) is the project's own file: under `prefix` (the real root
    and a separator), not in a hidden directory (`.venv`, the cache dir) nor in an installed
    package's directory."""
    if not path.startswith(prefix):
        return False
    parts = path[len(prefix):].split(os.sep)[:-1]
    return not any(p.startswith(".") or p in ("site-packages", "dist-packages") for p in parts)
