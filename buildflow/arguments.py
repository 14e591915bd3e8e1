"""The command line's one parser: argparse, one sub-parser per command, built from the table
of commands (`buildflow.commands.COMMANDS`) and of their options (`_OPTIONS`). The CLI reads
every command line with it except a plain build's, which the fast path reads first
(`fastpath.cmdline`, checked against this one by a property test).

The CLI imports this module (and with it argparse) only once the fast path has not answered.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from buildflow import __version__
from buildflow.commands import COMMANDS

# Commands whose targets can be given `{args}` after `--`.
PASSTHROUGH_COMMANDS = ("build", "watch", "status", "explain", "graph")
GRAPH_FORMATS = ("text", "dot", "mermaid", "json")  # `graph --format`, as `export` draws them

# Options of other tools (just, go-task, rake, Make) that bflow has as a command or another
# option: an unknown option names bflow's.
OPTIONS_ELSEWHERE = {
    **dict.fromkeys(("--list", "-l", "--list-all", "-T", "--tasks", "--summary"), "'bflow list'"),
    **dict.fromkeys(("--watch", "-w"), "'bflow watch'"),
    **dict.fromkeys(("--silent", "-s"), "-q"),
    "--force": "-B", "-d": "-C DIR",  # --always and --dir are --always-make, --directory
    **dict.fromkeys(("--taskfile", "--makefile", "--justfile"), "-f PATH"),
    "--graph": "'bflow graph'", "--clean": "'bflow clean'", "--status": "'bflow status'",
}

_EPILOG = ("Plain 'bflow [TARGET..]' means 'bflow build [TARGET..]'. The options above and a "
           "build's options may also come before the command word ('bflow -j8 watch'); another "
           "command's own come after it. Exit status: 0 ok, 1 a task failed, 2 bad Flowfile or "
           "usage, 3 internal error, 130 interrupted.")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, str | None]:
    """The command line read as its command's parser reads it, whatever order the options
    and the command word come in (`bflow -j8 build`, `bflow -k test`, `bflow a -k b`), and
    the word taken for a target when no command word was given (maybe a mistyped command).
    What follows the first `--` is `args.passthrough`, the `{args}` of the named tasks."""
    words: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, words = argv[:cut], argv[cut + 1:]
    name, rest, first_target = find_command(argv)
    if name is None:  # --help or --version, and no command word
        return make_parser().parse_args(argv), None
    parser = command_parser(name)
    args, unknown = parser.parse_known_intermixed_args(rest)
    if unknown:  # as parse_intermixed_args says it, with bflow's word for another tool's
        meant = next((OPTIONS_ELSEWHERE[word] for word in unknown if word in OPTIONS_ELSEWHERE),
                     "")
        parser.error(f"unrecognized arguments: {' '.join(unknown)}"
                     + (f" (bflow's: {meant})" if meant else ""))
    args.command = name
    if words and name not in PASSTHROUGH_COMMANDS:
        parser.error(f"arguments after -- are for the tasks of "
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
    finder = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False,
                                     formatter_class=_formatter())
    _add(finder, _COMMON + _BUILD)
    return finder


def _words(finder: argparse.ArgumentParser, argv: list[str]) -> list[str] | None:
    """The words (not options, not their values) `finder` reads in `argv`; None if it cannot
    read it (a value missing or malformed)."""
    try:
        args, _ = finder.parse_known_intermixed_args(argv)
    except argparse.ArgumentError:
        return None
    words: list[str] = args.targets
    return words


def make_parser() -> argparse.ArgumentParser:
    """The top-level parser: `--help` (which lists the commands) and `--version`."""
    Formatter = _formatter()
    parser = argparse.ArgumentParser(prog="bflow", description="A file-based incremental "
                                     "build tool.", formatter_class=Formatter, epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"bflow {__version__}")
    _add(parser, _COMMON)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in COMMANDS.items():
        sub.add_parser(name, help=text)
    return parser


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one command, which reads the whole command line once the command word
    is taken out of it. Only the command given is made: making all of them is most of the
    time argparse takes (docs/speed.md)."""
    Formatter = _formatter()
    parser = argparse.ArgumentParser(prog=f"bflow {name}", description=COMMANDS[name],
                                     formatter_class=Formatter)
    _add(parser, _COMMON)
    parser.add_argument("--version", action="version", version=f"bflow {__version__}")
    _add(parser, _OPTIONS.get(name, ()))
    return parser


def option_words() -> list[str]:
    """Every option any command takes, for completion scripts."""
    parsers = map(command_parser, COMMANDS)
    words = {option for parser in parsers for action in parser._actions
             for option in action.option_strings if action.help != argparse.SUPPRESS}
    return sorted(words)


# Each option (or positional argument): its names, and what argparse is told of it.
Option = tuple[tuple[str, ...], dict[str, Any]]

