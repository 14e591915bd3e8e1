"""Makefile-syntax dependency files as gcc -MMD/-MP and clang write them."""

from __future__ import annotations


def _words(text: str) -> list[str]:
    """Split on unescaped white space; `\\ ` is a space in a name, `$$` a dollar."""
    words: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in " #":
            current.append(text[i + 1])
            i += 2
            continue
        if char == "$" and text[i + 1:i + 2] == "$":
            current.append("$")
            i += 2
            continue
        if char in " \t\n":
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
        i += 1
    if current:
        words.append("".join(current))
    return words


def _rule_colon(line: str) -> int:
    """Where the targets end: the first colon before white space, else the first colon (a
    glued `a.o:a.c`); -1 for a line that is no rule."""
    colon = line.find(":")
    while colon >= 0 and line[colon + 1:colon + 2] not in ("", " ", "\t"):
        colon = line.find(":", colon + 1)
    return colon if colon >= 0 else line.find(":")


def parse(text: str) -> list[str]:
    """Every prerequisite named in the file, in order, each once."""
    joined = text.replace("\\\r\n", " ").replace("\\\n", " ")
    found: dict[str, None] = {}
    for line in joined.splitlines():
        colon = _rule_colon(line)
        if colon < 0 or line.lstrip().startswith("#"):
            continue
        for word in _words(line[colon + 1:]):
            found.setdefault(word, None)
    return list(found)
