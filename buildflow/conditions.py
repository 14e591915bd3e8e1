"""`when`: the conditions under which a task runs at all (SPEC §1 "Conditions").

A condition is not staleness: a task whose condition fails is skipped, whatever its record
says, and keeps that record. So this module answers only "may it run, and if not, why", and the
scheduler asks it before it asks the decision.
"""

from __future__ import annotations

import os
import posixpath
import sys
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

from buildflow.errors import did_you_mean
from buildflow.typecheck import Checker, type_name

if TYPE_CHECKING:
    from typing import Any

    from buildflow.fs import FileSystem
    from buildflow.model import Task
    from buildflow.signals import Flag

KEYS = ("platform", "env", "exists", "cmd")
# `sys.platform` without its digits on the systems Python runs on: a name outside these (a
# typo, `Linux`) would skip its task on every machine, silently.
PLATFORMS = frozenset({"aix", "android", "cygwin", "darwin", "dragonfly", "emscripten",
                       "freebsd", "gnu", "haiku", "hp-ux", "ios", "linux", "msys", "netbsd",
                       "openbsd", "sunos", "wasi", "win"})
Conditions = tuple[tuple[str, tuple[str, ...]], ...]


def parse(raw: Any, where: str, check: Checker) -> Conditions:
    """The `when` table as (key, values) pairs in KEYS order; each key takes a string or a
    list of strings (`cmd` one command)."""
    if not isinstance(raw, dict):
        check.problem(where, f"expected a table such as {{ env = \"CI\" }}, got {type_name(raw)}")
        return ()
    check.keys(raw, where, KEYS)
    found = []
    for key in KEYS:
        if key not in raw:
            continue
        said = len(check.problems)
        values = (check.string(raw[key], f"{where}.{key}") or "",) if key == "cmd" \
            else check.strings(raw[key], f"{where}.{key}")
        if len(check.problems) > said:  # of the wrong type: "empty" would only follow
            continue
        if not values or not all(v.strip() for v in values):
            check.problem(f"{where}.{key}", "must not be empty")
            continue
        if key == "platform":
            known = PLATFORMS | {this_platform()}
            for value in values:
                if value not in known:
                    check.problem(f"{where}.platform",
                                  f"'{value}' is no platform Python names"
                                  f"{did_you_mean(value.lower(), known)} (`sys.platform` "
                                  f"without its digits: {', '.join(sorted(known))})")
        if key == "env":
            for value in values:
                if not value.removeprefix("!").isidentifier():
                    check.problem(f"{where}.env", f"'{value}' is not a variable name (write "
                                                  "\"NAME\", or \"!NAME\" for unset or empty)")
        found.append((key, values))
    return tuple(found)


def this_platform() -> str:
    """`sys.platform` without its digits, as `when.platform` names it ("linux", "darwin")."""
    return sys.platform.rstrip("0123456789")


def run_quietly(command: str, cwd: str, env: Mapping[str, str], shell: str,
                stop: Flag | None = None) -> int:
    """The exit status of `command` run by `shell`, its output discarded. Once `stop` is set
    (the build interrupted), or Ctrl-C or SIGTERM stops bflow (`status`, `-n`), its whole
    process group is killed instead of waited for."""
    from buildflow.signals import run_alone

    try:
        return run_alone([shell, "-c", command], cwd, env, stop=stop)[0]
    except OSError:
        return 127


class Gate:
    """Checks the `when` of tasks during one build, in the environment a command of the task
    gets: a `cmd` runs once per task (once for all the instances of a foreach), in the project
    root."""

    def __init__(self, root: str, fs: FileSystem, environ: Mapping[str, str] = os.environ,
                 run: Callable[[str, str, Mapping[str, str], str], int] = run_quietly,
                 gone: Collection[str] = frozenset()) -> None:
        self.root = root
        self.fs = fs  # the project's disk, rooted at `root`, where `exists` looks
        self.gone = gone  # files taken as gone: those the build removes first (`as_built`)
        self.run = run
        self.environ = environ
        self._cmd_results: dict[str, int] = {}  # task (base) name -> the command's exit status

    def failing(self, task: Task) -> str:
        """The first condition of `task` that does not hold, as the reason it is skipped
        ("when.env CI is not set"); "" when all hold."""
        environ = {**self.environ, **dict(task.env)} if task.env else self.environ
        for key, values in task.when:
            if key == "platform" and this_platform() not in values:
                return f"when.platform is {this_platform()}, not {' or '.join(values)}"
            if key == "env":
                for name in values:
                    value = environ.get(name.removeprefix("!"), "")
                    if name.startswith("!") and value:
                        return f"when.env {name[1:]} is set"
                    if not name.startswith("!") and not value:
                        return f"when.env {name} is not set"
            if key == "exists":
                for path in values:
                    if not self._exists(path):
                        return f"when.exists {path} does not exist"
            if key == "cmd":
                if task.base not in self._cmd_results:
                    self._cmd_results[task.base] = self.run(values[0], self.root, environ,
                                                            task.shell)
                status = self._cmd_results[task.base]
                if status != 0:
                    return f"when.cmd exited {status}: {values[0]}"
        return ""

    def _exists(self, path: str) -> bool:
        """Whether anything is at `path`, a dangling link too (as `os.path.lexists`)."""
        if self.gone and posixpath.normpath(path) in self.gone:
            return False
        try:
            return self.fs.stat(path) is not None or self.fs.link_target(path) is not None
        except OSError:  # a directory on the way cannot be searched
            return False
