"""`bflow`: argparse and dispatch. The only module that reads argv; every command is a function
in `buildflow.commands` that takes explicit arguments and returns an exit code."""

from __future__ import annotations

import os
import sys

from buildflow import __version__
from buildflow.errors import (EXIT_BUG, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, FatalError,
                              Interrupted, UsageError, did_you_mean)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import NoReturn

    from buildflow.fastpath import FastOptions

COMMANDS = ("build", "watch", "graph", "status", "explain", "list", "clean", "validate", "init",
            "log", "completion", "report", "cache")
# Options that take a value, so the command word can be found without parsing.
_VALUE_OPTIONS = {"-f", "--file", "-C", "--directory", "-j", "--jobs", "--lock-timeout",
                  "--format", "-o", "--output", "--debounce", "--trace", "--report"}
_SHORT_VALUES = "fCjo"  # the short ones, as the last letter of a cluster such as `-kj 4`
_SHORT_FLAGS = "qvkBnh"


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options allowed before or after the command word."""
    import argparse

    default = argparse.SUPPRESS if suppress else None
    flag = argparse.SUPPRESS if suppress else False
    parser.add_argument("-f", "--file", metavar="PATH", default=default,
                        help="use this Flowfile instead of searching upward")
    parser.add_argument("-C", "--directory", metavar="DIR", default=default,
                        help="change to DIR before doing anything")
    parser.add_argument("-q", "--quiet", action="store_true", default=flag,
                        help="print only failures and the summary")
    parser.add_argument("-v", "--verbose", action="store_true", default=flag,
                        help="print each command; tracebacks for internal errors")
    parser.add_argument("--plain", action="store_true", default=flag,
                        help="plain lines, no live display or colour")
    parser.add_argument("--json", action="store_true", default=flag,
                        help="JSON Lines events on stdout")


def _build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="TARGET|VAR=VALUE",
                        help="tasks, TASK:ITEM instances or output paths; VAR=VALUE overrides a var")
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


def make_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser (for `--help` and `--version`) and one parser per command, which
    reads the whole command line once the command word is moved to its front."""
    import argparse  # here, not at the top: the no-op fast path does without it

    class Formatter(argparse.HelpFormatter):
        """argparse's own, told the width: left to find it, it imports `shutil` (with bz2 and
        lzma, 3 ms) for every command that parses its arguments, help or not."""

        def __init__(self, prog: str) -> None:
            super().__init__(prog, width=_help_width())

    parser = argparse.ArgumentParser(
        prog="bflow", description="A file-based incremental build tool.",
        formatter_class=Formatter,
        epilog="Plain 'bflow [TARGET..]' means 'bflow build [TARGET..]'. A command's "
               "options may also come before it: 'bflow -j8 build'. "
               "Exit status: 0 ok, 1 a task failed, 2 bad Flowfile or usage, 3 internal "
               "error, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"bflow {__version__}")
    _common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False, formatter_class=Formatter)
    _common(common, suppress=False)
    common.add_argument("--version", action="version", version=f"bflow {__version__}")
    commands: dict[str, argparse.ArgumentParser] = {}

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        commands[name] = sub.add_parser(name, parents=[common], help=help_text,
                                        description=help_text, formatter_class=Formatter)
        return commands[name]

    _build_options(command("build", "build targets and what they need"))
    watch = command("watch", "build, then rebuild on every change until Ctrl-C")
    _build_options(watch)
    watch.add_argument("--poll", action="store_true",
                       help="poll the filesystem instead of using OS events")
    watch.add_argument("--debounce", type=float, default=0.1, metavar="SECONDS",
                       help="quiet time that ends a burst of changes (default 0.1)")
    graph = command("graph", "print the task graph")
    graph.add_argument("targets", nargs="*", metavar="TARGET")
    graph.add_argument("--format", choices=("text", "dot", "mermaid", "json"), default="text")
    graph.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    status = command("status", "list stale tasks with the first reason each")
    status.add_argument("targets", nargs="*", metavar="TARGET")
    status.add_argument("--check", action="store_true", help="exit 1 when anything is stale")
    status.add_argument("--outputs", action="store_true",
                        help="without records: compare the outputs with what a build of a "
                             "copy of the files git tracks gives (for pre-commit)")
    explain = command("explain", "every reason a target is stale")
    explain.add_argument("targets", nargs="*", metavar="TARGET|VAR=VALUE",
                         help="one target; VAR=VALUE overrides a var, as for build")
    listing = command("list", "tasks with their descriptions; with patterns, matching tasks "
                              "and instances")
    listing.add_argument(
        "targets", nargs="*", metavar="PATTERN|VAR=VALUE",
        help="task or instance names, with * and ? ('compile:*'); VAR=VALUE overrides a var")
    listing.add_argument("--kinds", action="store_true",
                         help="list the installed task kinds instead (no Flowfile needed)")
    command("validate", "check the Flowfile: errors exit 2, warnings exit 0").add_argument(
        "targets", nargs="*", metavar="VAR=VALUE", help="override a var, as for build")
    clean = command("clean", "delete declared outputs (of the named tasks, or all) and records")
    clean.add_argument("targets", nargs="*", metavar="TARGET")
    command("init", "write a commented starter Flowfile (never overwrites)")
    log = command("log", "print the saved output of a task's last run")
    log.add_argument("task", metavar="TARGET", help="a task, TASK:ITEM instance or output path")
    completion = command("completion", "print a shell completion script (commands, options, "
                                       "tasks and instances)")
    completion.add_argument("shell", nargs="?", choices=("bash", "zsh", "fish"))
    completion.add_argument("--names", action="store_true", help=argparse.SUPPRESS)
    command("report", "the last build's critical path and slowest tasks, and each task's "
                      "history").add_argument("--all", action="store_true",
                                              help="list every task in the history table")
    cache = command("cache", "the output cache shared by your projects: stats, or clear it")
    cache.add_argument("action", choices=("stats", "clear"))
    return parser, commands


