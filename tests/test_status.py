"""`bflow status` and `bflow explain` print the reasons the build itself acts on."""

from __future__ import annotations

from conftest import Project
from test_build import CHAIN

GROUPED = CHAIN + '\n[tasks.all]\ndeps = ["upper"]\n'


def built(project: Project) -> Project:
    project.flowfile(GROUPED)
    project.write("src.txt", "hello\n")
    assert project.bflow().returncode == 0
    return project


def test_status_lists_stale_tasks_with_their_first_reason(project: Project) -> None:
    project.flowfile(GROUPED)
    project.write("src.txt", "hello\n")
    result = project.bflow("status")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["gen: no successful run recorded",
                                          "upper: task gen it depends on will run first"]
    assert project.bflow("status", "--check").returncode == 1
    assert project.runs() == []
    assert not (project.root / ".bflow").exists()  # status writes nothing


def test_status_check_passes_after_a_build(project: Project) -> None:
    built(project)
    result = project.bflow("status", "--check")
    assert result.returncode == 0 and "up to date" in result.stdout
    project.write("build/upper.txt", "edited\n")
    result = project.bflow("status", "--check")
    assert result.returncode == 1
    assert result.stdout.startswith("upper: output build/upper.txt was modified")


def test_explain_names_the_file_and_both_hashes(project: Project) -> None:
    built(project)
    project.write("src.txt", "changed\n")
    result = project.bflow("explain", "gen")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "gen: stale"
    assert lines[1].startswith("  - input src.txt changed (") and " -> " in lines[1]
    downstream = project.bflow("explain", "build/upper.txt").stdout
    assert "task gen it depends on will run first (input src.txt changed" in downstream
    assert "all: a group task; 2 tasks it needs are stale: gen, upper" in \
        project.bflow("explain", "all").stdout


def test_explain_of_a_group_leaves_out_what_a_build_skips_by_its_when(project: Project) -> None:
    """It said `1 task it needs is stale: w` where status, -n and graph said up to date."""
    project.flowfile("""
        [tasks.w]
        cmd = "echo w >> runs.log"
        when = { env = "BFLOW_TEST_NEVER" }
        [tasks.g]
        deps = ["w"]
        """)
    assert project.bflow("explain", "g").stdout == \
        "g: a group task; 0 tasks it needs are stale; a build skips w (when.env " \
        "BFLOW_TEST_NEVER is not set)\n"
    assert project.bflow("status", "--check", "g").returncode == 0
    assert project.build("g") == []

def test_explain_lists_every_reason_and_status_agrees_with_the_build(project: Project) -> None:
    built(project)
    project.flowfile(GROUPED.replace("cat {input}", "cat  {input}"))
    project.write("src.txt", "other\n")
    (project.root / "build/gen.txt").unlink()
    lines = project.bflow("explain", "gen").stdout.splitlines()
    assert lines[1:] == ["  - commands changed", lines[2], "  - output build/gen.txt is missing"]
    assert lines[2].startswith("  - input src.txt changed")
    assert project.bflow("status").stdout.splitlines()[0] == "gen: commands changed"
    project.bflow()
    assert project.bflow("explain", "gen").stdout == "gen: up to date\n"


def test_explain_unknown_target_is_a_usage_error(project: Project) -> None:
    built(project)
    result = project.bflow("explain", "uper")
    assert result.returncode == 2 and "did you mean 'upper'" in result.stderr


def test_status_without_targets_looks_at_every_task_not_the_defaults(project: Project) -> None:
    project.flowfile('[settings]\ndefault = ["all"]\n' + GROUPED + """
[tasks.docs]
cmd = "echo docs >> runs.log"
inputs = ["src.txt"]
""")
    project.write("src.txt", "hello\n")
    assert project.bflow().returncode == 0
    assert project.runs() == ["gen", "upper"]
    result = project.bflow("status", "--check")
    assert (result.returncode, result.stdout) == (1, "docs: no successful run recorded\n")
    assert project.bflow("status", "all").stdout == "bflow: all 2 tasks are up to date\n"
