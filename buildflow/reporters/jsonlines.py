"""`--json`: one JSON object per event on stdout; warnings go to stderr."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from buildflow import events as ev


class JsonReporter:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def handle(self, event: ev.Event) -> None:
        self.stream.write(json.dumps(ev.to_dict(event)) + "\n")
        self.stream.flush()

    def warn(self, message: str) -> None:
        print(f"bflow: warning: {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass
