"""A large Flowfile parsed in parts, each a run of `[tasks.NAME]` tables.

While it parses a document, tomllib keeps bookkeeping for every table (which keys it
defined, which tables are closed to additions), two to three times the size of the objects
it returns, all alive until the end. A 100,000-task Flowfile written by a generator peaked
at 357 MiB in tomllib alone, more than GNU Make's whole build of the same project. Parsed in
parts of `PART_TABLES` task tables, one part's bookkeeping is alive at a time.

The parts give exactly the whole document's result, or are not used:
- a part starts at a line beginning with `[tasks.`, which in a valid document is a table
  header: no value starts that way, and inside a multi-line string the split leaves the
  part before it unterminated, which fails to parse;
- the parts after the first hold no other header (nor anything else at a line's start that
  opens with `[`), so `tasks` itself is defined in the first part or nowhere, and each
  task's tables are whole within one part unless two parts name the same task.

Whenever a part fails to parse, the first part defines `tasks`, a later part holds another
header, or two parts name the same task, the whole text is parsed at once instead: errors,
and TOML's rules on tables defined twice or extended later, are then tomllib's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

PART_TABLES = 1000
_HEADER = "\n[tasks."
_OTHER_BRACKET_LINE = re.compile(r"^[ \t]*\[(?!tasks\.)", re.MULTILINE)


def loads(text: str, parse: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """`parse(text)`'s result (tomllib's `loads`), from parts when the text is large enough
    to gain from it; raises what `parse(text)` raises."""
    bounds = _part_bounds(text)
    if bounds is None:
        return parse(text)
    try:
        document = _parse_parts(text, bounds, parse)
    except ValueError:  # tomllib's error: the whole text says where, as one document
        document = None
    return parse(text) if document is None else document


def _part_bounds(text: str) -> list[int] | None:
    """Where each part starts, and the text's end; None when there would be fewer than two
    parts of task tables."""
    starts = [0] if text.startswith(_HEADER[1:]) else []
    at = text.find(_HEADER)
    while at != -1:
        starts.append(at + 1)
        at = text.find(_HEADER, at + 1)
    if len(starts) < 2 * PART_TABLES:
        return None
    return [0, *starts[::PART_TABLES], len(text)]


def _parse_parts(text: str, bounds: list[int],
                 parse: Callable[[str], dict[str, Any]]) -> dict[str, Any] | None:
    document = parse(text[:bounds[1]])
    if "tasks" in document:
        return None
    tasks: dict[str, Any] = {}
    document["tasks"] = tasks
    for start, end in zip(bounds[1:], bounds[2:]):
        part = text[start:end]
        if _OTHER_BRACKET_LINE.search(part):
            return None
        for name, table in parse(part)["tasks"].items():
            if name in tasks:
                return None
            tasks[name] = table
    return document
