"""`bflow validate`: loading already checked everything; say so, with any warnings."""

from __future__ import annotations

import sys

from buildflow.errors import EXIT_OK
from buildflow.locate import shown
from buildflow.model import Project
from buildflow.words import counted


def run(project: Project) -> int:
    for warning in project.warnings:
        print(f"bflow: warning: {warning}", file=sys.stderr)
    print(f"{shown(project.flowfile)}: ok, {counted(len(project.tasks), 'task')}"
          + (f", {counted(len(project.warnings), 'warning')}" if project.warnings else ""))
    return EXIT_OK
