"""Action keys: SHA-256 over what the staleness decision read (rule 1's action and rule 2's
inputs with their content hashes), the declared outputs, and the cache format version; then,
for a task with a depfile, over its depfile inputs too.

Paths are made relative to the project root, so a checkout in another directory has the same
keys. Nothing here describes a task's dependencies anew: the key is made from the decision's
own `action` and `input_hashes` (or the record a run made from them).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping

# Part of every key: a change to what an entry holds, or to how keys are made, changes this,
# and the entries of the old format are simply never found again.
FORMAT = 3  # 2: entries and manifests sealed with their key and SHA-256; 3: a manifest
# lists several sets of depfile inputs


def portable(root: str, path: str) -> str:
    """`path` as the key holds it: relative to the root when it is inside it (a depfile may
    name files there by their absolute path), else as it is (a system header)."""
    if os.path.isabs(path) and (path == root or path.startswith(root.rstrip("/") + "/")):
        return os.path.relpath(path, root)
    return path


def action_key(root: str, action: tuple[object, ...], inputs: Mapping[str, str],
               outputs: Iterable[str]) -> str:
    """The key of a task's action, from a decision's `action` and `input_hashes` (or the
    record made of them) and the task's declared outputs."""
    canonical = [FORMAT, [list(part) if isinstance(part, tuple) else part for part in action],
                 [[portable(root, path), digest] for path, digest in inputs.items()],
                 [portable(root, path) for path in outputs]]
    return _sha256(canonical)


def depfile_key(root: str, key: str, depfile_inputs: Mapping[str, str]) -> str:
    """The key of an action with the files its depfile named, at these hashes."""
    return _sha256([FORMAT, key, sorted([portable(root, path), digest]
                                        for path, digest in depfile_inputs.items())])


def _sha256(canonical: object) -> str:
    text = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
