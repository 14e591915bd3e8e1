"""`bflow validate`: loading already checked everything; say so, with any warnings."""

from __future__ import annotations

import os
import sys

from buildflow.errors import EXIT_OK
from buildflow.model import Project


def run(project: Project) -> int:
    for warning in project.warnings:
        print(f"bflow: warning: {warning}", file=sys.stderr)
    print(f"{os.path.basename(project.flowfile)}: ok, {len(project.tasks)} tasks"
          + (f", {len(project.warnings)} warning(s)" if project.warnings else ""))
    return EXIT_OK
