"""The fast path's files in the cache dir, named and versioned in one place. A file of another
version is never read: it is a miss, and the full way writes it again."""

from __future__ import annotations

# The proof a build that ended up to date leaves (`proof`): one per kind of build, `uptodate`
# for a plain `bflow`, `uptodate-<tag>` for others, each with a `.project` part beside it.
PROOF_FORMAT = 24
PROOF_FILE = "uptodate"
PROOF_PROJECT_PART = ".project"

# The loaded project, so that a build skips parsing the Flowfile (`projectcache`).
PROJECT_CACHE_FORMAT = 12
PROJECT_CACHE_FILE = "flowcache"
