"""The last line of every build, as both reporters and the no-op fast path print it. Imports
nothing, so the fast path can print it without loading the reporters."""

from __future__ import annotations

_VERDICT = {0: "", 1: " (FAILED)", 130: " (interrupted)"}


def summary_line(*, ran: int, up_to_date: int, failed: int, skipped: int, duration: float,
                 exit_status: int, would_run: int | None = None, restored: int = 0,
                 interrupted: int = 0) -> str:
    """The build's last line; `would_run` is given for a dry run (`-n`), 0 included."""
    if would_run is not None:
        parts = [f"{would_run} would run", f"{up_to_date} up to date"]
        skipped -= would_run
    else:
        parts = [f"{ran} ran", *([f"{restored} restored"] if restored else []),
                 f"{up_to_date} up to date"]
    if failed:
        parts.append(f"{failed} failed")
    if interrupted:
        parts.append(f"{interrupted} interrupted")
    if skipped > 0:
        parts.append(f"{skipped} skipped")
    timing = " (dry run)" if would_run is not None else f" in {duration:.2f}s"
    return f"bflow: {', '.join(parts)}{timing}{_VERDICT.get(exit_status, '')}"
