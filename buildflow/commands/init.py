"""`bflow init`: a commented starter Flowfile that validates as written; never overwrites."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from buildflow.errors import EXIT_OK, UsageError
from buildflow.locate import FLOWFILE_NAMES

STARTER = '''\
# Flowfile: the tasks bflow builds. Paths are relative to this file's directory.
# Run `bflow` to build, `bflow list` to see tasks, `bflow explain TASK` to see why one runs.

[settings]
# jobs = 4                 # parallel commands (default: number of CPUs)
# default = ["all"]        # what plain `bflow` builds (default: every task)
# retries = 0              # re-run a failing command this many times
# timeout = 0              # seconds before a command is killed (0 = never)

[vars]
GREETING = "hello"

[tasks.message]
description = "Write a greeting (edit the var or Flowfile and rebuild)"
cmd = "echo {GREETING} > {output}"
outputs = ["build/message.txt"]

[tasks.shout]
description = "Upper-case the greeting; reruns only when build/message.txt changes"
cmd = "tr a-z A-Z < {input} > {output}"
inputs = ["build/message.txt"]
outputs = ["build/shout.txt"]

[tasks.all]
description = "Everything"
deps = ["shout"]
'''


def run(*, directory: str, file: str | None = None, changed_to: str | None = None) -> int:
    """Write `file` (default: `Flowfile` in `directory`, unless a Flowfile is already there),
    and say the command that builds it from where the user stands (`-C changed_to`)."""
    names = (file,) if file else FLOWFILE_NAMES
    for name in names:
        existing = Path(directory) / name
        if os.path.lexists(existing):  # (a dangling link too) never an error of its own
            raise UsageError(f"{existing} already exists; bflow init never overwrites it")
    path = Path(directory) / (file or "Flowfile")
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(STARTER)
    except FileExistsError:
        raise UsageError(f"{path} already exists; bflow init never overwrites it") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the Flowfile: {exc.strerror}") from None
    command = shlex.join(["bflow", *(["-C", changed_to] if changed_to else []),
                          *(["-f", file] if file else [])])
    print(f"bflow: wrote {path}; run {command} to build it")
    return EXIT_OK
