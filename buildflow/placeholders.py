"""`{NAME}` substitution: known names are replaced, `{{`/`}}` are literal braces, and any other
brace group is left alone so shell and awk snippets pass through untouched."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from buildflow.errors import did_you_mean

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Placeholders that stand for paths relative to the project root.
ROOT_PATH_NAMES = ("inputs", "outputs", "input", "output", "depfile", "item", "dir")
# Pieces of a foreach item that are paths, but not relative to the root.
ITEM_PIECE_NAMES = ("name", "stem", "ext", "rel", "relstem")
BUILTIN_NAMES = (*ROOT_PATH_NAMES, *ITEM_PIECE_NAMES, "task")


def expand(template: str, values: Mapping[str, str]) -> str:
    """Replace every `{NAME}` found in `values`; leave unknown groups as written."""
    if "{" not in template and "}" not in template:
        return template

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return values.get(match.group(1), token)

    return _TOKEN.sub(substitute, template)


def misspelt(template: str, known: Iterable[str]) -> list[str]:
    """Warnings for `{NAME}` groups that are not known but look like a known name."""
    known = list(known)
    warnings = []
    for match in _TOKEN.finditer(template):
        name = match.group(1)
        if name and name not in known:
            hint = did_you_mean(name, known)
            if hint:
                warnings.append(f"'{{{name}}}' is not a placeholder{hint}")
    return warnings
