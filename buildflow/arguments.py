"""The command line's one parser: argparse, one sub-parser per command, built from the table
of commands (`buildflow.commands.COMMANDS`) and of their options (`_OPTIONS`). The CLI reads
every command line with it except a plain build's, which the fast path reads first
(`fastpath.cmdline`, checked against this one by a property test).

argparse is imported inside the functions, so that importing this module costs little more
than its own code; the CLI imports it only once the fast path has not answered.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from buildflow import __version__
from buildflow.commands import COMMANDS

if TYPE_CHECKING:
    import argparse

# Commands whose targets can be given `{args}` after `--`.
PASSTHROUGH_COMMANDS = ("build", "watch", "status", "explain", "graph")

_EPILOG = ("Plain 'bflow [TARGET..]' means 'bflow build [TARGET..]'. A command's options may "
           "also come before it: 'bflow -j8 build'. Exit status: 0 ok, 1 a task failed, 2 bad "
           "Flowfile or usage, 3 internal error, 130 interrupted.")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, str | None]:
    """The command line read as its command's parser reads it, whatever order the options
    and the command word come in (`bflow -j8 build`, `bflow -k test`, `bflow a -k b`), and
    the word taken for a target when no command word was given (maybe a mistyped command).
    What follows the first `--` is `args.passthrough`, the `{args}` of the named tasks."""
    parser, commands = make_parser()
    words: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, words = argv[:cut], argv[cut + 1:]
    name, rest, first_target = find_command(argv)
    if name is None:
        return parser.parse_args(argv), None  # --help or --version, and no command word
    args = commands[name].parse_intermixed_args(rest)
    args.command = name
    if words and name not in PASSTHROUGH_COMMANDS:
        commands[name].error(f"arguments after -- are for the tasks of "
                             f"{', '.join(PASSTHROUGH_COMMANDS)}, not {name}")
    args.passthrough = tuple(words) or None
    return args, first_target


def find_command(argv: list[str]) -> tuple[str | None, list[str], str | None]:
    """(command, the other arguments, the first target): the command word taken out from
    among the options (`build` when none is given: `bflow`, `bflow all`, `bflow -j4`, and
    then the first target, maybe a mistyped command). The options allowed before the command
    word are a build's, so a build's own options tell the words from the options' values. No
    command when there is no word and `-h`, `--help` or `--version` was given. A command line
    they cannot read is a build's, for its parser to report."""
    finder = _finder()
    words = _words(finder, argv)
    if words is None:
        return "build", argv, None
    if words and words[0] in COMMANDS:
        # The word's place: the first one that is not an option's value.
        index = next(i for i, token in enumerate(argv)
                     if token == words[0] and _words(finder, argv[:i]) == [])
        return words[0], argv[:index] + argv[index + 1:], None
    if not words and {"-h", "--help", "--version"} & set(argv):
        return None, argv, None
    return "build", argv, words[0] if words else None


def _finder() -> argparse.ArgumentParser:
    """A build's options, without help (so that `-h` waits for the command's own) and without
    abbreviations (an abbreviation of another command's option is no build option's)."""
    import argparse

    finder = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False,
                                     formatter_class=_formatter())
    _common(finder)
    _build_options(finder)
    return finder


def _words(finder: argparse.ArgumentParser, argv: list[str]) -> list[str] | None:
    """The words (not options, not their values) `finder` reads in `argv`; None if it cannot
    read it (a value missing or malformed)."""
    import argparse

    try:
        args, _ = finder.parse_known_intermixed_args(argv)
    except argparse.ArgumentError:
        return None
    words: list[str] = args.targets
    return words


