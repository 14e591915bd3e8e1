"""Counts in sentences: `1 task`, `2 tasks`, `1 directory`. Imports nothing."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and the noun, singular for exactly one."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
