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
    """BFLOW_CACHE_MAX: bytes, or a number with K, M, G or T (powers of 1024)."""
    text = environ.get("BFLOW_CACHE_MAX", "").strip() or DEFAULT_MAX
    number, unit = text.rstrip("KMGTkmgtBb"), text[len(text.rstrip("KMGTkmgtBb")):]
    unit = unit.upper().rstrip("B").rstrip("I")
    try:
        value = float(number)
    except ValueError:
        value = -1
    if unit not in _UNITS or not 0 <= value < float("inf"):  # nan too
        raise UsageError(f"BFLOW_CACHE_MAX={text!r}: expected a size such as 500M or 5G")
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
