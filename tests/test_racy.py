"""The racy-timestamp rule: a stat vouches for content only once a whole tick of the
filesystem's clock has passed since the mtime it shows; and the clock files are dated by."""

from __future__ import annotations

import os
import time
from pathlib import Path

from buildflow.racy import (COARSE_WINDOW_NS, FINE_WINDOW_NS, SECOND_NS, file_clock_ns,
                            trusted, window_ns)


def test_a_sub_second_mtime_is_trusted_after_the_fine_window() -> None:
    mtime = 5 * SECOND_NS + 123_456_789
    assert window_ns(mtime) == FINE_WINDOW_NS
    assert not trusted(mtime, mtime + FINE_WINDOW_NS)
    assert trusted(mtime, mtime + FINE_WINDOW_NS + 1)


def test_a_whole_second_mtime_waits_out_the_coarsest_filesystem() -> None:
    mtime = 7 * SECOND_NS  # ext3, HFS+, FAT, or a file dated by hand
    assert window_ns(mtime) == COARSE_WINDOW_NS
    assert not trusted(mtime, mtime + 2 * SECOND_NS)
    assert trusted(mtime, mtime + COARSE_WINDOW_NS + 1)


def test_a_file_from_the_future_is_never_trusted() -> None:
    now = time.time_ns()
    assert not trusted(now + SECOND_NS + 1, now)


def test_a_file_written_now_is_dated_at_or_after_the_file_clock(tmp_path: Path) -> None:
    for attempt in range(20):
        before = file_clock_ns()
        path = tmp_path / f"f{attempt}"
        path.write_text("x")
        assert os.stat(path).st_mtime_ns >= before
