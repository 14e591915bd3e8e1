"""One module per subcommand; each `run` takes explicit arguments and returns an exit code.
The CLI imports only the one it runs. The table of commands is here, with their help, where
both the parser and the fast path's reader of the command line find it."""

from __future__ import annotations

import os

# The commands and their one-line help, in the order `--help` lists them.
COMMANDS = {
    "build": "build targets and what they need",
    "watch": "build, then rebuild on every change until Ctrl-C",
    "graph": "print the task graph",
    "status": "list stale tasks with the first reason each",
    "explain": "every reason a target is stale",
    "list": "tasks with their descriptions; with patterns, matching tasks and instances",
    "validate": "check the Flowfile: errors exit 2, warnings exit 0",
    "clean": "delete declared outputs (of the named tasks, or all) and records",
    "init": "write a commented starter Flowfile (never overwrites)",
    "log": "print the saved output of a task's last run",
    "completion": "print a shell completion script (commands, options, tasks and instances)",
    "report": "the last build's critical path and slowest tasks, and each task's history",
    "cache": "the output cache shared by your projects: stats, or clear it",
}


def invocation_dir() -> str:
    return os.getcwd()

