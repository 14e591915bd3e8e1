"""`bflow`: the command line read and dispatched. The only module that reads argv: a plain
build's through the fast path's reader (`fastpath.cmdline`), everything else through the one
argparse parser (`arguments`); then each command is a function in `buildflow.commands` that
takes explicit arguments and returns an exit code, found in the table at the end."""

from __future__ import annotations

import os
import sys

from buildflow import __version__
from buildflow.commands import COMMANDS
from buildflow.errors import (EXIT_BUG, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, FatalError,
                              Interrupted, UsageError, did_you_mean, raise_interrupted)
from buildflow.fastpath import cmdline

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping, Sequence
    from typing import NoReturn

    from buildflow.fastpath.projectcache import Loaded
    from buildflow.model import Project


# Words that other tools take as commands (`just help`, `task tasks`), said as bflow's when no
# task has that name.
_COMMANDS_ELSEWHERE = {"help": "--help", "tasks": "list", "ls": "list"}


def run() -> NoReturn:
    """Run the command line and end the process without the interpreter's teardown (freeing
    a build's objects one by one, a part of a no-op worth sparing: docs/speed.md). By then
    every file bflow wrote is closed and every thread it started has ended; only the standard
    streams are flushed here. Should that fail (a closed pipe), Python exits the usual way and
    deals with it; so it does under a profiler or a coverage tool, which write their data at
    exit."""
    if _hold_standard_streams():
        print("bflow: error: stdout is closed, so nothing runs (as when it closes during a "
              "build); give bflow one: `> /dev/null` for none", file=sys.stderr)
        os._exit(EXIT_FAILED)
    status = main()
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(status)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        sys.exit(status)
    os._exit(status)


def _hold_standard_streams() -> bool:
    """Open /dev/null on each of stdin, stdout and stderr that bflow was started without
    (`bflow >&-`), so that no file it opens (the state, the lock) takes that descriptor and
    gets what is printed; whether stdout was one of them. A stdout or stderr its parent left
    non-blocking is made blocking: printing would drop what a full pipe does not take."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            if fd and not os.get_blocking(fd):
                os.set_blocking(fd, True)
        except OSError:
            closed.append(fd)
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if 2 in closed:
        sys.stderr = open(2, "w", errors="backslashreplace", closefd=False)
    return 1 in closed


def _anchor_git_environment() -> None:
    """The repository git gives a hook, made to hold wherever bflow and its commands run git:
    GIT_DIR and GIT_WORK_TREE are relative to the directory bflow starts in (`git --git-dir=D
    --work-tree=W commit` gives its hooks `GIT_WORK_TREE=.`), and a GIT_DIR without
    GIT_WORK_TREE (a linked worktree's hooks, or one with `core.worktree`) means the work tree
    is that directory, where git runs hooks. Made absolute before `-C` moves elsewhere, or
    git run in a project below the top (`bflow -C apps/web`) takes it for the top."""
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        if os.environ.get(name) and not os.path.isabs(os.environ[name]):
            os.environ[name] = os.path.abspath(os.environ[name])
    try:
        os.environ.setdefault("GIT_WORK_TREE", os.getcwd())
    except FileNotFoundError:  # said once bflow needs the directory
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == ["--version"]:  # as argparse would print it, without importing it
        print(f"bflow {__version__}")
        return EXIT_OK
    _interrupt_on_signals()
    if "GIT_DIR" in os.environ:
        _anchor_git_environment()
    simple = cmdline.read(args_list, COMMANDS)
    first_target: str | None = None
    verbose = False
    try:
        if simple is not None:
            _require_working_directory()
            from buildflow import fastpath

            status = fastpath.try_build(*simple)
            if status is not None:
                return status
        from buildflow.arguments import parse_args

        args, first_target = parse_args(args_list)
        verbose = bool(getattr(args, "verbose", False))
        if args.directory == "":
            raise UsageError("-C needs a directory, such as -C src (an empty name is none)")
        if args.directory:
            try:
                os.chdir(args.directory)
            except OSError as exc:
                raise UsageError(f"-C {args.directory}: {exc.strerror}") from None
        elif simple is None:  # a plain build's was checked before the fast path
            _require_working_directory()
        if simple is None:
            status = _try_fast(args)
            if status is not None:
                return status
        return _HANDLERS[args.command](args)
    except FatalError as exc:
        message = str(exc)
        if first_target and message.startswith(f"unknown target '{first_target}'") \
                and "(did you mean" not in message:  # a target near it comes first
            meant = _COMMANDS_ELSEWHERE.get(first_target)
            message += f" (or 'bflow {meant}'?)" if meant else \
                did_you_mean(first_target, COMMANDS).replace("(did you mean", "(or the command")
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


def _require_working_directory() -> None:
    """Every path bflow reads starts from here. A directory removed under the shell (a branch
    switch, an `rm -rf` of a build tree) would otherwise surface deep inside as a bug."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise UsageError("the current directory no longer exists (it was removed or renamed);"
                         " cd into the project again, or name it with -C DIR") from None


