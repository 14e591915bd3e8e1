"""The paths git's index holds unmerged (in conflict) that `bflow status --outputs` would
read: `git checkout-index` writes none of them into the copy it builds, so an input in
conflict would be said to be on no disk, or left out of a glob's matches, silently. The copy's
project loads as if they were resolved, and a task to build that reads one is refused."""

from __future__ import annotations

from collections.abc import Iterable

from buildflow.errors import UsageError
from buildflow.fs import LocalFileSystem, Stat
from buildflow.locate import shown
from buildflow.model import Project


class Disk(LocalFileSystem):
    """The copy at `root`, with each of the paths the index holds `unmerged` (from `root`) as
    a file there, and the directories on its way: the project loads as if they were resolved,
    so that an input naming one, or a glob or a foreach matching one, is found, for
    `refuse_inputs` to name. Only the load looks: the build is of the copy itself."""

    def __init__(self, root: str, unmerged: Iterable[str]) -> None:
        super().__init__(root)
        self.entries: dict[str, dict[str, bool]] = {}  # directory -> name -> is a directory
        for path in unmerged:
            parent, _, name = path.rpartition("/")
            self.entries.setdefault(parent, {}).setdefault(name, False)
            while parent:  # the directories on its way, which the copy may lack
                parent, _, name = parent.rpartition("/")
                self.entries.setdefault(parent, {})[name] = True

    def stat(self, path: str) -> Stat | None:
        found = super().stat(path)
        if found is None:
            parent, _, name = path.rpartition("/")
            is_dir = self.entries.get(parent, {}).get(name)
            if is_dir is not None:
                return Stat(size=0, mtime_ns=0, inode=0, is_dir=is_dir)
        return found

    def list_dir(self, path: str) -> list[tuple[str, bool]]:
        added = self.entries.get(path, {})
        try:
            listed = super().list_dir(path)
        except OSError:
            if not added:
                raise
            listed = []
        on_disk = {name for name, _ in listed}
        return [*listed, *((name, is_dir) for name, is_dir in added.items()
                           if name not in on_disk)]


def refuse_inputs(copy: Project, names: Iterable[str], unmerged: set[str],
                  flowfile: str) -> None:
    """A UsageError naming each input of the tasks `names` of `copy` (loaded on a `Disk`, from
    the project's `flowfile`) that the index holds unmerged: no commit holds it yet, and the
    copy lacks it. One a task writes is left to the comparison, which names it as an output
    in conflict."""
    read: dict[str, str] = {}  # an unmerged input -> the first task that reads it
    for name in names:
        for file in copy.tasks[name].inputs:
            if file in unmerged and copy.graph.producer_of(file) is None:
                read.setdefault(file, name)
    if read:
        raise UsageError("\n".join(
            f"{shown(flowfile)}: input '{file}' of task '{name}' is unmerged in git's index (in "
            "conflict), and bflow status --outputs builds a copy of what the index holds "
            f"(resolve the conflict, then git add {file})" for file, name in sorted(read.items())))
