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


def parse(text: str) -> list[str]:
    """Every prerequisite named in the file, in order, each once."""
    joined = text.replace("\\\r\n", " ").replace("\\\n", " ")
    found: dict[str, None] = {}
    for line in joined.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = _words(line)
        colon = next((i for i, w in enumerate(words) if w.endswith(":")), None)
        if colon is None:
            # "target: dep" may be glued ("a.o:dep.h"): split on the first ': ' or ':'.
            head, sep, tail = line.partition(": ")
            if not sep:
                continue
            prerequisites = _words(tail)
        else:
            prerequisites = words[colon + 1:]
        for word in prerequisites:
            found.setdefault(word, None)
    return list(found)