def _interrupt_on_signals() -> None:
    """SIGTERM and SIGHUP outside a build (loading, waiting for the lock, the fast path)
    unwind as Ctrl-C does (through `signals`, which spares the no-op the enums `signal`
    builds)."""
    from buildflow.signals import SIGINT, interrupts, signal

    try:
        for signum in interrupts():
            if signum != SIGINT:
                signal(signum, raise_interrupted)
    except ValueError:  # not the main thread: the caller handles signals
        pass


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


# What each option that names a file to write is for, and a name to suggest.
_WRITTEN = {"--trace": ("trace", "trace.json"), "--report": ("report", "build.html"),
            "-o": ("graph", "graph.dot")}


def _writable(path: str | None, option: str, project: Project) -> str | None:
    """The absolute path of a file an option names, checked before anything runs: never one
    of the project's own (the Flowfile, what a task reads or writes, the cache dir)."""
    if path is None:
        return None
    what, example = _WRITTEN[option]
    if not path:
        raise UsageError(f"{option} needs the name of a file, such as {example}")
    full = os.path.abspath(path)
    whose = _project_file(project, full)
    if whose:
        raise UsageError(f"{option} {path}: {whose}; name a file of your own for the {what}")
    if os.path.isdir(full):
        raise UsageError(f"{option} {path}: is a directory; name a file, such as "
                         f"{os.path.join(path, example)}")
    if not os.path.isdir(os.path.dirname(full)):
        raise UsageError(f"{option} {path}: directory {os.path.dirname(path) or '.'} does not "
                         "exist; create it first, or name a file in an existing directory")
    try:
        os.stat(full)
    except FileNotFoundError:
        pass
    except OSError as exc:  # a name too long, a directory on the way that cannot be searched
        raise UsageError(f"{option} {path}: {exc.strerror}") from None
    if not os.access(os.path.dirname(full), os.W_OK):
        raise UsageError(f"{option} {path}: directory {os.path.dirname(path) or '.'} is not "
                         "writable; name a file in a directory you can write")
    return full


def _project_file(project: Project, path: str) -> str:
    """What `path` is to `project` ("is the Flowfile", "is an output of task 'x'"); "" for
    none of its files."""
    real, root = os.path.realpath(path), os.path.realpath(project.root)
    if real == os.path.realpath(project.flowfile):
        return "is the Flowfile"
    if real == os.path.realpath(project.cache_dir) or \
            real.startswith(os.path.realpath(project.cache_dir) + os.sep):
        return f"is in the cache dir {project.settings.cache_dir}"
    if not real.startswith(root + os.sep):
        return ""
    rel = real[len(root) + 1:]
    for task in project.tasks.values():
        if rel in task.outputs or rel == task.depfile:
            return f"is an output of task '{task.name}'"
        if rel in task.inputs:
            return f"is an input of task '{task.name}'"
    code = {os.path.realpath(file) for file, digest in project.code if digest}
    return "is a Python file of the project" if real in code else ""


def _try_fast(args: argparse.Namespace) -> int | None:
    """A build's exit status from the fast path, when its command line (one the fast path's
    reader left to argparse: `-f`, `--no-cache`, an option after the targets) allows it."""
    if args.command != "build" or (args.dry_run or args.always_make or args.json
                                   or args.verbose or args.passthrough
                                   or args.trace is not None or args.report is not None):
        return None
    from buildflow import fastpath

    targets, overrides = cmdline.split_overrides(args.targets)
    return fastpath.try_build(targets, overrides, fastpath.FastOptions(
        file=args.file, jobs=args.jobs, keep_going=args.keep_going, quiet=args.quiet,
        plain=args.plain, stream=args.stream, cache=not args.no_cache,
        executor=args.executor))


def _load(args: argparse.Namespace, targets: Sequence[str] = (),
          overrides: Mapping[str, str] | None = None) -> Loaded:
    """The project the command line names, through the project cache, with its var
    overrides and the `{args}` after `--` for `targets`."""
    from buildflow import fastpath
    from buildflow.model import Passthrough

    passthrough = None
    if args.passthrough:
        passthrough = Passthrough(tuple(targets), args.passthrough, os.getcwd())
    return fastpath.load(file=args.file, overrides=overrides or {}, args=passthrough)


