"""A cache of the loaded Project, so a build skips TOML parsing and glob expansion.

Parsing a 10,000-task Flowfile takes half a second; this loads the same Project from a marshal
file in the cache dir in a fraction of that. An entry is served only when a fresh load would
give the same Project, which depends on exactly these things:

- the Flowfile's resolved path and bytes, the command-line overrides, and the code (bflow's
  version and the size and mtime of the loader's modules, so an upgrade or an edit of bflow
  itself never meets an old entry);
- the listing (names, and file or directory) of every directory the loader scanned for globs,
  so a file added, removed or renamed under a glob invalidates it;
- for each input outside those directories, that it still exists and is not a directory (the
  loader rejects a missing input and a directory input);
- that no directory on the way to an output has become a symlink leading out of the root (the
  loader rejects an output outside it), nor one on the way to a task's `cwd` a symlink at all
  (paths are rebased on the directory it really is).

The entry is written only when the Flowfile read the same before and after the load and no
scanned directory changed since shortly before it, so a change racing the load cannot be
recorded as seen. Anything unreadable, corrupt or from another version is a miss.

An entry is frames as the state log's (`frames`): the key, the basis and the project without
its tasks, then the tasks in parts of at most PART, each marshalled as it is written, so that
storing a large project costs memory for one part, not for a copy of all of it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import TYPE_CHECKING, NamedTuple

from buildflow.frames import decode_at, encode as frame, size_at
from buildflow.gcpause import paused
from buildflow.locate import canonical_flowfile
from buildflow.graph import Graph
from buildflow.fastpath.formats import PROJECT_CACHE_FILE as FILE_NAME
from buildflow.fastpath.formats import PROJECT_CACHE_FORMAT as FORMAT
from buildflow.fastpath.identity import Listing, cache_dir_of, listing, project_key
from buildflow.scripts import code_holds, flowfile_bytes
from buildflow.model import Project, Settings, tasks_from_rows
from buildflow.racy import trusted
from buildflow.rootcheck import first_escape, first_link, is_input_file, output_prefixes

if TYPE_CHECKING:
    from typing import Any

PART = 2048  # tasks in one frame of an entry


class Basis(NamedTuple):
    """What a project was checked against when it was loaded or stored: a fresh load with the
    same key, listings and lone inputs gives the same project."""

    key: tuple[object, ...]
    skip: frozenset[str]
    listings: dict[str, Listing]
    lone_inputs: tuple[str, ...]
    output_prefixes: tuple[str, ...]  # see `rootcheck.output_prefixes`
    cwd_prefixes: tuple[str, ...]  # the same over the tasks' `cwd`s; see `rootcheck.first_link`
    code: tuple[tuple[str, str], ...] = ()  # `Project.code`: Python files, with their hashes

    def holds(self, root: str) -> bool:
        """Whether a fresh load would still find the directories and lone inputs as they were,
        no output's directory leading out of the root, no `cwd` become a symlink, and the
        Python files unchanged."""
        return all(listing(root, d, self.skip) == seen for d, seen in self.listings.items()) \
            and self.holds_beside_listings(root)

    def holds_beside_listings(self, root: str) -> bool:
        """`holds`, but for the listings (which `moved` has just taken)."""
        return (all(is_input_file(os.path.join(root, p)) for p in self.lone_inputs)
                and first_escape(root, self.output_prefixes) is None
                and first_link(root, self.cwd_prefixes) is None
                and code_holds(self.code))

    def moved(self, project: Project) -> Basis | None:
        """This basis with the directories as they list now, when what they gained or lost
        since (written by a build) changes nothing a load sees: files `project` declares as
        outputs, which globs match whether they are on disk or not, and files no glob of it
        matches and no task names as an input (a depfile beside the `.o` files `obj/*.o`
        reads). A fresh load now gives the same project, but for the directories it reads: a
        directory new below one, when it holds only such files and directories, is read as
        a fresh load reads it, and the basis lists exactly those (`Project.globbed_dirs` of
        the project it stands for are its listings' keys). None when anything else changed:
        a source added or removed, a file a glob matches, a directory gone, a link."""
        from buildflow.globbing import GlobsByDirectory  # only a build that wrote needs it

        globs = GlobsByDirectory((glob, True) for glob in project.globs)
        outputs = project.graph.producer

        def unseen(path: str) -> bool:
            """Whether a fresh load is the same whether `path` is there or not."""
            return path in outputs or (path not in project.sources
                                       and not any(globs.matching(path)))

        listings = dict(self.listings)
        for rel, seen in self.listings.items():
            now = listing(project.root, rel, self.skip)
            if now == seen:
                continue
            files, dirs, dangling = seen or (frozenset(), frozenset(), frozenset())
            if now is None or now[2] != dangling or not dirs <= now[1] or \
                    not all(unseen(_joined(rel, name)) for name in files ^ now[0]):
                return None
            listings[rel] = now
            if not all(self._list_new(project.root, _joined(rel, name), listings, unseen)
                       for name in now[1] - dirs):
                return None
        if listings == self.listings:
            return self
        read = listings.keys() if listings.keys() == self.listings.keys() \
            else _dirs_read(project, self.skip)
        if not read <= listings.keys():
            return None  # read through a way no listing here checked
        return self._replace(listings={rel: listings[rel] for rel in read})

    def _list_new(self, root: str, rel: str, listings: dict[str, Listing],
                  unseen: Callable[[str], bool]) -> bool:
        """Add the listings of new directory `rel` and those below it to `listings`, when
        they hold only files no glob's matches change by, and are no links."""
        seen = listing(root, rel, self.skip)
        if seen is None or seen[2] or rel in listings or \
                os.path.islink(os.path.join(root, rel)) or \
                not all(unseen(_joined(rel, name)) for name in seen[0]):
            return False
        listings[rel] = seen
        return all(self._list_new(root, _joined(rel, name), listings, unseen)
                   for name in seen[1])


def _dirs_read(project: Project, skip: frozenset[str]) -> set[str]:
    """The directories a load of `project` now reads for its globs (a new one below a
    directory its globs walk; not a hidden one, which a walk leaves out): its globs asked
    again of the disk, as the loader asks them."""
    from buildflow.fs import LocalFileSystem
    from buildflow.globbing import DiskIndex, literal_start

    disk = DiskIndex(LocalFileSystem(project.root), skip=skip)
    for glob in project.globs:
        disk.files_for(glob, literal_start(glob))
    return disk.dirs_read


def _joined(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


class Loaded:
    """A project as the CLI loaded it, with what the caches know of it: its `basis` (None
    when nothing can be said of it cheaply), and, when no cache dir existed to store its
    entry in, what the load saw, to store once a build has made one (`settle`)."""

    def __init__(self, project: Project, basis: Basis | None = None, cache_file: str = "",
                 pending: tuple[tuple[object, ...], frozenset[str], dict[str, Listing]]
                 | None = None, *, from_cache: bool = False) -> None:
        self.project = project
        self.basis = basis
        self._cache_file = cache_file
        self._pending = pending  # the key, and the directories skipped and listed
        self.from_cache = from_cache  # served by the cache, not loaded afresh

    def settle(self, wrote: bool) -> None:
        """After a build, which `wrote` outputs or not: store the entry the load could not
        (no cache dir yet: else the first build after a clean leaves the next one a miss), and
        the basis moved to the outputs the build wrote where globs look (else the first build
        after a clean, or after a source is added, leaves the next one to load in full and
        with no proof)."""
        if self._pending is not None:
            if not os.path.isdir(os.path.dirname(self._cache_file)):
                return
            basis, stored = _basis(self.project, *self._pending), False
            self._pending = None
        elif self.basis is not None and wrote:
            basis, stored = self.basis, True
        else:
            return
        moved = basis.moved(self.project)
        if moved is None or (moved is basis and stored):
            return  # the entry stored holds, or none can (the proof will find out)
        project = self.project._replace(globbed_dirs=frozenset(moved.listings))
        if moved.holds_beside_listings(project.root) and \
                _write(self._cache_file, project, moved):
            self.project, self.basis = project, moved


class _Place(NamedTuple):
    """Where a Flowfile's entry is, and what it is keyed on."""

    path: str  # the Flowfile, as the cache names it
    data: bytes
    cache_file: str
    key: tuple[object, ...]


def _place(flowfile: str, overrides: Mapping[str, str]) -> _Place | None:
    """Where the entry for `flowfile` with `overrides` is; None when it cannot be read."""
    path = canonical_flowfile(flowfile)
    try:
        data = flowfile_bytes(path)
    except OSError:
        return None
    return _Place(path, data, _cache_file(path, data), _key(path, data, overrides))


def load(flowfile: str, overrides: Mapping[str, str],
         fresh: Callable[[str, Mapping[str, str]], Project]) -> Loaded:
    """The Project for `flowfile`: from the cache when still valid, else `fresh(...)`, cached."""
    place = _place(flowfile, overrides)
    if place is None:
        return Loaded(fresh(canonical_flowfile(flowfile), overrides))
    path, data, cache_file, key = place
    cached = _read(cache_file, key)
    if cached is not None:
        return cached
    started_ns = time.time_ns()
    project = fresh(path, overrides)
    if project.volatile:  # its environment or commands may give another project next time
        return Loaded(project)
    seen = _seen(cache_file, project, data, started_ns)
    if seen is None:
        return Loaded(project)
    if not os.path.isdir(os.path.dirname(cache_file)):
        # Only a build creates the cache dir: list, status and -n write nothing.
        return Loaded(project, None, cache_file, (key, *seen))
    basis = _basis(project, key, *seen)
    stored = basis.holds(project.root) and _write(cache_file, project, basis)
    return Loaded(project, basis if stored else None, cache_file)


def cached(flowfile: str, overrides: Mapping[str, str]) -> Project | None:
    """The Project for `flowfile` when the cache holds it still valid, else None, loading
    nothing: what shell completion asks at every Tab. A project with computed vars or
    `{env.NAME}` is never stored, so a hit runs no command of the Flowfile."""
    place = _place(flowfile, overrides)
    loaded = None if place is None else _read(place.cache_file, place.key)
    return None if loaded is None else loaded.project


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _cache_file(path: str, data: bytes) -> str:
    return os.path.join(cache_dir_of(path, data), FILE_NAME)


def _key(path: str, data: bytes, overrides: Mapping[str, str]) -> tuple[object, ...]:
    return (FORMAT, *project_key(path, data, overrides))


# Reading an entry.

def _read(cache_file: str, key: tuple[object, ...]) -> Loaded | None:
    with paused():
        return _read_entry(cache_file, key)


def _read_entry(cache_file: str, key: tuple[object, ...]) -> Loaded | None:
    try:
        data = memoryview(_read_bytes(cache_file))
        stored_key, root, basis_row, payload = decode_at(data, 0)
        if stored_key != key:
            return None
        basis = Basis(key, *basis_row)
        if not basis.holds(root):
            return None
        rows: list[tuple[object, ...]] = []
        offset = size_at(data, 0)
        while offset < len(data):
            rows += decode_at(data, offset)  # a torn or corrupt part: None, which raises
            offset += size_at(data, offset)
        if len(rows) != payload["tasks"]:
            return None  # cut short at a frame's end
        project = _decode({**payload, "tasks": rows})
    except Exception:  # noqa: BLE001 - a corrupt or foreign entry is a miss, whatever it holds
        return None
    return Loaded(project, basis, cache_file, from_cache=True)


# Writing an entry.

def _seen(cache_file: str, project: Project, data: bytes, started_ns: int
          ) -> tuple[frozenset[str], dict[str, Listing]] | None:
    """The directories a load of `project` from Flowfile bytes `data`, started at
    `started_ns`, skipped and listed, with what they hold; None when that cannot be told (the
    Flowfile or a listed directory changed meanwhile), or the cache dir is not where the next
    run will look for the entry."""
    root = project.root
    if os.path.normpath(os.path.dirname(cache_file)) != os.path.normpath(project.cache_dir):
        return None
    skip = frozenset({os.path.normpath(project.settings.cache_dir).replace(os.sep, "/")})
    listings = {d: listing(root, d, skip) for d in project.globbed_dirs}
    try:
        if flowfile_bytes(project.flowfile) != data or \
                any(_changed_since(os.path.join(root, d), started_ns) for d in listings):
            return None
    except OSError:
        return None
    return skip, listings


def _basis(project: Project, key: tuple[object, ...], skip: frozenset[str],
           listings: dict[str, Listing]) -> Basis:
    """What a load of `project` with these listings depends on besides them."""
    return Basis(key, skip, listings, tuple(_lone_inputs(project)),
                 output_prefixes(_output_dirs(project)),
                 output_prefixes({task.cwd for task in project.tasks.values() if task.cwd}),
                 project.code)


def _write(cache_file: str, project: Project, basis: Basis) -> bool:
    """Store the entry for `project` on `basis`; whether the disk took it."""
    from buildflow.fs import replace_file_from  # here: a load from the cache writes nothing

    try:
        # not synced: an entry a power cut empties fails to load, and the project loads anew
        replace_file_from(cache_file, _frames(basis.key, project.root, tuple(basis)[1:],
                                              project), sync=False)
    except (OSError, ValueError):
        return False  # the cache is an optimisation: failing to write it changes nothing else
    return True


def _lone_inputs(project: Project) -> list[str]:
    """Inputs on disk outside every scanned directory: the literal paths the loader checked."""
    scanned = project.globbed_dirs
    lone: dict[str, None] = {}
    for task in project.tasks.values():
        for path in task.inputs:
            if project.graph.producer_of(path) is None and \
                    os.path.dirname(path) not in scanned:
                lone[path] = None
    return list(lone)


def _output_dirs(project: Project) -> set[str]:
    """The directories the tasks write their outputs and depfiles in."""
    return {os.path.dirname(path) for task in project.tasks.values()
            for path in (*task.outputs, *((task.depfile,) if task.depfile else ()))}


def _changed_since(directory: str, started_ns: int) -> bool:
    try:
        st = os.stat(directory)
    except OSError:
        return False  # a missing directory is recorded as such, and checked as such
    return not trusted(max(st.st_mtime_ns, st.st_ctime_ns), started_ns)


# The Project as plain data, and back. Every field of Project, Task and Settings is stored
# positionally, so a field added to them is cached too; one marshal cannot hold makes the entry
# unwritable (never wrong).


def row_of(record: tuple[object, ...]) -> tuple[object, ...]:
    """A record's fields as a plain tuple, which marshal takes (a NamedTuple it does not), and
    `model.tasks_from_rows` takes back."""
    return tuple(record)


def encode(project: Project) -> dict[str, object]:
    return {**_head(project), "tasks": tuple(map(row_of, project.tasks.values()))}


def _head(project: Project) -> dict[str, object]:
    """The project as plain data but its tasks, which it counts."""
    payload = project._asdict()
    del payload["fs"]  # the real disk, which a project loaded from the cache is on
    payload["settings"] = row_of(project.settings)
    payload["tasks"] = len(project.tasks)
    graph = project.graph  # the rest of it: from the tasks
    payload["graph"] = (tuple(map(sys.intern, graph.ranked)), tuple(sorted(graph.empty)))
    return payload


def _frames(key: tuple[object, ...], root: str, basis_row: tuple[object, ...],
            project: Project) -> Iterator[bytes]:
    """An entry's frames. Task names are interned, as the graph's are: marshal marks them so,
    and a load makes one object of each name across the frames."""
    entry: Any = (key, root, basis_row, _head(project))
    yield frame(entry)
    tasks = iter(project.tasks.values())
    while part := list(islice(tasks, PART)):
        rows: Any = [(sys.intern(task.name), *task[1:]) for task in part]
        yield frame(rows)


def _decode(payload: dict[str, object]) -> Project:
    values = dict(payload)
    values["settings"] = Settings(*values["settings"])  # type: ignore[misc]
    values["tasks"] = tasks = tasks_from_rows(values["tasks"])  # type: ignore[arg-type]
    values["graph"] = Graph(tasks, *values["graph"])  # type: ignore[misc]
    return Project(**values)  # type: ignore[arg-type]

