"""`foreach`: one task instance per matching file, named `TASK:ITEM`, in sorted path order.

A foreach glob matches files on disk and outputs other tasks declare, including the outputs of
other foreach tasks (`src/*.c -> build/*.o -> build/*.s`). So items are found by matching
again until no task's items change, whatever order the tasks are written in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from buildflow import globbing, placeholders
from buildflow.flowfile import TaskDecl

Item = tuple[str, str]  # (the matched path, the expanded glob that matched it)


def instance_name(base: str, item: str) -> str:
    return f"{base}:{item}"


def instance_values(variables: Mapping[str, str], decl: TaskDecl,
                    item: Item | None) -> dict[str, str]:
    """Placeholder values known before inputs are expanded: vars, task, foreach pieces."""
    if item is None:
        return dict(variables, task=decl.name)
    return dict(variables, task=instance_name(decl.name, item[0]),
                **placeholders.item_values(*item))


def pattern_values(values: dict[str, str]) -> dict[str, str]:
    """`values` for expanding an input (a glob, or a path that may read as one): the item's
    parts and the instance's name escaped, since they name a file whatever `*`, `?` or `[` it
    holds (`src/v[1].c`); vars stay as written, as a var may hold a glob on purpose."""
    if not globbing.is_glob(values["task"]):  # the name holds the item
        return values
    return {**values, **{name: globbing.escape(values[name])
                         for name in ("task", *_SPANNING, *_WITHIN) if name in values}}


def output_paths(decl: TaskDecl, values: Mapping[str, str]) -> list[str]:
    return [globbing.normalize(placeholders.expand(o, values)) for o in decl.outputs]


def depfile_path(decl: TaskDecl, variables: Mapping[str, str], item: Item) -> str | None:
    """The depfile the instance for `item` writes (`{item}.d`, `{output}.d`), as the loader
    names it."""
    if not decl.depfile:
        return None
    values = instance_values(variables, decl, item)
    outputs = output_paths(decl, values)
    values.update(output=outputs[0] if outputs else "", input=item[0])
    return globbing.normalize(placeholders.expand(decl.depfile, values))


class Declared:
    """The outputs declared so far, each with the task declaring it (the first to, plain tasks
    before foreach tasks, these in the Flowfile's order), for the `match_items` of every
    foreach task. `claim` keeps it up to date as a foreach task's items change, so a chain of
    n foreach tasks costs n small changes rather than n indexes of every output."""

    def __init__(self, owners: Mapping[str, str], order: Sequence[str] = ()) -> None:
        self.index = globbing.SortedPaths(owners)
        self.by_task: dict[str, set[str]] = {}
        for path, owner in owners.items():
            self.by_task.setdefault(owner, set()).add(path)
        self._fixed = owners  # never given up: the plain tasks' outputs
        self._rank = {name: rank for rank, name in enumerate(order)}
        self._claimants: dict[str, set[str]] = {}

    def claim(self, name: str, gone: Iterable[str], new: Iterable[str]
              ) -> tuple[set[str], set[str]]:
        """Task `name` no longer declares `gone` and now declares `new`: the paths that came
        or went as outputs, and the tasks whose outputs (`by_task`) changed."""
        touched: set[str] = set()
        owners_changed: set[str] = set()
        for path, claims in [*((p, False) for p in gone), *((p, True) for p in new)]:
            before = self._owner(path)
            claimants = self._claimants.setdefault(path, set())
            if claims:
                claimants.add(name)
            else:
                claimants.discard(name)
            after = self._owner(path)
            if before == after:
                continue
            owners_changed.update(o for o in (before, after) if o is not None)
            if before is None:
                self.index.add(path)
                touched.add(path)
            else:
                self.by_task[before].discard(path)
            if after is None:
                self.index.discard(path)
                touched.add(path)
            else:
                self.by_task.setdefault(after, set()).add(path)
        return touched, owners_changed

    def _owner(self, path: str) -> str | None:
        fixed = self._fixed.get(path)
        if fixed is not None:
            return fixed
        claimants = self._claimants.get(path)
        return min(claimants, key=self._rank.__getitem__) if claimants else None


def match_items(decl: TaskDecl, variables: Mapping[str, str], disk: globbing.DiskIndex,
                declared: Declared, written: Iterable[str] = ()) -> list[Item]:
    """Sorted items of one foreach task; `!` entries remove what the entries before matched.
    Its own outputs are never its items, whether an earlier build left them on disk or not
    (`img/*.png` writing `img/{stem}.thumb.png`), nor are the other files its instances
    write, `written` (`src/*` with `depfile = "{item}.d"`)."""
    own = declared.by_task.get(decl.name, set()).union(written)
    matched: dict[str, str] = {}
    for pattern in decl.foreach:
        expanded = globbing.normalize(placeholders.expand(pattern.removeprefix("!"), variables))
        if pattern.startswith("!"):
            globbing.exclude(matched, expanded)
            continue
        for path in globbing.match(expanded, disk, declared.index, exclude=own):
            matched.setdefault(path, expanded)
    return sorted(matched.items())


def find_items(decls: Sequence[TaskDecl], variables: Mapping[str, str],
               disk: globbing.DiskIndex) -> dict[str, list[Item]]:
    """The items of every foreach task, by task name."""
    looping = [decl for decl in decls if decl.foreach]
    if not looping:  # a generated Flowfile: no outputs to find items among
        return {}
    plain: dict[str, str] = {}
    for decl in decls:
        if not decl.foreach:
            for path in output_paths(decl, instance_values(variables, decl, None)):
                plain.setdefault(path, decl.name)
    found: dict[str, list[Item]] = {decl.name: [] for decl in looping}
    # A chain of n foreach tasks settles in n rounds; one whose globs may match its own
    # outputs needs one more, to leave out those an earlier build left on disk. A lone one
    # whose globs cannot match them has nothing more to find after the first.
    at_once = len(looping) == 1 and not looping[0].depfile \
        and not _may_match_own_outputs(looping[0], variables)
    changed: list[set[str]] = []  # by round, the tasks whose items it changed
    writes: dict[tuple[str, Item], tuple[list[str], str | None]] = {}

    def writes_of(decl: TaskDecl, item: Item) -> tuple[list[str], str | None]:
        """The outputs and the depfile of `decl`'s instance for `item`, worked out once."""
        key = (decl.name, item)
        if key not in writes:
            writes[key] = (output_paths(decl, instance_values(variables, decl, item)),
                           depfile_path(decl, variables, item))
        return writes[key]

    def outputs(decl: TaskDecl, items: list[Item]) -> set[str]:
        return {path for item in items for path in writes_of(decl, item)[0]}

    declared = Declared(plain, [decl.name for decl in looping])
    readers = globbing.GlobsByDirectory(
        (globbing.normalize(placeholders.expand(pattern, variables)), decl.name)
        for decl in looping for pattern in decl.foreach
        if not pattern.startswith("!"))  # a `!` entry only takes away what the others match
    # A round matches again only the tasks something could have changed for: those whose
    # items changed (their own outputs and depfiles are never their items), whose outputs
    # another task now declares first, or whose globs match an output that came or went.
    stale = {decl.name for decl in looping}
    for _ in range(2 * len(looping) + 2):
        again = {decl.name: match_items(decl, variables, disk, declared,
                                        [depfile for item in found[decl.name]
                                         if (depfile := writes_of(decl, item)[1])])
                 if decl.name in stale else found[decl.name]
                 for decl in looping}
        if again == found or at_once:
            return again
        changed.append({name for name in found if again[name] != found[name]})
        stale = set(changed[-1])
        for decl in looping:
            if decl.name in changed[-1]:
                before, after = outputs(decl, found[decl.name]), outputs(decl, again[decl.name])
                touched, owners_changed = declared.claim(decl.name, before - after,
                                                         after - before)
                stale |= owners_changed.union(*map(readers.matching, touched))
        found = again
    raise Endless(sorted(set().union(*changed[-2:])))


def settled_items(decl: TaskDecl, variables: Mapping[str, str], disk: globbing.DiskIndex,
                  declared: Mapping[str, str], own: Iterable[str]) -> list[Item]:
    """The items of one foreach, the other tasks' outputs `declared`, found again during a
    build: never a file its instances write, those it had before (`own`: their outputs and
    depfiles, which an earlier build may have left) nor those found now, in rounds as
    `find_items` takes them."""
    own = set(own)
    found: list[Item] = []
    indexed = Declared(declared)
    for _ in range(_ROUNDS):
        again = match_items(decl, variables, disk, indexed,
                            own.union(_outputs_of(decl, variables, found)))
        if again == found:
            break
        found = again
    return found


_ROUNDS = 4  # a lone foreach settles in two; a third round finds what a second let in


def _outputs_of(decl: TaskDecl, variables: Mapping[str, str], items: Sequence[Item]
                ) -> list[str]:
    """The outputs the instances of `decl` for `items` declare."""
    return [path for item in items
            for path in output_paths(decl, instance_values(variables, decl, item))]


class Endless(Exception):
    """Foreach tasks whose items never settle, as each takes files another writes (`src/*`
    writing `src/{name}.bak`, and `src/*.bak` writing `src/{name}.gz`): the names of those
    whose items the last two rounds changed."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.names = names


def _may_match_own_outputs(decl: TaskDecl, variables: Mapping[str, str]) -> bool:
    """Whether a foreach's globs may match files its instances write (`src/*` writing
    `src/{name}.bak`), as far as its templates tell."""
    globs = output_globs(decl, variables)
    return any(globbing.may_overlap(globbing.normalize(placeholders.expand(pattern, variables)),
                                    glob)
               for pattern in decl.foreach if not pattern.startswith("!") for glob in globs)


def item_of(decl: TaskDecl, variables: Mapping[str, str], path: str) -> Item:
    """The item of the instance for `path`, with the glob that matched it, as `match_items`
    pairs them: the first entry matching it since a `!` entry last removed it."""
    glob = matching_glob(decl, variables, path)
    return path, path if glob is None else glob


def matching_glob(decl: TaskDecl, variables: Mapping[str, str], path: str) -> str | None:
    """The glob of `decl.foreach` that makes `path` an item; None when none does (or a `!`
    entry removed it since)."""
    glob: str | None = None
    for pattern in decl.foreach:
        expanded = globbing.normalize(placeholders.expand(pattern.removeprefix("!"), variables))
        if not globbing.compile_glob(expanded).match(path):
            continue
        if pattern.startswith("!"):
            glob = None
        elif glob is None:
            glob = expanded
    return glob


# Placeholders standing for a part of the item that may hold `/`, and parts that cannot.
_SPANNING = ("item", "dir", "rel", "relstem")
_WITHIN = ("name", "stem", "ext")


def output_globs(decl: TaskDecl, variables: Mapping[str, str]) -> list[str]:
    """Globs that match every path an instance of `decl` can write, whatever its item: what a
    glob elsewhere can match once a build has found the instances."""
    values = dict(variables, task=instance_name(decl.name, "\0"),
                  **{name: "\0" for name in _SPANNING}, **{name: "*" for name in _WITHIN})
    globs: dict[str, None] = {}
    # `{dir}` may also be `.` (an item at the top) and `{ext}` empty (an item without an
    # extension), which can leave out a whole segment
    for directory, ext in (("\0", "*"), (".", "*"), ("\0", ""), (".", "")):
        each = {**values, "dir": directory, "ext": ext}
        for template in decl.outputs:
            expanded = placeholders.expand(template, each)
            if _climbs_out_of_a_spanning_part(expanded):
                return ["**"]  # `{item}/..`: how far up it goes depends on the item
            path = globbing.normalize(expanded)
            if path not in ("", ".", "/"):  # nothing an instance can write (the loader says)
                globs.update(dict.fromkeys(_shapes(path, template.endswith("/"))))
    return list(globs)


def _climbs_out_of_a_spanning_part(path: str) -> bool:
    """Whether a `..` in `path` follows a part that may hold `/` ("\0"): normalizing would
    take it for one segment."""
    spanning = False
    for segment in path.split("/"):
        if segment == ".." and spanning:
            return True
        spanning = spanning or "\0" in segment
    return False


def _shapes(path: str, directory: bool) -> list[str]:
    """Globs for an output `path` in which "\0" stands for a part of the item that may hold
    `/`, and `*` for one that cannot."""
    shapes: list[list[str]] = [[]]  # each a list of segments
    for segment in path.split("/"):
        if segment == "\0":
            shapes = [[*shape, "**"] for shape in shapes]
        elif "\0" in segment:
            wild = segment.replace("\0", "*")
            shapes = [[*shape, *extra] for shape in shapes
                      for extra in ([wild], [wild.split("*")[0] + "*", "**",
                                             "*" + wild.rsplit("*")[-1]])]
        else:
            shapes = [[*shape, segment] for shape in shapes]
    tail = ["**"] if directory else []
    return ["/".join([*shape, *tail]) for shape in shapes]