def _build(args: argparse.Namespace) -> int:
    """`build` and `watch`."""
    from buildflow import fastpath

    targets, overrides = cmdline.split_overrides(args.targets)
    loaded = _load(args, targets, overrides)
    if args.trace and args.report and os.path.abspath(args.trace) == os.path.abspath(args.report):
        raise UsageError(f"--trace and --report both name {args.trace}; name a file for each")
    options = {"targets": targets, "jobs": args.jobs, "keep_going": args.keep_going,
               "dry_run": args.dry_run, "force": args.always_make,
               "lock_timeout": args.lock_timeout, "stream": args.stream,
               "trace": _writable(args.trace, "--trace", loaded.project),
               "report": _writable(args.report, "--report", loaded.project),
               "cache": not args.no_cache,
               "executor": args.executor, "quiet": args.quiet, "verbose": args.verbose, "plain": args.plain,
               "json": args.json}
    if args.command == "watch":
        from buildflow.commands import watch

        return watch.run(loaded.project, poll=args.poll, debounce=args.debounce,
                         overrides=overrides, **options)
    from buildflow.commands import build

    cwd = os.getcwd()  # now: a task may remove the directory bflow was started in
    return build.run(loaded.project, on_result=lambda result: fastpath.remember(
        loaded, result, targets, cwd), **options)


def _graph(args: argparse.Namespace) -> int:
    from buildflow.commands import graph

    targets, overrides = cmdline.split_overrides(args.targets)
    project = _load(args, targets, overrides).project
    return graph.run(project, targets=targets, fmt=args.format,
                     output=_writable(args.output, "-o", project), plain=args.plain)


def _status(args: argparse.Namespace) -> int:
    from buildflow.commands import status

    targets, overrides = cmdline.split_overrides(args.targets)
    if args.outputs:
        # Found in the index and loaded only in the copy of it: the disk may lack the
        # Flowfile or its inputs (a sparse checkout, a deletion not staged) or hold an edit
        # not staged.
        from buildflow.outputcheck import flowfile_in_index

        return status.outputs(flowfile_in_index(args.file, os.getcwd()),
                              targets=targets, overrides=overrides, check=args.check)
    return status.run(_load(args, targets, overrides).project, targets=targets,
                      check=args.check)


def _explain(args: argparse.Namespace) -> int:
    from buildflow.commands import status

    targets, overrides = cmdline.split_overrides(args.targets)
    if len(targets) != 1:
        raise UsageError("bflow explain takes one TARGET (a task, TASK:ITEM or output path)"
                         + (f", got {len(targets)}: {' '.join(targets)}" if targets else ""))
    return status.explain(_load(args, targets, overrides).project, target=targets[0])


def _list(args: argparse.Namespace) -> int:
    from buildflow.commands import listing

    if args.kinds:
        if args.targets:  # a pattern or VAR=VALUE would be ignored, silently
            raise UsageError(f"list --kinds takes nothing more (got {' '.join(args.targets)}); "
                             "it lists every installed kind")
        return listing.kinds()
    targets, overrides = cmdline.split_overrides(args.targets)
    return listing.run(_load(args, targets, overrides).project, patterns=targets)


def _clean(args: argparse.Namespace) -> int:
    from buildflow.commands import clean

    targets, overrides = cmdline.split_overrides(args.targets)
    return clean.run(_load(args, targets, overrides).project, targets=targets)


def _validate(args: argparse.Namespace) -> int:
    from buildflow.commands import validate

    targets, overrides = cmdline.split_overrides(args.targets)
    if targets:
        raise UsageError(f"bflow validate takes no targets, only VAR=VALUE overrides "
                         f"(got '{targets[0]}')")
    return validate.run(_load(args, targets, overrides).project)


def _init(args: argparse.Namespace) -> int:
    from buildflow.commands import init

    return init.run(directory=os.getcwd(), file=args.file, changed_to=args.directory)


def _log(args: argparse.Namespace) -> int:
    from buildflow.commands import log

    return log.run(_load(args).project, task=args.task)


def _completion(args: argparse.Namespace) -> int:
    from buildflow.arguments import GRAPH_FORMATS, option_words
    from buildflow.commands import completion

    if args.names:
        return completion.names(file=args.file)
    if args.shell is None:
        raise UsageError("bflow completion needs a shell: bash, zsh or fish "
                         "(source <(bflow completion bash))")
    return completion.run(shell=args.shell, commands=tuple(COMMANDS), options=option_words(),
                          formats=GRAPH_FORMATS)


def _report(args: argparse.Namespace) -> int:
    from buildflow.commands import report

    return report.run(_load(args).project, show_all=args.all)


def _cache(args: argparse.Namespace) -> int:
    from buildflow.commands import cache

    return cache.run(action=args.action)


# What each command runs, given its parsed command line.
_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "build": _build, "watch": _build, "graph": _graph, "status": _status,
    "explain": _explain, "list": _list, "clean": _clean, "validate": _validate, "init": _init,
    "log": _log, "completion": _completion, "report": _report, "cache": _cache}
