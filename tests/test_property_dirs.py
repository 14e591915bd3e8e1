"""The correctness property with outputs known only after a run: a generator writes a random
set of files into a directory output, a foreach filters each of them, and globs read the
directory and the foreach's outputs. After any sequence of edits, one incremental build leaves
exactly what a clean build gives (computed here in Python, knowing nothing of bflow), the next
build runs nothing, and `-n` names every task that runs, giving a reason of its own only to
tasks that run, or marks them "after TASK". Every bflow here runs with BFLOW_VERIFY=1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_property import EXAMPLES, FILTERS, VERIFY, build_and_count, scratch_project

from conftest import run_bflow

NAMES = ["a", "b", "c1", "d"]
VERSIONS = ["v1", "v2", "7", "8"]


def flowfile(filter_: str, join_filtered: bool) -> str:
    joined = "out/*.up" if join_filtered else "gen/"
    return f"""\
[settings]
env = {{ LC_ALL = "C" }}

[tasks.gen]
cmd = "rm -rf gen && mkdir gen && for f in $(cat names.txt); do (echo $f; cat ver.txt) > gen/$f.txt; done && echo gen >> runs.log"
inputs = ["names.txt", "ver.txt"]
outputs = ["gen/"]

[tasks.up]
foreach = "gen/*.txt"
cmd = {json.dumps(f"echo {{task}} >> runs.log && {filter_} < {{item}} > {{output}}")}
outputs = ["out/{{stem}}.up"]

[tasks.join]
cmd = "echo join >> runs.log && cat {{inputs}} > all.txt"
inputs = [{json.dumps(joined)}]
outputs = ["all.txt"]
"""


def expected(names: list[str], version: str, filter_: str,
             join_filtered: bool) -> dict[str, bytes]:
    """The files a clean build leaves."""
    generated = {f"gen/{n}.txt": f"{n}\n{version}\n".encode() for n in sorted(set(names))}
    filtered = {f"out/{Path(p).stem}.up": FILTERS[filter_](data)
                for p, data in generated.items()}
    joined = filtered if join_filtered else generated
    return {**generated, **filtered, "all.txt": b"".join(joined[p] for p in sorted(joined))}


def on_disk(root: Path) -> dict[str, bytes]:
    found = {"all.txt": (root / "all.txt").read_bytes()}
    for directory in ("gen", "out"):
        for path in sorted((root / directory).glob("*")) if (root / directory).exists() else ():
            found[f"{directory}/{path.name}"] = path.read_bytes()
    return found


def named_by_dry_run(root: Path) -> tuple[set[str], set[str]]:
    """What `-n` names: the tasks with a reason of their own, and all it names (also those
    that run only if their upstream writes something else, or are known only after it)."""
    result = run_bflow("-n", "--json", cwd=root, env=VERIFY)
    assert result.returncode == 0, result.stderr
    reasons = {e["task"]: e["reason"] for e in map(json.loads, result.stdout.splitlines())
               if e["event"] == "task_skipped" and e["reason"] != "up to date"}
    own = {name for name, reason in reasons.items()
           if reason.startswith("would run") and not reason.endswith("will run first")}
    return own, set(reasons)


@settings(max_examples=max(1, EXAMPLES // 2), deadline=None,
          derandomize=bool(os.environ.get("CI")), suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_incremental_build_over_a_directory_output_equals_a_clean_one(
        data: st.DataObject) -> None:
    filter_ = data.draw(st.sampled_from(sorted(FILTERS)))
    join_filtered = data.draw(st.booleans())
    names = st.lists(st.sampled_from(NAMES), max_size=4)
    with scratch_project() as (_, root):
        (root / "Flowfile").write_text(flowfile(filter_, join_filtered))
        current = {"names": data.draw(names), "version": data.draw(st.sampled_from(VERSIONS))}
        for step in range(data.draw(st.integers(1, 4))):
            (root / "names.txt").write_text("".join(f"{n}\n" for n in current["names"]))
            (root / "ver.txt").write_text(current["version"] + "\n")
            own, named = named_by_dry_run(root)
            ran = build_and_count(root)
            # An instance found in this build is named by its foreach's group, "after gen".
            assert own <= set(ran), (own, ran)
            assert all(n in named or n.partition(":")[0] in named for n in ran), (ran, named)
            assert on_disk(root) == expected(current["names"], current["version"], filter_,
                                             join_filtered)
            assert build_and_count(root) == []
            edit = data.draw(st.sampled_from(["names", "version", "both"]))
            if edit in ("names", "both"):
                current["names"] = data.draw(names)
            if edit in ("version", "both"):
                current["version"] = data.draw(st.sampled_from(VERSIONS))
