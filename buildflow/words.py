"""Words in sentences: counts (`1 task`, `2 tasks`, `1 directory`), and names made safe to
print. Imports nothing."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and the noun, singular for exactly one."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


# Control characters but the tab and the newline, shown as `\x1b`: a file named with an ESC
# sequence (a foreach item's name) would clear the screen or colour it, printed as it is.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x00, 0x09), *range(0x0b, 0x20),
                                                 *range(0x7f, 0xa0))}


def printable(text: str) -> str:
    """`text` with its control characters (but tabs and newlines) written as escapes."""
    return text.translate(_CONTROLS)


def say(text: str, end: str = "\n") -> None:
    """Print `text` on stdout with its control characters escaped (`printable`): a line of
    the commands that show names and paths (`status`, `explain`, `list`)."""
    print(printable(text), end=end)
