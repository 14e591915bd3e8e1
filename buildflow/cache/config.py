"""Where the output cache lives and how it is set up, from the environment and `[settings]`
(SPEC §6). Credentials come only from the environment, never from the Flowfile."""

from __future__ import annotations

import os
from collections.abc import Mapping

from buildflow.errors import UsageError

DEFAULT_MAX = "5G"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def directory(environ: Mapping[str, str]) -> str:
    """BFLOW_CACHE_DIR, else `$XDG_CACHE_HOME/buildflow`, else `~/.cache/buildflow`."""
    if environ.get("BFLOW_CACHE_DIR"):
        return os.path.abspath(environ["BFLOW_CACHE_DIR"])
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "buildflow")


def max_bytes(environ: Mapping[str, str]) -> int:
    """BFLOW_CACHE_MAX: bytes, or a number with K, M, G or T (powers of 1024), also written
    KB or KiB, as `bflow cache stats` shows sizes."""
    text = environ.get("BFLOW_CACHE_MAX", "").strip() or DEFAULT_MAX
    number = text.upper()
    if number.endswith("IB") and number[-3:-2] in ("K", "M", "G", "T"):
        number = number[:-2]
    elif number.endswith("B"):
        number = number[:-1]
    unit = number[-1:] if number[-1:] in ("K", "M", "G", "T") else ""
    try:
        value = float(number[:len(number) - len(unit)])
    except ValueError:
        value = -1
    if not 0 <= value < float("inf"):  # nan too
        raise UsageError(f"BFLOW_CACHE_MAX={text!r}: expected a size such as 500M, 5G or "
                         "5GiB")
    return int(value * _UNITS[unit])


def remote_url(settings_url: str, environ: Mapping[str, str]) -> str:
    """BFLOW_REMOTE_CACHE (which may hold credentials), else `settings.remote_cache`."""
    return environ.get("BFLOW_REMOTE_CACHE", "").strip() or settings_url


def upload(settings_upload: bool, environ: Mapping[str, str]) -> bool:
    """False for a read-only remote: BFLOW_REMOTE_CACHE_UPLOAD=0 or
    `remote_cache_upload = false`."""
    value = environ.get("BFLOW_REMOTE_CACHE_UPLOAD", "").strip().lower()
    if value:
        return value not in ("0", "false", "no", "off")
    return settings_upload