def make_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser (for `--help` and `--version`) and one parser per command, which
    reads the whole command line once the command word is taken out of it."""
    import argparse  # here, not at the top: the no-op fast path does without it

    Formatter = _formatter()
    parser = argparse.ArgumentParser(prog="bflow", description="A file-based incremental "
                                     "build tool.", formatter_class=Formatter, epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"bflow {__version__}")
    _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False, formatter_class=Formatter)
    _common(common)
    common.add_argument("--version", action="version", version=f"bflow {__version__}")
    commands = {name: sub.add_parser(name, parents=[common], help=text, description=text,
                                     formatter_class=Formatter)
                for name, text in COMMANDS.items()}
    for name, add_options in _OPTIONS.items():
        add_options(commands[name])
    return parser, commands


def option_words() -> list[str]:
    """Every option any command takes, for completion scripts."""
    import argparse

    _, commands = make_parser()
    words = {option for parser in commands.values() for action in parser._actions
             for option in action.option_strings if action.help != argparse.SUPPRESS}
    return sorted(words)


def _common(parser: argparse.ArgumentParser) -> None:
    """Options allowed before or after the command word."""
    parser.add_argument("-f", "--file", metavar="PATH",
                        help="use this Flowfile instead of searching upward")
    parser.add_argument("-C", "--directory", metavar="DIR",
                        help="change to DIR before doing anything")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print only failures and the summary")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print each command; tracebacks for internal errors")
    parser.add_argument("--plain", action="store_true",
                        help="plain lines, no live display or colour")
    parser.add_argument("--json", action="store_true", help="JSON Lines events on stdout")


def _build_options(parser: argparse.ArgumentParser) -> None:
    """The options of `build` and `watch`, which may also come before the command word."""
    parser.add_argument("targets", nargs="*", metavar="TARGET|VAR=VALUE",
                        help="tasks, TASK:ITEM instances or output paths; VAR=VALUE overrides "
                             "a var")
    parser.add_argument("-j", "--jobs", type=_positive_int, metavar="N",
                        help="run up to N commands at once (default: settings.jobs, else CPUs)")
    parser.add_argument("-k", "--keep-going", action="store_true",
                        help="after a failure, still run everything that does not depend on it")
    parser.add_argument("-n", "--dry-run", action="store_true",
                        help="print what would run and why; run and write nothing")
    parser.add_argument("-B", "--always-make", action="store_true",
                        help="treat every task as stale")
    parser.add_argument("--lock-timeout", type=float, metavar="SECONDS",
                        help="give up when another build holds the lock this long")
    parser.add_argument("--stream", action="store_true",
                        help="print each line of output as it comes, after its task's name")
    parser.add_argument("--trace", metavar="FILE",
                        help="write the build as Chrome trace events (Perfetto) to FILE")
    parser.add_argument("--report", metavar="FILE",
                        help="write a live HTML page of the build (DAG, timeline) to FILE")
    parser.add_argument("--no-cache", action="store_true",
                        help="neither restore from nor store into the output cache")


def _watch_options(parser: argparse.ArgumentParser) -> None:
    _build_options(parser)
    parser.add_argument("--poll", action="store_true",
                        help="poll the filesystem instead of using OS events")
    parser.add_argument("--debounce", type=float, default=0.1, metavar="SECONDS",
                        help="quiet time that ends a burst of changes (default 0.1)")


def _graph_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="TARGET")
    parser.add_argument("--format", choices=("text", "dot", "mermaid", "json"), default="text")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


def _status_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="TARGET")
    parser.add_argument("--check", action="store_true", help="exit 1 when anything is stale")
    parser.add_argument("--outputs", action="store_true",
                        help="without records: compare the outputs with what a build of a "
                             "copy of the files git tracks gives (for pre-commit)")


def _explain_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="TARGET|VAR=VALUE",
                        help="one target; VAR=VALUE overrides a var, as for build")


def _list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "targets", nargs="*", metavar="PATTERN|VAR=VALUE",
        help="task or instance names, with * and ? ('compile:*'); VAR=VALUE overrides a var")


def _clean_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="TARGET")


def _validate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="VAR=VALUE",
                        help="override a var, as for build")


def _log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", metavar="TARGET", help="a task, TASK:ITEM instance or output path")


def _completion_options(parser: argparse.ArgumentParser) -> None:
    import argparse

    parser.add_argument("shell", nargs="?", choices=("bash", "zsh", "fish"))
    parser.add_argument("--names", action="store_true", help=argparse.SUPPRESS)


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="list every task in the history table")


def _cache_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("stats", "clear"))


# The options of each command, besides the common ones (`init` has none).
_OPTIONS = {"build": _build_options, "watch": _watch_options, "graph": _graph_options,
            "status": _status_options, "explain": _explain_options, "list": _list_options,
            "clean": _clean_options, "validate": _validate_options, "log": _log_options,
            "completion": _completion_options, "report": _report_options,
            "cache": _cache_options}


def _formatter() -> type[argparse.HelpFormatter]:
    """argparse's help formatter, told the width: left to find it, it imports `shutil` (with
    bz2 and lzma) for every parser it sets up, help or not."""
    import argparse

    class Formatter(argparse.HelpFormatter):
        def __init__(self, prog: str) -> None:
            super().__init__(prog, width=_help_width())

    return Formatter


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _help_width() -> int:
    """The width help is wrapped to, found as `shutil.get_terminal_size` finds it (COLUMNS,
    then the terminal on stdout, then 80), less the 2 argparse takes off."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):  # closed, or not a terminal
            columns = 0
    return (columns or 80) - 2