# Options allowed before or after the command word.
_COMMON: tuple[Option, ...] = (
    (("-f", "--file"), {"metavar": "PATH",
                        "help": "use this Flowfile instead of searching upward"}),
    (("-C", "--directory"), {"metavar": "DIR", "help": "change to DIR before doing anything"}),
    (("-q", "--quiet"), {"action": "store_true", "help": "print only failures and the summary"}),
    (("-v", "--verbose"), {"action": "store_true",
                           "help": "print each command; tracebacks for internal errors"}),
    (("--plain",), {"action": "store_true", "help": "plain lines, no live display or colour"}),
    (("--json",), {"action": "store_true", "help": "JSON Lines events on stdout"}),
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    """A time in seconds: a number, 0 or more (`inf` is forever)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:  # a negative number, or nan
        raise argparse.ArgumentTypeError(f"expected 0 seconds or more, got {text}")
    return value


def _debounce(text: str) -> float:
    """A quiet time that ends: `inf` would never build."""
    value = _seconds(text)
    if value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got {text}")
    return value


def _executor_url(text: str) -> str:
    from buildflow.executors import url_problem

    problem = url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


# The options of `build` and `watch`, which may also come before the command word.
_BUILD: tuple[Option, ...] = (
    (("targets",), {"nargs": "*", "metavar": "TARGET|VAR=VALUE",
                    "help": "tasks, TASK:ITEM instances or output paths; VAR=VALUE overrides "
                            "a var"}),
    (("-j", "--jobs"), {"type": _positive_int, "metavar": "N",
                        "help": "run up to N commands at once (default: settings.jobs, else "
                                "CPUs)"}),
    (("-k", "--keep-going"), {"action": "store_true",
                              "help": "after a failure, still run everything that does not "
                                      "depend on it"}),
    (("-n", "--dry-run"), {"action": "store_true",
                           "help": "print what would run and why; run and write nothing"}),
    (("-B", "--always-make"), {"action": "store_true", "help": "treat every task as stale"}),
    (("--lock-timeout",), {"type": _seconds, "metavar": "SECONDS",
                           "help": "give up when another build holds the lock this long"}),
    (("--stream",), {"action": "store_true",
                     "help": "print each line of output as it comes, after its task's name"}),
    (("--trace",), {"metavar": "FILE",
                    "help": "write the build as Chrome trace events (Perfetto) to FILE"}),
    (("--report",), {"metavar": "FILE",
                     "help": "write a live HTML page of the build (DAG, timeline) to FILE"}),
    (("--no-cache",), {"action": "store_true",
                       "help": "neither restore from nor store into the output cache"}),
    (("--executor",), {"metavar": "URL", "type": _executor_url,
                       "help": "where commands run: local (default: settings.executor, else "
                               "local) or dask://HOST:PORT, a Dask scheduler"}),
)


def _targets(metavar: str, help_text: str | None = None) -> tuple[Option, ...]:
    return ((("targets",), {"nargs": "*", "metavar": metavar, "help": help_text}),)


# The options of each command, besides the common ones (`init` has none).
_OPTIONS: dict[str, tuple[Option, ...]] = {
    "build": _BUILD,
    "watch": _BUILD + (
        (("--poll",), {"action": "store_true",
                       "help": "poll the filesystem instead of using OS events"}),
        (("--debounce",), {"type": _debounce, "default": 0.1, "metavar": "SECONDS",
                           "help": "quiet time that ends a burst of changes (default 0.1)"})),
    "graph": _targets("TARGET|VAR=VALUE", "tasks (default: all); VAR=VALUE overrides a var")
    + ((("--format",), {"choices": GRAPH_FORMATS, "default": "text",
                        "help": "how to draw it (default text)"}),
        (("-o", "--output"), {"metavar": "FILE", "help": "write to FILE instead of stdout"})),
    "status": _targets("TARGET|VAR=VALUE", "tasks (default: all); VAR=VALUE overrides a var")
    + (
        (("--check",), {"action": "store_true", "help": "exit 1 when anything is stale"}),
        (("--outputs",), {"action": "store_true",
                          "help": "without records: compare the outputs git's index holds with "
                                  "what a build of a copy of the index gives (for "
                                  "pre-commit)"})),
    "explain": _targets("TARGET|VAR=VALUE",
                        "one target; VAR=VALUE overrides a var, as for build"),
    "list": (*_targets("PATTERN|VAR=VALUE", "task or instance names, with * and ? "
                       "('compile:*'); VAR=VALUE overrides a var"),
             (("--kinds",), {"action": "store_true",
                             "help": "list the installed task kinds instead (no Flowfile "
                                     "needed)"})),
    "clean": _targets("TARGET|VAR=VALUE",
                      "tasks whose outputs to delete (default: all); VAR=VALUE overrides a var"),
    "validate": _targets("VAR=VALUE", "override a var, as for build"),
    "log": ((("task",), {"metavar": "TARGET",
                         "help": "a task, TASK:ITEM instance or output path"}),),
    "completion": ((("shell",), {"nargs": "?", "choices": ("bash", "zsh", "fish")}),
                   (("--names",), {"action": "store_true", "help": argparse.SUPPRESS})),
    "report": ((("--all",), {"action": "store_true",
                             "help": "list every task in the history table"}),),
    "cache": ((("action",), {"choices": ("stats", "clear")}),),
}


def _add(parser: argparse.ArgumentParser, options: tuple[Option, ...]) -> None:
    for names, settings in options:
        parser.add_argument(*names, **settings)


def _formatter() -> type[argparse.HelpFormatter]:
    """argparse's help formatter, told the width: left to find it, it imports `shutil` (with
    bz2 and lzma) for every parser it sets up, help or not."""
    class Formatter(argparse.HelpFormatter):
        def __init__(self, prog: str) -> None:
            super().__init__(prog, width=_help_width())

    return Formatter


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
