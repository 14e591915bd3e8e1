"""When a stat can vouch for a file's content: the racy-timestamp rule, shared by the hash
cache, the no-op proof and the project cache; and the clock file times are taken from.
Imports nothing heavy, so the fast paths use it too.

A write in the same timestamp tick as the write before it leaves the mtime as it was, so a
hash taken within that tick may be of content that a later, invisible write replaced. A stat
is trusted only once the moment it was taken is a whole tick past the mtime, with room to
spare. How long a tick is depends on the filesystem, and the mtime tells: one with a
sub-second part comes from a filesystem whose ticks are the kernel's coarse clock (a few
ms); one on a whole second from a filesystem that keeps seconds only (ext3 and HFS+ 1 s,
FAT 2 s), or from a file dated by hand, which is then only trusted a little later.
"""

from __future__ import annotations

import sys
import time

SECOND_NS = 1_000_000_000
FINE_WINDOW_NS = 100_000_000  # ten times the coarsest kernel clock tick (10 ms at HZ=100)
COARSE_WINDOW_NS = 3 * SECOND_NS  # FAT's 2 s ticks, with room for the clock's lag


def window_ns(mtime_ns: int) -> int:
    """How long after `mtime_ns` a stat must be taken to be trusted."""
    return FINE_WINDOW_NS if mtime_ns % SECOND_NS else COARSE_WINDOW_NS


def trusted(mtime_ns: int, at_ns: int) -> bool:
    """Whether a stat showing `mtime_ns`, taken (or its file hashed) at `at_ns`, vouches for
    the content seen then."""
    return mtime_ns < at_ns - window_ns(mtime_ns)


# File times come from the kernel's coarse clock (CLOCK_REALTIME_COARSE on Linux), which lags
# the precise clock by up to a tick. Elsewhere the precise clock is used, less this slack.
_COARSE_CLOCK = getattr(time, "CLOCK_REALTIME_COARSE", 5 if sys.platform == "linux" else None)
FILE_CLOCK_SLACK_NS = 50_000_000


def file_clock_ns() -> int:
    """Now, as the kernel would date a file written now: a file whose mtime is below this was
    written before this moment; one at or above it may have been written since."""
    if _COARSE_CLOCK is not None:
        try:
            return time.clock_gettime_ns(_COARSE_CLOCK)
        except OSError:
            pass
    return time.time_ns() - FILE_CLOCK_SLACK_NS
