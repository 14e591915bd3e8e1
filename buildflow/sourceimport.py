"""Imports of the project's own modules from their source, never from a cached `.pyc`.

Python takes a `.pyc` as current while the source's mtime, in whole seconds, and its size are
those it recorded. A same-size edit of a module within the second after it was imported (a
`MARK = '!'` made `MARK = '?'` by an editor, a `git checkout`) would then run the old code,
while bflow, which hashes the source, records the new: an incremental build unlike a clean
one. So the `py` task workers and the loader's check of a reference compile the project's
modules from source, which for the small modules of a project costs little; installed
packages, and anything in a hidden directory (`.venv`), keep their `.pyc`. This module is
light: every worker imports it as it starts.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys

from buildflow.scripts import is_project_file, is_project_path, project_prefixes

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: every worker starts so
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import CodeType, ModuleType


class _FromSource(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, seen: dict[str, tuple[int, int, int] | None]
                 ) -> None:
        super().__init__(fullname, path)
        self.seen = seen

    def get_code(self, fullname: str) -> CodeType:
        self.seen[self.path] = stat_of(self.path)  # before the read: an edit after it shows
        return self.source_to_code(self.get_data(self.path), self.path)


def import_fresh(name: str, path: str) -> ModuleType:
    """Module `name` imported again from its source at `path` (never a cached `.pyc`), in
    `sys.modules` in place of the one imported before."""
    import importlib.util

    loader = _FromSource(name, path, {})
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


class ProjectSources:
    """A finder, placed before the path finder, that loads the project's modules from their
    source; every other module it leaves to the finders after it."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.prefix = os.path.join(self.root, "")
        self.prefixes = project_prefixes(root)
        # The project's files that would have changed what an import found had they been
        # there: `NAME.py` and `NAME/__init__.py` where a lookup found nothing (a try-import,
        # an installed module a project file would shadow), `__init__.py` of a namespace
        # package, `NAME/__init__.py` beside a module `NAME.py` found. The loader's caches
        # watch them as they watch the modules found.
        self.absent: set[str] = set()
        # The stat of each module's source as it was read, to tell when one has changed.
        self.seen: dict[str, tuple[int, int, int] | None] = {}

    def find_spec(self, name: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        where = [self.root] if path is None else \
            [entry for entry in path if is_project_file(self.prefix, os.path.join(entry, ""))]
        if not where:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, where, target)
        last = name.rpartition(".")[2]
        if spec is None:
            self.absent.update(os.path.join(entry, file) for entry in where
                               for file in (f"{last}.py", os.path.join(last, "__init__.py")))
            return None
        if spec.origin is None or spec.loader is None:  # a namespace package
            self.absent.update(os.path.join(entry, "__init__.py")
                               for entry in spec.submodule_search_locations or ()
                               if is_project_file(self.prefix, os.path.join(entry, "")))
            return None
        if not isinstance(spec.loader, importlib.machinery.SourceFileLoader) \
                or not is_project_path(self.prefixes, spec.origin or ""):
            return None
        self.absent.update(_shadows(spec.origin or "", last, where,
                                    spec.submodule_search_locations is not None))
        spec.loader = _FromSource(name, spec.origin or "", self.seen)
        spec.cached = None
        return spec

    def changed(self) -> bool:
        """Whether what the imports so far found is no longer what they would find: a module
        read has changed (or gone), or a file has appeared where a lookup found nothing."""
        return any(stat_of(path) != seen for path, seen in self.seen.items()) or \
            any(os.path.exists(path) for path in self.absent)

    def forget(self) -> None:
        """Drop the project's modules imported so far, so that the next imports read them as
        they are now, as a new interpreter would."""
        for name, module in list(sys.modules.items()):
            if isinstance(getattr(getattr(module, "__spec__", None), "loader", None), _FromSource):
                del sys.modules[name]
        self.seen.clear()
        self.absent.clear()
        importlib.invalidate_caches()


def stat_of(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _shadows(origin: str, last: str, where: Sequence[str], package: bool) -> list[str]:
    """The files that would take the place of the module found at `origin`: its name as a
    module or package in a directory searched before its own, and, for a module, a package of
    its name beside it (which Python's finder prefers)."""
    home = os.path.dirname(os.path.dirname(origin) if package else origin)
    shadows = [] if package else [os.path.join(home, last, "__init__.py")]
    for entry in where:
        if os.path.normpath(entry) == os.path.normpath(home):
            break
        shadows += [os.path.join(entry, f"{last}.py"), os.path.join(entry, last, "__init__.py")]
    return shadows


def install(root: str) -> ProjectSources:
    """Put a `ProjectSources` for `root` just before the path finder (after the finders of
    built-in and frozen modules, as the project's files come after those anyway)."""
    finder = ProjectSources(root)
    at = sys.meta_path.index(importlib.machinery.PathFinder) \
        if importlib.machinery.PathFinder in sys.meta_path else len(sys.meta_path)
    sys.meta_path.insert(at, finder)
    return finder


def uninstall(finder: ProjectSources) -> None:
    try:
        sys.meta_path.remove(finder)
    except ValueError:
        pass
