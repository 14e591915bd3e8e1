"""The words every human-facing reporter uses: task blocks, failure blocks and the summary, so
the live display and the plain lines say the same things."""

from __future__ import annotations

from buildflow import events as ev
from buildflow.reporters.summary import summary_line
from buildflow.words import counted

def without_escapes(text: str) -> str:
    """`text` without terminal escape sequences: CSI (colours, cursor moves), OSC (titles,
    links), the strings DCS, SOS, PM and APC, and every other ESC sequence (ECMA-48: an ESC,
    intermediate bytes, a final byte), such as `ESC ( B` that `tput sgr0` prints and `ESC 7`
    that saves the cursor."""
    import re

    return re.sub(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)"
                  r"|[PX^_][^\x1b]*(?:\x1b\\)?|[ -/]*[0-~])", "", text)


def indent(output: str, prefix: str = "  | ") -> str:
    """A task's output, each line after `prefix` as a terminal leaves it once printed: what
    follows its last carriage return (a progress bar redrawn in place, as its last state; a
    CRLF line's end is no return), as `--stream` prints a line (`follow`). Printed raw, the
    return would take a log's line back over the prefix, or glue the states together."""
    return "".join(prefix + line.rstrip("\r").rsplit("\r", 1)[-1] + "\n"
                   for line in output.rstrip("\n").split("\n"))


def would_run_block(event: ev.TaskWouldRun) -> str:
    """`-n`: the task, why it would run, and its commands, as Make's `-n` prints them; a task
    known only after another has run, as one that may run."""
    if event.after:
        return f"may run {event.task}: {event.reason}"
    return "\n".join([f"would run {event.task}: {event.reason}",
                      *(f"  $ {command}" for command in event.commands)])


def retry_line(event: ev.TaskRetry) -> str:
    return (f"retry  {event.task}: {event.reason}; attempt {event.attempt} of {event.of} "
            f"in {event.delay:.1f}s")


def output_block(output: str) -> str:
    """A task's output under its result line; none when it was streamed already."""
    return indent(output) if output.strip() else ""


def failure_block(event: ev.TaskFailed, streamed: bool = False) -> str:
    """What failed, how, after how many attempts, the command and its output (unless
    `streamed`: printed already, line by line). A task stopped by Ctrl-C did not fail on its
    own: one line, and whatever it printed."""
    output = "" if streamed else output_block(event.output)
    if event.reason == ev.INTERRUPTED:
        return f"INTERRUPTED {event.task} ({event.duration:.2f}s)\n" + output
    lines = [f"FAILED {event.task}: {event.reason} ({counted(event.attempts, 'attempt')}, "
             f"{event.duration:.2f}s)"]
    lines += [f"  $ {_shortened(command)}" for command in event.commands]
    return "\n".join(lines) + "\n" + output


SHOWN_COMMAND = 4096  # characters of a failed command shown; `-n` shows all


def _shortened(command: str) -> str:
    """A failed command as shown: one of 400 KiB (`{inputs}` over thousands of files) buried
    its own output."""
    if len(command) <= SHOWN_COMMAND:
        return command
    return f"{command[:SHOWN_COMMAND]}... ({len(command) - SHOWN_COMMAND:,} characters more; " \
           "`bflow -n TASK` shows it whole)"


def stream_line(event: ev.TaskOutput) -> str:
    """`--stream`: a line of output as it comes, after its task's name."""
    return f"{event.task} | {event.line}"


class Tally:
    """The `[k/N]` counter, as Ninja's: `ran` counts the tasks that ran (finished or failed),
    `total` the tasks that ran or may still run, so it shrinks as tasks are found up to date or
    skipped (staleness is decided as tasks become ready). Also counts what BuildFinished
    cannot tell apart: a dry run's tasks that would run."""

    def __init__(self) -> None:
        self.dry_run = False
        self.would_run = 0
        self.ran = 0
        self.total = 0

    def see(self, event: ev.Event) -> None:
        if isinstance(event, ev.BuildStarted):
            self.total, self.dry_run = event.total, event.dry_run
        elif isinstance(event, ev.TaskFailed) and not event.attempts:
            self.total -= 1  # failed before its command ran (an input missing): it never runs
        elif isinstance(event, (ev.TaskFinished, ev.TaskFailed, ev.TaskRestored)):
            self.ran += 1
        elif isinstance(event, ev.TaskSkipped):
            self.total -= 1
        elif isinstance(event, ev.TaskWouldRun) and not event.instances:
            self.would_run += 1
        elif isinstance(event, ev.PlanChanged):
            self.total += event.added - event.dropped

    def counter(self) -> str:
        return f"[{self.ran}/{self.total}]"

    def summary(self, event: ev.BuildFinished) -> str:
        return summary_line(ran=event.ran, up_to_date=event.up_to_date, failed=event.failed,
                            skipped=event.skipped, duration=event.duration,
                            exit_status=event.exit_status, restored=event.restored,
                            interrupted=event.interrupted,
                            would_run=self.would_run if self.dry_run else None)
