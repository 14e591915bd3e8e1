"""The exception tree and the exit codes it maps to.

Every error a user can cause is a `FatalError` carrying a message that says what is wrong and,
when it can, how to fix it. The CLI turns these into one message and an exit code; anything else
reaching the top is a bug (exit 3).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


class FatalError(Exception):
    """An expected error: printed as its message, never with a traceback."""

    exit_code = EXIT_USAGE


class UsageError(FatalError):
    """Bad command-line usage: unknown target, malformed option value."""


class FlowfileError(FatalError):
    """One or more problems in the Flowfile; each line names the file, the task and the key.
    `missing`: those that a path on no disk (and written by no task) causes, which adding a
    file mends: a copy of the files git tracks lacks one on the disk that is not added."""

    def __init__(self, problems: Iterable[str], missing: Iterable[str] = ()) -> None:
        self.problems = list(problems)
        self.missing = frozenset(missing)
        super().__init__("\n".join(self.problems))


class BuildError(FatalError):
    """A failure while building that is not a task's own failure (lock, state, disk)."""

    exit_code = EXIT_FAILED


class ShortcutDisagrees(FatalError):
    """Under BFLOW_VERIFY=1, a shortcut (the proof, the project cache) gave another answer than
    the full decision: a bug in bflow, named with both answers."""

    exit_code = EXIT_BUG


class Interrupted(BaseException):
    """Raised in the main thread on SIGTERM, so it unwinds like Ctrl-C's KeyboardInterrupt."""


def raise_interrupted(signum: int, frame: object) -> None:
    """The SIGTERM handler outside a build (loading, waiting for the lock, a watch between
    builds): raises `Interrupted`."""
    raise Interrupted


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A " (did you mean 'x'?)" suffix for a near-miss name, or an empty string."""
    folded = {candidate.lower(): candidate for candidate in candidates}
    import difflib

    matches = difflib.get_close_matches(name.lower(), list(folded), n=1, cutoff=0.6)
    return f" (did you mean '{folded[matches[0]]}'?)" if matches else ""


def did_you_mean_path(path: str, candidates: Iterable[str]) -> str:
    """`did_you_mean` for a path, among those whose file name (its extension left out) is near
    too: a shared `.txt` alone suggests nothing (`food.txt` is not a miss of `a.txt`)."""
    import difflib
    import posixpath

    def stem(candidate: str) -> str:
        return posixpath.splitext(posixpath.basename(candidate))[0].lower()

    mine = stem(path)
    return did_you_mean(path, [candidate for candidate in candidates if
                               difflib.SequenceMatcher(None, mine, stem(candidate)).ratio() >= 0.5])
