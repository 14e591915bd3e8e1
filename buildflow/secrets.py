"""Values of env keys that look like secrets reach commands unchanged but are never printed."""

from __future__ import annotations

from collections.abc import Iterable

_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")
MASK = "***"


def is_secret_key(key: str) -> bool:
    upper = key.upper()
    return any(word in upper for word in _SECRET_WORDS)


class Masker:
    """Replaces every secret value in a text by `***`; falsy when there is nothing to mask.
    `by_line`: for text shown a line at a time, which never holds a secret of several lines
    whole, each line of such a secret is masked too."""

    def __init__(self, env: Iterable[tuple[str, str]], *, by_line: bool = False) -> None:
        values = {value for key, value in env if value and is_secret_key(key)}
        if by_line:
            values.update(line for value in list(values) for line in value.splitlines()
                          if line)
        # Longest first, so a secret containing another is masked whole.
        self.values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self.values)


def masked(env: tuple[tuple[str, str], ...], texts: tuple[str, ...]) -> tuple[str, ...]:
    """`texts` with the secret values of `env` masked: the same tuple when there are none, as
    for nearly every task (this runs twice per task started)."""
    if not env:
        return texts
    mask = Masker(env)
    return tuple(map(mask, texts)) if mask else texts
