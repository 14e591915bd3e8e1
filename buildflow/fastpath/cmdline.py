"""A plain build's command line, read without argparse.

`bflow [build] [TARGET..] [VAR=VALUE..]` with `-j N`, `-k`, `-q`, `--plain` or `--stream` is
the command line a no-op answers, and importing and setting up argparse would be a large part
of that answer (see docs/speed.md). So the fast path reads such a command line by hand, and
gives up (None) on anything else, which the CLI's argparse parser then reads. It may only
give up, never read differently: tests/test_cli.py checks with generated command lines that
wherever it answers, argparse reads the same targets, overrides and options.
"""

from __future__ import annotations

from buildflow.fastpath import FastOptions

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

# The flags of a plain build this reader knows, by the FastOptions field each one sets.
_FLAGS = {"-k": "keep_going", "--keep-going": "keep_going", "-q": "quiet", "--quiet": "quiet",
          "--plain": "plain", "--stream": "stream"}


def read(argv: Sequence[str],
         commands: Collection[str]) -> tuple[list[str], dict[str, str], FastOptions] | None:
    """(targets, overrides, options) when `argv` is a plain build, or None: another of the
    `commands`, or an option this reader does not know (argparse reads those)."""
    words: list[str] = []
    flags: set[str] = set()
    jobs = None
    index = 0
    while index < len(argv):
        token = argv[index]
        if token in ("-j", "--jobs") and _positive(argv[index + 1:index + 2]):
            index += 1
            jobs = int(argv[index])
        elif token.startswith("-j") and _positive([token[2:]]):
            jobs = int(token[2:])
        elif token in _FLAGS:
            flags.add(_FLAGS[token])
        elif token.startswith("-"):
            return None
        else:
            words.append(token)
        index += 1
    if words[:1] == ["build"]:
        words = words[1:]
    elif words and words[0] in commands:
        return None
    targets, overrides = split_overrides(words)
    return targets, overrides, FastOptions(
        jobs=jobs, keep_going="keep_going" in flags, quiet="quiet" in flags,
        plain="plain" in flags, stream="stream" in flags)


def split_overrides(words: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The targets and the `VAR=VALUE` overrides among a command's words, for both readers of
    the command line. A word is an override only when what comes before its `=` can name a
    var: `out/k=v.txt` is a target (a file named so is the output of some task)."""
    plain, overrides = [], {}
    for word in words:
        name, sep, value = word.partition("=")
        if sep and name.isidentifier():
            overrides[name] = value
        else:
            plain.append(word)
    return plain, overrides


def _positive(texts: Sequence[str]) -> bool:
    """Whether the first of `texts` is a whole number above 0 as argparse's `int` reads it
    (ASCII digits only: `int` also takes other scripts' digits, which this leaves to it)."""
    return bool(texts) and texts[0].isascii() and texts[0].isdigit() and int(texts[0]) > 0