def _option_words() -> list[str]:
    """Every option any command takes, for completion scripts."""
    import argparse

    _, commands = make_parser()
    words = {option for parser in commands.values() for action in parser._actions
             for option in action.option_strings if action.help != argparse.SUPPRESS}
    return sorted(words)


# Commands whose targets can be given `{args}` after `--`.
_PASSTHROUGH_COMMANDS = ("build", "watch", "status", "explain", "graph")


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
    name, rest, first_target = _with_command(argv)
    if name is None:
        return parser.parse_args(argv), None  # --help or --version before any command
    args = commands[name].parse_intermixed_args(rest)
    args.command = name
    if words and name not in _PASSTHROUGH_COMMANDS:
        commands[name].error(f"arguments after -- are for the tasks of "
                             f"{', '.join(_PASSTHROUGH_COMMANDS)}, not {name}")
    args.passthrough = tuple(words) or None
    return args, first_target


def _with_command(argv: list[str]) -> tuple[str | None, list[str], str | None]:
    """(command, the other arguments, the first target): the command word taken out from
    among the options (`build` when none is given: `bflow`, `bflow all`, `bflow -j4`); no
    command when `-h`, `--help` or `--version` comes first."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            break
        if token.startswith("-"):
            if token in ("-h", "--help", "--version"):
                return None, argv, None
            if _takes_value(token):
                index += 1
            index += 1
            continue
        if token in COMMANDS:
            return token, argv[:index] + argv[index + 1:], None
        return "build", argv, token
    return "build", argv, None


def _takes_value(token: str) -> bool:
    """Whether the next argument is this option's value: `-j`, `--file`, and a cluster of
    short flags ending in such an option (`-kj`)."""
    if token in _VALUE_OPTIONS:
        return True
    return (not token.startswith("--") and len(token) > 2 and token[-1] in _SHORT_VALUES
            and all(letter in _SHORT_FLAGS for letter in token[1:-1]))


def _split_overrides(targets: list[str]) -> tuple[list[str], dict[str, str]]:
    plain, overrides = [], {}
    for target in targets:
        name, sep, value = target.partition("=")
        if sep and name.isidentifier():
            overrides[name] = value
        elif sep:
            raise UsageError(f"'{target}': a var override is NAME=VALUE with NAME a var name")
        else:
            plain.append(target)
    return plain, overrides


# Options of a plain build that need no argparse: with `-j N`, `bflow [build] [TARGET..]` is
# what runs thousands of times a day, and argparse costs its no-op 9 ms to import and set up.
_SIMPLE_FLAGS = {"-k": "keep_going", "--keep-going": "keep_going", "-q": "quiet",
                 "--quiet": "quiet", "--plain": "plain", "--stream": "stream"}


def _simple_build(argv: list[str]) -> tuple[list[str], dict[str, str], FastOptions] | None:
    """(targets, overrides, options) when `argv` is a plain build with nothing but the options
    above and `-jN`; None for anything else, which argparse reads."""
    words, flags, jobs, index = [], set(), None, 0
    while index < len(argv):
        token = argv[index]
        if token in ("-j", "--jobs") and _positive(argv[index + 1:index + 2]):
            index += 1
            jobs = int(argv[index])
        elif token.startswith("-j") and _positive([token[2:]]):
            jobs = int(token[2:])
        elif token in _SIMPLE_FLAGS:
            flags.add(_SIMPLE_FLAGS[token])
        elif token.startswith("-"):
            return None
        else:
            words.append(token)
        index += 1
    if words[:1] == ["build"]:
        words = words[1:]
    elif words and words[0] in COMMANDS:
        return None
    try:
        targets, overrides = _split_overrides(words)
    except UsageError:
        return None
    from buildflow.fastpath import FastOptions

    return targets, overrides, FastOptions(jobs=jobs, keep_going="keep_going" in flags,
                                           quiet="quiet" in flags, plain="plain" in flags,
                                           stream="stream" in flags)


def _positive(texts: list[str]) -> bool:
    return bool(texts) and texts[0].isascii() and texts[0].isdigit() and int(texts[0]) > 0


def run() -> NoReturn:
    """Run the command line and end the process without the interpreter's teardown (freeing
    a build's objects one by one: 4 ms of a 50 ms no-op). By then every file bflow wrote is
    closed and every thread it started has ended; only the standard streams are flushed here.
    Should that fail (a closed pipe), Python exits the usual way and deals with it; so it
    does under a profiler or a coverage tool, which write their data at exit."""
    status = main()
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(status)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        sys.exit(status)
    os._exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == ["--version"]:  # as argparse would print it, without its 9 ms
        print(f"bflow {__version__}")
        return EXIT_OK
    _interrupt_on_sigterm()
    simple = _simple_build(args_list)
    first_target: str | None = None
    verbose = False
    try:
        if simple is not None:
            from buildflow import fastpath

            status = fastpath.try_build(*simple)
            if status is not None:
                return status
        args, first_target = parse_args(args_list)
        verbose = bool(getattr(args, "verbose", False))
        if args.directory:
            try:
                os.chdir(args.directory)
            except OSError as exc:
                raise UsageError(f"-C {args.directory}: {exc.strerror}") from None
        return _dispatch(args, tried_fast=simple is not None)
    except FatalError as exc:
        message = str(exc)
        if first_target and message.startswith(f"unknown target '{first_target}'"):
            hint = did_you_mean(first_target, COMMANDS)
            message += hint.replace("(did you mean", "(or the command")
        prefix = "bflow: error: "
        print("\n".join(prefix + line for line in message.split("\n")), file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (`bflow --json | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except (KeyboardInterrupt, Interrupted):
        print("bflow: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        return _report_bug(verbose)


def _interrupt_on_sigterm() -> None:
    """SIGTERM outside a build (loading, waiting for the lock, the fast path) unwinds as
    Ctrl-C does (through `signals`: `signal` builds enums at import, and `enum` is 3 ms of a
    60 ms no-op build)."""
    from buildflow.signals import SIGTERM, signal

    try:
        signal(SIGTERM, _raise_interrupted)
    except ValueError:  # not the main thread: the caller handles signals
        pass


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted  # SIGTERM outside a build (loading, waiting for the lock) unwinds too


def _report_bug(verbose: bool) -> int:
    import tempfile
    import traceback

    text = traceback.format_exc()
    if verbose:
        print(text, file=sys.stderr)
    try:
        fd, path = tempfile.mkstemp(prefix="bflow-crash-", suffix=".txt")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        where = f"the traceback was written to {path}; please report it with that file"
    except OSError as exc:
        where = f"the traceback could not be saved ({exc.strerror}); rerun with -v to see it"
    print(f"bflow: internal error (a bug in bflow): {text.strip().splitlines()[-1]}\n"
          f"bflow: {where}", file=sys.stderr)
    return EXIT_BUG


def _writable(path: str | None, option: str) -> str | None:
    """The absolute path of a file an option names, checked before the build starts."""
    if path is None:
        return None
    full = os.path.abspath(path)
    if os.path.isdir(full):
        example = "build.html" if option == "--report" else "trace.json"
        raise UsageError(f"{option} {path}: is a directory; name a file, such as "
                         f"{os.path.join(path, example)}")
    if not os.path.isdir(os.path.dirname(full)):
        raise UsageError(f"{option} {path}: directory {os.path.dirname(path) or '.'} does not "
                         "exist; create it first, or name a file in an existing directory")
    return full


def _dispatch(args: argparse.Namespace, *, tried_fast: bool) -> int:
    output = {"quiet": args.quiet, "verbose": args.verbose, "plain": args.plain,
              "json": args.json}
    name = args.command
    if name == "init":
        from buildflow.commands import init

        return init.run(directory=os.getcwd(), file=args.file)
    if name == "completion":
        from buildflow.commands import completion

        if args.names:
            return completion.names(file=args.file)
        if args.shell is None:
            raise UsageError("bflow completion needs a shell: bash, zsh or fish "
                             "(source <(bflow completion bash))")
        return completion.run(shell=args.shell, commands=COMMANDS, options=_option_words())
    if name == "cache":
        from buildflow.commands import cache

        return cache.run(action=args.action)
    if name == "list" and args.kinds:
        from buildflow.commands import listing

        return listing.kinds()
    targets, overrides = _split_overrides(getattr(args, "targets", []))
    if targets and name == "validate":
        raise UsageError(f"bflow {name} takes no targets, only VAR=VALUE overrides "
                         f"(got '{targets[0]}')")
    if name == "explain" and len(targets) != 1:
        raise UsageError("bflow explain takes one TARGET (a task, TASK:ITEM or output path)"
                         + (f", got {len(targets)}: {' '.join(targets)}" if targets else ""))
    if name == "status" and args.outputs:
        # Loaded without the project cache, which would write into the cache dir.
        from buildflow.commands import status
        from buildflow.flowfile import resolve_path
        from buildflow.project import load

        return status.outputs(load(resolve_path(args.file, None), overrides), targets=targets,
                              overrides=overrides, check=args.check)
    from buildflow import fastpath
    from buildflow.fastpath import FastOptions
    from buildflow.model import Passthrough

    passthrough = None
    if args.passthrough:
        passthrough = Passthrough(tuple(targets), args.passthrough, os.getcwd())
    if name == "build" and not (tried_fast or args.dry_run or args.always_make or args.json
                                or args.verbose or passthrough or args.trace or args.report):
        fast = fastpath.try_build(targets, overrides, FastOptions(
            file=args.file, jobs=args.jobs, keep_going=args.keep_going, quiet=args.quiet,
            plain=args.plain, stream=args.stream, cache=not args.no_cache))
        if fast is not None:
            return fast
    loaded = fastpath.load(file=args.file, overrides=overrides, args=passthrough)
    project = loaded.project
    if name in ("build", "watch"):
        build_options = {"targets": targets, "jobs": args.jobs, "keep_going": args.keep_going,
                         "dry_run": args.dry_run, "force": args.always_make,
                         "lock_timeout": args.lock_timeout, "stream": args.stream,
                         "trace": _writable(args.trace, "--trace"),
                         "report": _writable(args.report, "--report"),
                         "cache": not args.no_cache, **output}
        if name == "watch":
            from buildflow.commands import watch

            return watch.run(project, poll=args.poll, debounce=args.debounce,
                             overrides=overrides, **build_options)
        from buildflow.commands import build

        return build.run(project, on_result=lambda result: fastpath.remember(
            loaded, result, targets, os.getcwd()), **build_options)
    if name == "graph":
        from buildflow.commands import graph

        return graph.run(project, targets=targets, fmt=args.format, output=args.output,
                         plain=args.plain)
    if name == "status":
        from buildflow.commands import status

        return status.run(project, targets=targets, check=args.check)
    if name == "explain":
        from buildflow.commands import status

        return status.explain(project, target=targets[0])
    if name == "list":
        from buildflow.commands import listing

        return listing.run(project, patterns=targets)
    if name == "clean":
        from buildflow.commands import clean

        return clean.run(project, targets=targets)
    if name == "validate":
        from buildflow.commands import validate

        return validate.run(project)
    if name == "log":
        from buildflow.commands import log

        return log.run(project, task=args.task)
    if name == "report":
        from buildflow.commands import report

        return report.run(project, show_all=args.all)
    raise AssertionError(name)
