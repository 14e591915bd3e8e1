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
from buildflow.typecheck import Checker, type_name

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint
    from typing import Any

GROUP = "buildflow.kinds"


def installed() -> dict[str, EntryPoint]:
    """The kinds the installed distributions declare, by name."""
    from importlib.metadata import entry_points

    return {entry.name: entry for entry in entry_points(group=GROUP)}


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
    entry = kinds[name]
    try:
        imported = set(sys.modules)
        make: Callable[[dict[str, Any]], object] = entry.load()
        code.update(plugin_files(make, [sys.modules[m] for m in set(sys.modules) - imported]))
        code.update(declaration_file(entry))
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
