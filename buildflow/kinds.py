"""Task kinds: plug-ins that turn a task's own keys into the standard ones (SPEC §1 "Task
kinds"). An installed distribution names a callable under the entry point group
`buildflow.kinds`; a task with `kind = "NAME"` is given its table without `kind` and is
replaced by the table the callable returns, which is then checked like any task's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from buildflow.errors import did_you_mean
from buildflow.sourceimport import import_fresh, stat_of
from buildflow.typecheck import Checker, type_name

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint
    from typing import Any

GROUP = "buildflow.kinds"


def installed() -> dict[str, list[EntryPoint]]:
    """The kinds the installed distributions declare, by name, each with the entry points
    that declare it: more than one where distributions clash (`clash`)."""
    from importlib.metadata import entry_points

    found: dict[str, list[EntryPoint]] = {}
    for entry in entry_points(group=GROUP):
        found.setdefault(entry.name, []).append(entry)
    for entries in found.values():
        if len(entries) > 1:  # named in one order, whatever order sys.path gave
            entries.sort(key=lambda entry: (distribution(entry), entry.value))
    return found


def clash(name: str, entries: list[EntryPoint]) -> str:
    """Why kind `name` cannot be used, declared by each of `entries` (more than one), as
    pytest refuses two plug-ins under one name rather than pick one by install order."""
    declared = [f"{distribution(entry)} ({entry.value})" for entry in entries]
    return (f"kind '{name}' is declared by {len(entries)} installed distributions: "
            f"{', '.join(declared[:-1])} and {declared[-1]}; uninstall all but one of them "
            f"(bflow will not pick one by the order they were found in)")


def distribution(entry: EntryPoint) -> str:
    """The name of the distribution that declares `entry`, as pip names it."""
    dist = getattr(entry, "dist", None)
    name = dist.metadata["Name"] if dist is not None else None
    return name or "?"


def expand(task: str, raw: Mapping[str, Any], check: Checker,
           code: set[str]) -> dict[str, Any] | None:
    """The table of task `task` as its kind makes it, or None after reporting why it cannot
    be made (an unknown kind, one that does not load, raises or returns no table). Adds to
    `code` the Python files the kind's callable comes from (`plugin_files`): the project is
    what they made of it, so a change to them is a change to the project."""
    where = f"tasks.{task}.kind"
    name = check.string(raw["kind"], where)
    if name is None:
        return None
    kinds = installed()
    if name not in kinds:
        known = ", ".join(sorted(kinds)) or "none"
        check.problem(where, f"unknown kind '{name}'{did_you_mean(name, kinds)} (installed "
                             f"kinds: {known}; a kind comes from a package that declares it "
                             f"under the entry point group {GROUP})")
        return None
    if len(kinds[name]) > 1:
        check.problem(where, clash(name, kinds[name]))
        return None
    entry = kinds[name][0]
    from buildflow.pytasks import contained

    try:
        with contained():  # its print and its os.environ stay with it
            make = _loaded(entry, code)
            table = make({key: value for key, value in raw.items() if key != "kind"})
    except KeyError as exc:
        key = exc.args[0] if exc.args else "?"
        check.problem(f"tasks.{task}", f"kind '{name}': missing key {key!r}")
        return None
    except ValueError as exc:
        check.problem(f"tasks.{task}", f"kind '{name}': {exc}")
        return None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plug-in's bug is a load
        # error, not bflow's, as is its exit(), which a `py` module's import reports so too
        check.problem(f"tasks.{task}", f"kind '{name}' ({entry.value}) failed: "
                                       f"{type(exc).__name__}: {exc}")
        return None
    if not isinstance(table, dict):
        check.problem(f"tasks.{task}", f"kind '{name}' ({entry.value}) returned "
                                       f"{type_name(table)}, not a table of task keys")
        return None
    odd = [key for key in table if not isinstance(key, str)]
    if odd:
        check.problem(f"tasks.{task}", f"kind '{name}' ({entry.value}) returned a table with "
                                       f"the key {odd[0]!r}, not a string naming a task key")
        return None
    if "kind" in table:
        check.problem(f"tasks.{task}", f"kind '{name}' ({entry.value}) returned a table with "
                                       "a kind; a kind expands to the standard keys")
        return None
    return table


class _Plugin:
    """What loading a kind's callable imported: its modules' names and their files, with the
    stat each had."""

    def __init__(self, modules: list[str], files: list[str]) -> None:
        self.modules = modules
        self.files = {path: stat_of(path) for path in files}

    def changed(self) -> list[str]:
        """The modules whose files changed since they were imported."""
        changed = {path for path, stat in self.files.items() if stat_of(path) != stat}
        return [name for name in self.modules
                if os.path.realpath(getattr(sys.modules.get(name), "__file__", None) or "")
                in changed]


# Loaded plug-ins by entry point value, kept for the process: a second load (the Python
# API's, `watch`'s) finds its modules imported, and the files they came from.
_PLUGINS: dict[str, _Plugin] = {}


def _loaded(entry: EntryPoint, code: set[str]) -> Callable[[dict[str, Any]], object]:
    """The kind's callable, imported afresh when a file of its plug-in changed since this
    process imported it (the module defining it, and each changed one, are imported again);
    adds its files to `code`."""
    plugin = _PLUGINS.get(entry.value)
    modules = [] if plugin is None else plugin.modules[1:]
    if plugin is not None and (changed := plugin.changed()):
        # from source, as a `.pyc` written within the second of a same-size edit is taken
        # as current; the changed helpers first, then the module defining the callable
        for name in [*(name for name in changed if name != entry.module), entry.module]:
            path = getattr(sys.modules.get(name), "__file__", None)
            if isinstance(path, str) and path.endswith(".py"):
                import_fresh(name, path)
            else:
                sys.modules.pop(name, None)
        plugin = None
    imported = set(sys.modules)
    make: Callable[[dict[str, Any]], object] = entry.load()
    if plugin is None:
        modules = sorted({*modules, *(set(sys.modules) - imported)} - {entry.module})
        plugin = _PLUGINS[entry.value] = _Plugin(
            [entry.module, *modules],
            plugin_files(make, [sys.modules[m] for m in modules if m in sys.modules]))
    code.update(plugin.files)
    code.update(declaration_file(entry))
    return make


def declaration_file(entry: EntryPoint) -> list[str]:
    """The `entry_points.txt` that declares `entry`, when its distribution is a directory
    on disk: pointed at another callable, or gone with an uninstall that leaves the sources
    (an editable install's), the project is no longer what the kind made of it."""
    directory = getattr(getattr(entry, "dist", None), "_path", None)  # PathDistribution's
    if directory is None:
        return []
    path = os.path.join(os.fspath(directory), "entry_points.txt")
    return [os.path.realpath(path)] if os.path.isfile(path) else []


def plugin_files(make: object, loaded: list[object]) -> list[str]:
    """The Python source files of the module defining `make` and of the modules `loaded`
    with it (its plug-in's own helpers, and whatever else loading it first imported)."""
    modules = [sys.modules.get(getattr(make, "__module__", None) or ""), *loaded]
    files = (getattr(module, "__file__", None) for module in modules)
    return [os.path.realpath(f) for f in files if isinstance(f, str) and f.endswith(".py")]
