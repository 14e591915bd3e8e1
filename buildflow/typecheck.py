"""Typed reading of raw TOML values: each mismatch becomes one problem naming where it is
(`Flowfile: tasks.compile.outputs[2]: expected a string, got 3`), collected, not raised, so a
user sees every mistake in one run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from buildflow.errors import did_you_mean

if TYPE_CHECKING:
    from typing import Any


def type_name(value: object) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
             list: "a list", dict: "a table"}
    for kind, name in names.items():
        if type(value) is kind:
            return f"{name} ({value!r})" if kind in (bool, int, float) else name
    return type(value).__name__


class Checker:
    """Collects problems while converting raw TOML values to typed ones."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        # Keys may hold newlines or control characters: escape them so a problem stays a line.
        where = "".join(c if c.isprintable() else repr(c)[1:-1] for c in where)
        self.problems.append(f"{self.file_name}: {where}: {message}" if where else
                             f"{self.file_name}: {message}")

    def string_keys(self, value: Any, where: str) -> None:
        """Report each key that is not a string, in tables at any depth: TOML's always are,
        a document made of Python objects' need not be."""
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str):
                    self.string_keys(item, f"{where}.{key}" if where else key)
                else:
                    self.problem(where or "the document",
                                 f"a key must be a string, got {type_name(key)}")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                self.string_keys(item, f"{where}[{index}]")

    def keys(self, table: Mapping[str, Any], where: str, allowed: tuple[str, ...],
             elsewhere: Mapping[str, str] | None = None) -> bool:
        """Report each unknown key, with the one meant: the allowed key that `elsewhere` gives
        for a name other tools use, else the nearest by spelling. True when all are known."""
        known = True
        for key in table:
            if key not in allowed:
                meant = (elsewhere or {}).get(key.lower())
                hint = f" (did you mean '{meant}'?)" if meant else \
                    did_you_mean(key, allowed) or f" (known keys: {', '.join(allowed)})"
                self.problem(f"{where}.{key}" if where else key, f"unknown key{hint}")
                known = False
        return known

    def string(self, value: Any, where: str, index: int | None = None) -> str | None:
        """`value`, a string; at `index`, an item of the list at `where`, whose place is
        written out only for a problem (a large Flowfile's lists hold thousands of paths)."""
        if isinstance(value, str) and "\0" not in value:
            return value
        if index is not None:
            where = f"{where}[{index}]"
        if isinstance(value, str):
            self.problem(where, "contains a NUL character (\\u0000), which no path, command "
                                "or environment value can hold")
            return None
        self.problem(where, f"expected a string, got {type_name(value)}")
        return None

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        """A list of strings, or one string standing for a list of one (`inputs = "a.c"`)."""
        if isinstance(value, str):
            return () if self.string(value, where) is None else (value,)
        if not isinstance(value, list):
            self.problem(where, f"expected a string or a list of strings, got {type_name(value)}")
            return ()
        out = []
        for index, item in enumerate(value):
            text = self.string(item, where, index)
            if text is not None:
                out.append(text)
        return tuple(out)

    def string_table(self, value: Any, where: str,
                     env: bool = False) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict):
            self.problem(where, f"expected a table of strings, got {type_name(value)}")
            return ()
        out = []
        for key, item in value.items():
            if env and (not key or "=" in key or "\0" in key):
                self.problem(f"{where}.{key}", "not a usable environment variable name "
                                               "(it must be non-empty, without '=' or NUL)")
                continue
            text = self.string(item, f"{where}.{key}")
            if text is not None:
                out.append((key, text))
        return tuple(out)

    def number(self, value: Any, where: str, integer: bool = False,
               lowest: int = 0) -> float | None:
        """A number, as the spec says counts are; a count (`integer`) may be written as a
        float with a whole value (`retries = 2.0`), and is given as the int."""
        if integer and type(value) is float and value.is_integer():
            value = int(value)
        ok_types = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_types):
            kind = "a whole number" if integer else "a number"
            self.problem(where, f"expected {kind}, got {type_name(value)}")
            return None
        if value < lowest or value != value or value > 10**9:
            self.problem(where, f"expected a number from {lowest} to 1000000000, got {value!r}")
            return None
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if isinstance(value, bool):
            return value
        self.problem(where, f"expected true or false, got {type_name(value)}")
        return False
