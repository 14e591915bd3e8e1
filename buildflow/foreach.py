"""`foreach`: one task instance per matching file, named `TASK:ITEM`, in sorted path order.

A foreach glob matches files on disk and outputs other tasks declare, including the outputs of
other foreach tasks (`src/*.c -> build/*.o -> build/*.s`). So items are found by matching
again until no task's items change, whatever order the tasks are written in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def output_paths(decl: TaskDecl, values: Mapping[str, str]) -> list[str]:
    return [globbing.normalize(placeholders.expand(o, values)) for o in decl.outputs]


def _match(decl: TaskDecl, variables: Mapping[str, str], disk: globbing.DiskIndex,
           declared: Mapping[str, str]) -> list[Item]:
    """Sorted items of one foreach task; `!` entries remove what the entries before matched."""
    others = [path for path, owner in declared.items() if owner != decl.name]
    matched: dict[str, str] = {}
    for pattern in decl.foreach:
        expanded = globbing.normalize(placeholders.expand(pattern.removeprefix("!"), variables))
        if pattern.startswith("!"):
            regex = globbing.compile_glob(expanded)
            matched = {p: g for p, g in matched.items() if not regex.match(p)}
            continue
        for path in globbing.match(expanded, disk, others):
            matched.setdefault(path, expanded)
    return sorted(matched.items())


def find_items(decls: Sequence[TaskDecl], variables: Mapping[str, str],
               disk: globbing.DiskIndex) -> dict[str, list[Item]]:
    """The items of every foreach task, by task name."""
    plain: dict[str, str] = {}
    for decl in decls:
        if not decl.foreach:
            for path in output_paths(decl, instance_values(variables, decl, None)):
                plain.setdefault(path, decl.name)
    looping = [decl for decl in decls if decl.foreach]
    found: dict[str, list[Item]] = {decl.name: [] for decl in looping}
    for _ in range(len(looping) + 1):  # a chain of n foreach tasks settles in n rounds
        declared = dict(plain)
        for decl in looping:
            for item in found[decl.name]:
                for path in output_paths(decl, instance_values(variables, decl, item)):
                    declared.setdefault(path, decl.name)
        again = {decl.name: _match(decl, variables, disk, declared) for decl in looping}
        if again == found:
            break
        found = again
        if len(looping) == 1:  # its own outputs are never its items: nothing more to find
            break
    return found
