"""`{NAME}` substitution: known names are replaced, `{{`/`}}` are literal braces, and any other
brace group is left alone so shell and awk snippets pass through untouched."""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Callable, Iterable, Mapping, Set
import re

from buildflow.globbing import fixed_prefix

# A token and the name in it (None for a literal brace, `{{` or `}}`).
_TOKEN = re.compile(r"(\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\})")

# Placeholders that stand for lists of root-relative paths.
PATH_LIST_NAMES = ("inputs", "outputs", "input", "output", "depfile")
# foreach placeholders that are root-relative paths, and pieces of the item that are not.
ITEM_PATH_NAMES = ("item", "dir")
ITEM_PIECE_NAMES = ("name", "stem", "ext", "rel", "relstem")
ITEM_NAMES = (*ITEM_PATH_NAMES, *ITEM_PIECE_NAMES)
_PIECE_NAMES = (*ITEM_PIECE_NAMES, "task")  # values a command is given as they are
BUILTIN_NAMES = (*PATH_LIST_NAMES, *ITEM_NAMES, "task", "args")
# Where `{args}` stands until the tasks the command line names are known: a NUL, which no
# Flowfile string, environment value or computed var can hold.
ARGS_SLOT = "\0args\0"


def expand(template: str, values: Mapping[str, str]) -> str:
    """Replace every `{NAME}` found in `values`; leave unknown groups as written."""
    if "{" not in template and "}" not in template:
        return template
    pieces = _TOKEN.split(template)  # text, and after each token: it, its name, text
    for index in range(1, len(pieces), 3):
        token, name = pieces[index], pieces[index + 1]
        pieces[index] = token[0] if name is None else values.get(name, token)  # `{{`: `{`
        pieces[index + 1] = ""
    return "".join(pieces)


def unknown(template: str, known: Set[str]) -> list[str]:
    """Names written as `{NAME}` that are not in `known` (left as written by `expand`), except
    right after `$`: `${HOME}` is the shell's."""
    names = (m.group(2) for m in _TOKEN.finditer(template)
             if not template.endswith("$", 0, m.start()))
    return list(dict.fromkeys(n for n in names if n and n not in known))


# awk statements that stand alone in braces (`awk 'NR==1{next} {print}'`): one edit away from
# `{ext}`, or near `{input}`, but written on purpose: neither an error nor a warning.
AWK_WORDS = frozenset({"next", "nextfile", "exit", "print", "printf", "getline", "delete",
                        "break", "continue", "return"})


def misspelt(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` is most likely a typo of: the same but for case, or one edit
    away (a letter added, dropped, changed or two swapped; two edits for names of 8 letters
    or more). Looser near-misses are only `validate` warnings: `{print}` is not `{input}`."""
    if len(name) < 3 or name in AWK_WORDS:
        return None
    limit = 1 if len(name) < 8 else 2
    best: tuple[int, str] | None = None
    for candidate in known:
        distance = 0 if candidate.lower() == name.lower() else _edits(name, candidate, limit)
        if distance <= limit and (best is None or distance < best[0]):
            best = (distance, candidate)
    return best[1] if best else None


_DOTTED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z_][A-Za-z0-9_]*(?::-[^{}]*)?)\}")


def misspelt_env(template: str) -> list[tuple[str, str]]:
    """`{word.NAME}` groups whose word is a typo of `env` (`{evn.HOME}`), with the group as it
    was surely meant; as `unknown`, not right after `$`. Filled in at load, a right `{env.*}`
    group is gone by the time this looks."""
    found = []
    for match in _DOTTED.finditer(template):
        word, rest = match.groups()
        if word != "env" and not template.endswith("$", 0, match.start()) and \
                misspelt(word, ("env",)):
            found.append((match.group(0), "{env" + rest + "}"))
    return found


def _edits(a: str, b: str, limit: int) -> int:
    """Edit distance counting a swap of neighbours as one edit; anything past `limit` is
    `limit + 1`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before, row = None, list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            cost = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (x != y))
            if before is not None and i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                cost = min(cost, before[j - 2] + 1)
            current.append(cost)
        before, row = row, current
    return min(row[-1], limit + 1)


def item_values(item: str, pattern: str) -> dict[str, str]:
    """The foreach placeholders for one path matched by `pattern`."""
    directory, name = posixpath.split(item)
    directory = directory or "."  # an item at the top: `{dir}/*.h` is `./*.h`, not `/*.h`
    stem, ext = posixpath.splitext(name)
    prefix = fixed_prefix(pattern)
    rel = item[len(prefix) + 1:] if prefix and item.startswith(prefix + "/") else item
    return {"item": item, "dir": directory, "name": name, "stem": stem, "ext": ext,
            "rel": rel, "relstem": rel[:len(rel) - len(ext)]}  # rel ends with name, so ext


def names_in(templates: Iterable[str]) -> frozenset[str]:
    """The names written as `{NAME}` in any of `templates`."""
    return frozenset(m.group(2) for t in templates for m in _TOKEN.finditer(t) if m.group(2))


def command_values(values: Mapping[str, str], paths: Mapping[str, list[str]], root: str,
                   cwd: str, quote: bool, wanted: frozenset[str]) -> dict[str, str]:
    """Values as a command sees them: every path relative to the directory it runs in
    (`cwd`, root-relative, or the root), shell-quoted when `quote` (for `cmd`, not `env`).
    Only the `wanted` names (those the templates use) are rebased and quoted: a foreach
    instance has a dozen values and its command uses two or three."""
    start = os.path.join(root, cwd) if cwd else root
    show: Callable[[str], str] = shlex.quote if quote else str

    def show_path(path: str) -> str:
        if not path.startswith("/"):
            path = os.path.relpath(os.path.join(root, path), start).replace(os.sep, "/") \
                if cwd else path or "."
        return show(path)

    out = dict(values)
    for key in wanted:
        if key in paths:
            out[key] = " ".join(map(show_path, paths[key]))
        elif key in ITEM_PATH_NAMES and key in values:
            out[key] = show_path(values[key])
        elif key in _PIECE_NAMES and key in values:
            out[key] = show(values[key])
    return out
